#!/usr/bin/python3
"""The console in a real headless Chromium (Selenium, Debian's chromium-driver).

usage: console_test.py RELAY_URL ADMIN_TOKEN SCREENSHOT_DIR
The relay must serve /async (async, verify none) with the mock upstream knowing room r-ok
only, so that a webhook for room r-new dies with -503 room. Prints one line per step; exits
non-zero at the first step that fails. The Swift test (ConsoleTests) starts the relay and
changes the mock between steps when this script prints "NEED ..." and waits for "GO"."""
import json, os, sys, urllib.request
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

relay, token, shots = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(shots, exist_ok=True)
options = Options()
for argument in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900", "--lang=en-US",
                 "--disable-gpu", "--no-first-run", "--disable-extensions"]:
    options.add_argument(argument)
options.binary_location = "/usr/bin/chromium"
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
wait = WebDriverWait(driver, 20)


def step(name):
    print("STEP", name, flush=True)


def shot(name):
    driver.save_screenshot(os.path.join(shots, name + ".png"))


def text_of(selector):
    return wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, selector))).text


def until_text(selector, expected, refresh=None):
    def holds(_):
        if refresh:
            refresh()
        try:
            return expected in driver.find_element(By.CSS_SELECTOR, selector).text
        except Exception:
            return False
    wait.until(holds, f"{selector} never showed {expected!r}")


def post(path, body):
    request = urllib.request.Request(relay + path, data=body.encode(), headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request) as answer:
        return json.loads(answer.read())


def ask(need):
    print("NEED", need, flush=True)
    if sys.stdin.readline().strip() != "GO":
        raise SystemExit("the test did not answer GO")


try:
    step("sign in page")
    driver.get(relay + "/admin/")
    wait.until(EC.visibility_of_element_located((By.ID, "token")))
    assert token not in driver.page_source
    shot("1-sign-in")
    driver.find_element(By.ID, "token").send_keys("not-the-token")
    driver.find_element(By.ID, "sign-in").click()
    until_text("#message", "not right")

    step("sign in")
    driver.find_element(By.ID, "token").send_keys(token)
    driver.find_element(By.ID, "sign-in").click()
    wait.until(EC.visibility_of_element_located((By.ID, "pending")))
    cookies = {cookie["name"]: cookie for cookie in driver.get_cookies()}
    session = cookies["happyrelay_session"]
    assert session["httpOnly"] and session.get("sameSite") == "Strict", session
    assert token not in driver.page_source
    assert driver.execute_script("return document.cookie") == "", "the session cookie is readable by the page"
    assert token not in json.dumps(driver.execute_script("return Object.assign({}, window.localStorage, window.sessionStorage)"))

    step("overview counts a webhook")
    # The payload carries markup: the console must show it as text, never run it.
    answer = post("/async", '{"uuid":"u-1","room":"r-new","note":"<img src=x onerror=\\"document.title=\'pwned\'\\">"}')
    dead_id = answer["id"]
    # The overview is drawn again every 5 s: read it whole each time, never through an old element.
    until_text("#webhooks", "/async 1 0 0 0 0 0")
    until_text("#dead", "1")
    shot("2-overview")

    step("the dead delivery on the deliveries page")
    driver.find_element(By.ID, "nav-deliveries").click()
    Select(wait.until(EC.visibility_of_element_located((By.ID, "filter-state")))).select_by_value("dead")
    driver.find_element(By.ID, "search").click()
    row = wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, f'#deliveries-table tr[data-id="{dead_id}"]')))
    assert "dead" in row.text
    shot("3-deliveries")

    step("its page shows HappyTalk's answer")
    row.find_element(By.TAG_NAME, "a").click()
    until_text("#attempts", "-503")
    until_text("#attempts", "room")
    assert "r-new" in text_of("#call")
    assert "<img src=x" in text_of("#request") and driver.title != "pwned", driver.title
    assert not driver.find_elements(By.CSS_SELECTOR, "#request img")
    shot("4-delivery")

    step("fix the mock and replay")
    ask("room r-new")
    driver.find_element(By.ID, "replay").click()
    until_text("#message", "replayed")
    until_text("#state", "delivered", refresh=lambda: driver.execute_script("window.dispatchEvent(new HashChangeEvent('hashchange'))"))
    ask("the call for r-new recorded")
    shot("5-delivered")

    step("the mapping tester")
    driver.find_element(By.ID, "nav-tester").click()
    body = wait.until(EC.visibility_of_element_located((By.ID, "tester-body")))
    body.clear()
    body.send_keys('{"uuid":"u-9","room":"r-9"}')
    driver.find_element(By.ID, "tester-run").click()
    until_text("#tester-outcome", "Makes a call")
    lines = text_of("#tester-lines")
    assert 'uuid = "u-9" ← $.body.uuid' in lines and '"room_id":"r-9"' in lines, lines
    shot("6-tester")

    step("mappings and bindings pages, in Korean")
    driver.find_element(By.ID, "nav-mappings").click()
    until_text("#mappings-generation", "1")
    driver.find_element(By.ID, "language").click()
    until_text("#nav-mappings", "매핑")
    shot("7-mappings-ko")
    driver.find_element(By.ID, "nav-bindings").click()
    wait.until(EC.visibility_of_element_located((By.ID, "binding-kind")))
    shot("8-bindings-ko")
    driver.find_element(By.ID, "language").click()

    step("phone width")
    driver.set_window_size(390, 844)
    driver.find_element(By.ID, "nav-overview").click()
    wait.until(EC.visibility_of_element_located((By.ID, "pending")))
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth + 1"), "the overview scrolls sideways at 390 px"
    shot("9-overview-phone")
    driver.set_window_size(1280, 900)

    step("sign out")
    driver.find_element(By.ID, "sign-out").click()
    wait.until(EC.visibility_of_element_located((By.ID, "token")))
    status = driver.execute_script("return fetch('/admin/deliveries', {credentials: 'same-origin'}).then(r => r.status)")
    assert status == 404, status
    shot("10-signed-out")
    print("PASS", flush=True)
except BaseException:
    # What the page showed when a step failed, for whoever reads the test's output.
    shot("failure")
    try:
        print("PAGE", driver.current_url, driver.find_element(By.TAG_NAME, "body").text.replace("\n", " | ")[:2000], flush=True)
    except Exception:
        pass
    raise
finally:
    driver.quit()
