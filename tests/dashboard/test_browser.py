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
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
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
