"""One smoke test in a real headless Chromium against `streamlit run dashboard.py`."""
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

import pytest

from pipeline.store import Store
from tests.conftest import ROOT
from tests.dashboard.conftest import HOSTILE

pytestmark = pytest.mark.browser


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(filled_db, tmp_path):
    port = free_port()
    log = open(tmp_path / "streamlit.log", "w")
    process = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.headless", "true",
         "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
        env={**os.environ}, stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/_stcore/health", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        process.kill()
        pytest.fail("streamlit did not start: " + (tmp_path / "streamlit.log").read_text())
    yield url
    process.terminate()
    process.wait(10)


@pytest.fixture
def browser(tmp_path):
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    if not chromium or not driver:
        if os.environ.get("CI"):
            pytest.fail("CI must run the browser test: chromium and chromium-driver are missing")
        pytest.skip("chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    chrome = webdriver.Chrome(service=Service(driver), options=options)
    yield chrome
    chrome.quit()


def wait_for(chrome, predicate, seconds=60):
    from selenium.common.exceptions import StaleElementReferenceException

    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            if predicate():
                return True
        except StaleElementReferenceException:   # the page redrew under us: look again
            pass
        time.sleep(0.5)
    return False


def test_an_agent_sees_the_queue_and_claims_the_top_item_in_a_real_browser(server, browser, filled_db, tmp_path):
    from selenium.webdriver.common.by import By

    browser.get(server)
    assert wait_for(browser, lambda: "Response queue" in browser.find_element(By.TAG_NAME, "body").text)
    assert wait_for(browser, lambda: "priority 90" in browser.find_element(By.TAG_NAME, "body").text)
    # the page renders in steps: wait for the hostile post to be there, as text
    assert wait_for(browser, lambda: HOSTILE in browser.find_element(By.TAG_NAME, "body").text)
    assert not browser.find_elements(By.CSS_SELECTOR, "a[href='https://evil.example']")
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']")
    def claim_buttons():
        return [b for b in browser.find_elements(By.TAG_NAME, "button") if b.text.strip() == "Claim"]

    assert wait_for(browser, claim_buttons), "no Claim button appeared"  # the page renders in steps
    claim = claim_buttons()[0]
    claim.click()
    store = Store(filled_db)
    assert wait_for(browser, lambda: (store.queue()["status"] == "claimed").any(), 30)
    browser.save_screenshot(str(tmp_path / "queue.png"))
    assert wait_for(browser, lambda: "claimed by" in browser.find_element(By.TAG_NAME, "body").text, 30)


def body(chrome) -> str:
    from selenium.webdriver.common.by import By

    return chrome.find_element(By.TAG_NAME, "body").text


def click(chrome, label: str, seconds: int = 60) -> None:
    """Click the first visible button whose text is `label`, once the page has drawn it."""
    from selenium.webdriver.common.by import By

    from selenium.common.exceptions import StaleElementReferenceException

    def find():
        try:   # the page redraws while we look: an element can go stale between finding and reading it
            return [b for b in chrome.find_elements(By.TAG_NAME, "button")
                    if b.text.strip() == label and b.is_displayed()]
        except StaleElementReferenceException:
            return []

    def press():
        try:
            buttons = find()
            buttons and buttons[0].click()
            return bool(buttons)
        except StaleElementReferenceException:
            return False

    assert wait_for(chrome, press, seconds), f"no {label!r} button appeared"


def go(chrome, page: str) -> bool:
    """Follow the sidebar's link to a page (a new page load would start a new session: signed out)."""
    from selenium.webdriver.common.by import By

    links = [a for a in chrome.find_elements(By.TAG_NAME, "a") if a.text.strip() == page]
    if links:
        links[0].click()
    return bool(links)


def median_first_response(chrome) -> str:
    lines = body(chrome).splitlines()
    return lines[lines.index("Median first response") + 1] if "Median first response" in lines else ""


def test_an_agent_signs_in_claims_replies_with_a_template_resolves_and_the_lead_sees_it(server, browser, filled_db,
                                                                                         tmp_path):
    """Team mode in a real browser: sign-in, claim next, a template reply marked sent, resolve, the lead's page."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    from pipeline.desk import users

    store = Store(filled_db)
    users.add_user(store, "ana", "agent", "correct horse battery")
    browser.get(server)
    assert wait_for(browser, lambda: "Sign in" in body(browser))
    assert "complaint number" not in body(browser) and HOSTILE not in body(browser)   # nothing before sign-in
    assert wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "input[type='password']")) == 1)
    name = browser.find_elements(By.CSS_SELECTOR, "input[type='text']")[0]
    name.send_keys("ana")
    password = browser.find_element(By.CSS_SELECTOR, "input[type='password']")
    password.send_keys("correct horse battery")
    password.send_keys(Keys.ENTER)
    assert wait_for(browser, lambda: "Signed in as ana (agent)" in body(browser)), body(browser)[:500]
    assert wait_for(browser, lambda: go(browser, "Team lead") and median_first_response(browser) == "–")
    assert wait_for(browser, lambda: go(browser, "Queue") and "Response queue" in body(browser))
    top = int(store.queue().iloc[0]["id"])
    click(browser, "Claim next")
    assert wait_for(browser, lambda: f"Case #{top}" in body(browser) and HOSTILE in body(browser))
    assert not browser.find_elements(By.CSS_SELECTOR, "a[href='https://evil.example']")   # the case page too
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']")
    assert wait_for(browser, lambda: store.case(top)["status"] == "claimed", 30)
    # pick the first template in the select box, then mark the reply as sent by hand (no X credentials)
    template = lambda: browser.find_elements(By.CSS_SELECTOR, "input[aria-label='Template']")  # noqa: E731
    options = lambda: browser.find_elements(By.CSS_SELECTOR, "[role='option']")  # noqa: E731
    assert wait_for(browser, template)
    template()[0].click()
    assert wait_for(browser, lambda: len(options()) > 1)
    options()[1].click()
    assert wait_for(browser, lambda: "@user1" in " ".join(
        t.get_attribute("value") or "" for t in browser.find_elements(By.TAG_NAME, "textarea")))
    click(browser, "Mark replied")
    assert wait_for(browser, lambda: store.case(top)["status"] == "replied", 30)
    click(browser, "Resolve")
    assert wait_for(browser, lambda: store.case(top)["status"] == "resolved", 30)
    assert wait_for(browser, lambda: go(browser, "Team lead") and median_first_response(browser) not in ("", "–"))
    browser.save_screenshot(str(tmp_path / "lead.png"))
    for page, title in (("Alerts & risks", "Alerts & risks"), ("Trends", "Trends"), ("Sources", "Sources"),
                        ("Queue", "Response queue")):   # hostile text stays text on every page
        assert wait_for(browser, lambda: go(browser, page) and title in body(browser)), page
        time.sleep(1)
        assert not browser.find_elements(By.CSS_SELECTOR, "a[href='https://evil.example']"), page
        assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']"), page
        assert not browser.find_elements(By.CSS_SELECTOR, "a[href^='javascript']"), page
    timeline = store.case(top)["timeline"]
    assert list(timeline["kind"]) == ["mention", "opened", "claim", "reply", "resolve"]
    assert set(timeline["actor"][2:]) == {"ana"}


def test_every_page_opens_at_its_own_address_the_queue_included(server, browser):
    for path, title in (("/queue", "Response queue"), ("/lead", "Team lead"), ("/", "Response queue")):
        browser.get(server + path)
        assert wait_for(browser, lambda: title in body(browser) and "priority" in body(browser) or
                        title == "Team lead" and title in body(browser)), (path, body(browser)[:500])
        time.sleep(1)    # "Page not found" comes as a dialog after the page has drawn
        assert "Page not found" not in body(browser), path
    assert browser.current_url.rstrip("/").endswith("/queue")    # the root opens the queue at its address
