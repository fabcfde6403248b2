#if canImport(Glibc)
import Glibc
#endif

/// A parsed JSON document as a flat list of entries over its bytes (the idea of simdjson's
/// tape): one entry per value and per member name, containers knowing where they end, so that
/// a path skips what it does not read, and strings and numbers are decoded only when read.
/// Built by `JSONParser.tape`, which validates the whole text as `parse` does.
package final class JSONTape: @unchecked Sendable {
    /// What an entry is.
    package enum Kind: UInt8, Sendable {
        case null, `true`, `false`, number, string, array, object
    }

    /// One value or member name.
    package struct Entry: Sendable {
        package var kind: Kind
        /// Strings: whether the text holds an escape (then it is decoded, else read as is).
        package var hasEscapes: Bool
        /// Strings and numbers: the offset of the first byte (after a string's quote).
        /// Objects: the index of the last member's name (the object's own index when it has
        /// none), where a lookup starts. Arrays: the offset of the bracket.
        package var start: Int32
        /// Strings: the offset of the closing quote; numbers: just past the last digit;
        /// containers: the index of the first entry after everything inside.
        package var end: Int32
        /// Containers: elements, or members. Member names: the index of the member's name
        /// before it (the object's own index for the first), so that a lookup steps from name
        /// to name, last first.
        package var count: Int32

        init(kind: Kind, start: Int32, end: Int32 = 0, hasEscapes: Bool = false, count: Int32 = 0) {
            self.kind = kind
            self.hasEscapes = hasEscapes
            self.start = start
            self.end = end
            self.count = count
        }
    }

    // Storage the tape owns and never changes (hence Sendable): read on every step of every
    // path, without the reference counting and bounds checks of arrays.
    /// The document.
    package let bytes: UnsafeBufferPointer<UInt8>
    /// The entries, in document order.
    package let entries: UnsafeBufferPointer<Entry>

    /// Takes ownership of `bytes` and `entries` (allocated with `allocate(capacity:)`).
    init(bytes: UnsafeMutableBufferPointer<UInt8>, entries: UnsafeMutableBufferPointer<Entry>) {
        self.bytes = UnsafeBufferPointer(bytes)
        self.entries = UnsafeBufferPointer(entries)
    }

    deinit {
        bytes.deallocate()
        entries.deallocate()
    }

    /// The document's value.
    package var root: JSONTapeNode { JSONTapeNode(tape: self, index: 0) }

    /// The index of the value of the member named `name` of the object at `object` (the last
    /// one when repeated, as `JSONValue` reads objects), or nil.
    func member(of object: Int, named name: String) -> Int? {
        let entry = entries[object]
        guard entry.kind == .object else { return nil }
        var name = name
        return name.withUTF8 { wanted in
            let length = Int32(truncatingIfNeeded: wanted.count)
            // From the last name back: the first that matches is the one read.
            var key = Int(entry.start)
            while key != object {
                let keyEntry = entries[key]
                // Lengths first: most members differ there, and no byte is read.
                if keyEntry.hasEscapes {
                    if stringEquals(at: key, wanted) { return key &+ 1 }
                } else if keyEntry.end &- keyEntry.start == length
                    && (length == 0 || Self.equal(bytes.baseAddress! + Int(keyEntry.start), wanted.baseAddress!, count: Int(length)))
                {
                    return key &+ 1
                }
                key = Int(keyEntry.count)
            }
            return nil
        }
    }

    /// The index of the element at `position` (negative counts from the end) of the array at
    /// `array`, or nil.
    func element(of array: Int, at position: Int) -> Int? {
        let entry = entries[array]
        guard entry.kind == .array else { return nil }
        let count = Int(entry.count)
        let wanted = position < 0 ? count + position : position
        guard wanted >= 0 && wanted < count else { return nil }
        var child = array + 1
        for _ in 0..<wanted { child = next(after: child) }
        return child
    }

    /// Whether the string entry at `index` reads `wanted` (decoded only when it has escapes).
    func stringEquals(at index: Int, _ wanted: UnsafeBufferPointer<UInt8>) -> Bool {
        let entry = entries[index]
        if entry.hasEscapes { return JSONTapeNode(tape: self, index: index).stringValue.utf8.elementsEqual(wanted) }
        let length = Int(entry.end - entry.start)
        guard length == wanted.count else { return false }
        guard length > 0 else { return true }
        return Self.equal(bytes.baseAddress! + Int(entry.start), wanted.baseAddress!, count: length)
    }

    /// Whether `count` bytes at `a` and `b` are equal: names are short, and a call of `memcmp`
    /// costs more than comparing them here, eight bytes at a time.
    @inline(__always) static func equal(_ a: UnsafePointer<UInt8>, _ b: UnsafePointer<UInt8>, count: Int) -> Bool {
        var offset = 0
        while offset &+ 8 <= count {
            guard UnsafeRawPointer(a + offset).loadUnaligned(as: UInt64.self) == UnsafeRawPointer(b + offset).loadUnaligned(as: UInt64.self) else { return false }
            offset &+= 8
        }
        while offset < count {
            guard a[offset] == b[offset] else { return false }
            offset &+= 1
        }
        return true
    }

    /// The index of the entry after the value at `index` (and everything in it).
    @inline(__always) func next(after index: Int) -> Int {
        let entry = entries[index]
        return entry.kind == .array || entry.kind == .object ? Int(entry.end) : index + 1
    }
}

