# The two commands of the README. Both install what is missing first (deploy/install-build-deps).
.PHONY: run test deps

# Runs the relay on the shipped mappings (dry run when HAPPYTALK_TOKEN is not set).
run: deps
	swift run -c release happyrelay serve

# Runs every test, with a temporary folder of its own that is removed afterwards.
test: deps
	@scratch=$$(mktemp -d); TMPDIR="$$scratch" swift test; status=$$?; rm -rf "$$scratch"; exit $$status

deps:
	@deploy/install-build-deps