/// One value on a tape.
package struct JSONTapeNode: Sendable {
    package let tape: JSONTape
    package let index: Int

    package var kind: JSONTape.Kind { tape.entries[index].kind }

    /// The member named `name` (the last one when repeated, as `JSONValue` reads objects).
    package func member(_ name: String) -> JSONTapeNode? {
        tape.member(of: index, named: name).map { JSONTapeNode(tape: tape, index: $0) }
    }

    /// The element at `position` (negative counts from the end).
    package func element(_ position: Int) -> JSONTapeNode? {
        tape.element(of: index, at: position).map { JSONTapeNode(tape: tape, index: $0) }
    }

    /// Calls `body` with an array's elements, or an object's member values, in order, without
    /// collecting them.
    @inline(__always) func forEachChild(_ body: (JSONTapeNode) -> Void) {
        let entry = tape.entries[index]
        guard entry.kind == .array || entry.kind == .object else { return }
        var child = index + 1
        for _ in 0..<Int(entry.count) {
            if entry.kind == .object { child += 1 }
            body(JSONTapeNode(tape: tape, index: child))
            child = tape.next(after: child)
        }
    }

    /// An array's elements, or an object's member values, in order.
    package var children: [JSONTapeNode] {
        var result: [JSONTapeNode] = []
        result.reserveCapacity(count)
        forEachChild { result.append($0) }
        return result
    }

    /// The members of an object, names decoded.
    package var members: [(key: String, value: JSONTapeNode)] {
        let entry = tape.entries[index]
        guard entry.kind == .object else { return [] }
        var result: [(key: String, value: JSONTapeNode)] = []
        result.reserveCapacity(Int(entry.count))
        var key = index + 1
        for _ in 0..<Int(entry.count) {
            result.append((JSONTapeNode(tape: tape, index: key).stringValue, JSONTapeNode(tape: tape, index: key + 1)))
            key = tape.next(after: key + 1)
        }
        return result
    }

    /// Containers: how many elements or members.
    package var count: Int {
        let entry = tape.entries[index]
        return entry.kind == .array || entry.kind == .object ? Int(entry.count) : 0
    }

    /// A string's text, decoded (escapes resolved); empty for other kinds.
    package var stringValue: String {
        let entry = tape.entries[index]
        guard entry.kind == .string else { return "" }
        if !entry.hasEscapes {
            // Validated as UTF-8 when the tape was made.
            return String(decoding: UnsafeBufferPointer(rebasing: tape.bytes[Int(entry.start)..<Int(entry.end)]), as: UTF8.self)
        }
        var reader = Reader(bytes: tape.bytes, maxDepth: 1)
        reader.index = Int(entry.start) - 1
        return (try? reader.string()) ?? ""
    }

    /// The value as field text, as `JSONValue.text` has it.
    package var text: String {
        switch kind {
        case .string: stringValue
        case .number: numberText
        case .true: "true"
        case .false: "false"
        case .null: ""
        case .array, .object: JSONSerializer.string(value)
        }
    }

    /// A number's text exactly as written.
    package var numberText: String {
        let entry = tape.entries[index]
        guard entry.kind == .number else { return "" }
        return String(decoding: UnsafeBufferPointer(rebasing: tape.bytes[Int(entry.start)..<Int(entry.end)]), as: UTF8.self)
    }

    /// Whether a string reads exactly `text` (without decoding when it has no escape).
    package func stringEquals(_ text: String) -> Bool {
        let entry = tape.entries[index]
        guard entry.kind == .string else { return false }
        var text = text
        return text.withUTF8 { tape.stringEquals(at: index, $0) }
    }

    /// The value one level deep: scalars decoded, containers' children left on the tape.
    package var shallow: JSONValue {
        switch kind {
        case .null: .null
        case .true: .bool(true)
        case .false: .bool(false)
        case .number: .number(numberText)
        case .string: .string(stringValue)
        case .array: .array(children.map(JSONValue.tape))
        case .object: .object(members.map { ($0.key, JSONValue.tape($0.value)) })
        }
    }

    /// The whole value as a tree.
    package var value: JSONValue {
        switch kind {
        case .array: .array(children.map(\.value))
        case .object: .object(members.map { ($0.key, $0.value.value) })
        default: shallow
        }
    }

    /// Missing-equivalent for the mapping language: `null`, a blank string, `[]` or `{}`.
    package var isEmpty: Bool {
        let entry = tape.entries[index]
        switch entry.kind {
        case .null: return true
        case .string:
            if entry.hasEscapes { return JSONValue.isBlank(stringValue) }
            for offset in Int(entry.start)..<Int(entry.end) {
                let byte = tape.bytes[offset]
                if byte >= 0x80 { return JSONValue.mayBeWhitespace(lead: byte) && JSONValue.isBlank(stringValue) }
                if !(byte == 0x20 || (byte >= 0x09 && byte <= 0x0D)) { return false }
            }
            return true
        case .array, .object: return entry.count == 0
        case .true, .false, .number: return false
        }
    }
}

/// The entries of a tape being parsed, in storage that grows by doubling and that the tape
/// takes over when the document is complete.
struct TapeBuilder {
    private(set) var storage: UnsafeMutableBufferPointer<JSONTape.Entry>
    private(set) var count = 0

    init(capacity: Int) {
        storage = .allocate(capacity: capacity)
    }

    @inline(__always) mutating func append(_ entry: JSONTape.Entry) {
        if count == storage.count { grow() }
        (storage.baseAddress! + count).initialize(to: entry)
        count += 1
    }

    private mutating func grow() {
        let larger = UnsafeMutableBufferPointer<JSONTape.Entry>.allocate(capacity: storage.count * 2)
        _ = larger.moveInitialize(fromContentsOf: storage[..<count])
        storage.deallocate()
        storage = larger
    }

    subscript(index: Int) -> JSONTape.Entry {
        get { storage[index] }
        set { storage[index] = newValue }
    }
}
