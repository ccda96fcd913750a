"""The Trends page on the demo data in a real headless Chromium: charts, share of voice, drill-down."""
from datetime import datetime, timezone

import pytest

from pipeline.mention import Labels, Mention
from pipeline.store import Store
from tests.dashboard.conftest import HOSTILE
from tests.dashboard.test_browser import browser, server, wait_for  # noqa: F401  (fixtures reused)

pytestmark = pytest.mark.browser


@pytest.fixture
def filled_db(tmp_path, monkeypatch, rules_file):
    """Replaces the queue's store for `server`: the classified demo, plus one hostile Aerolia post on
    the outage day (the busiest, where the drill-down opens)."""
    from pipeline.jobs import load_demo
    from pipeline.rules import load_rules

    db = str(tmp_path / "demo.db")
    store = Store(db)
    load_demo(store, load_rules(rules_file))
    busiest = store.daily().sort_values("volume").iloc[-1]
    hostile = Mention("twitter", "hostile-1", HOSTILE, author="mallory", author_followers=1,
                      created_at=busiest["day"].to_pydatetime().replace(hour=12, tzinfo=timezone.utc))
    store.save_mentions([hostile])
    store.save_labels([Labels(hostile.key, "en", True, (busiest["brand"],), "negative", 0.9, False, 0.1, "other",
                              False, 10, model="test")], sla=3600)
    monkeypatch.setenv("ECOUTE_DB", db)
    monkeypatch.setenv("ECOUTE_RULES", str(rules_file))
    return db


def test_trends_page_with_share_of_voice_and_drill_down_on_the_demo(server, browser, filled_db, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    def body() -> str:
        return browser.find_element(By.TAG_NAME, "body").text

    browser.get(server + "/trends")
    assert wait_for(browser, lambda: "Daily volume per brand" in body()), body()[:2000]
    assert wait_for(browser, lambda: "Share of voice against competitors" in body())
    assert wait_for(browser, lambda: "Aerolia: mentions" in body() and "share of voice" in body())
    assert wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")) >= 4)
    # the drill-down opens on the busiest day (the demo's Aerolia outage) and lists its mentions
    assert wait_for(browser, lambda: " mentions of Aerolia on " in body())
    line = next(t for t in body().splitlines() if " mentions of Aerolia on " in t)
    assert int(line.split()[0]) > 20
    assert wait_for(browser, lambda: len(browser.find_elements(By.CSS_SELECTOR, "[data-testid='stDataFrame']")) >= 2)
    assert not browser.find_elements(By.CSS_SELECTOR, "a[href='https://evil.example']")
    assert not browser.find_elements(By.CSS_SELECTOR, "img[src='x']")
    # click a Lumelle point of the volume chart (Vega's SVG marks carry their data in aria-label)
    volume = browser.find_elements(By.CSS_SELECTOR, "[data-testid='stVegaLiteChart']")[0]
    points = [p for p in volume.find_elements(By.CSS_SELECTOR, "path[aria-roledescription='point']")
              if "brand: Lumelle" in (p.get_attribute("aria-label") or "")]
    point = points[len(points) // 2]
    fields = dict(part.split(": ", 1) for part in point.get_attribute("aria-label").split("; "))
    expected = f"{fields['volume']} mentions of Lumelle on {datetime.strptime(fields['day'], '%b %d, %Y'):%Y-%m-%d}"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", point)
    ActionChains(browser).move_to_element(point).click().perform()
    assert wait_for(browser, lambda: expected in body(), 30), expected
    browser.save_screenshot(str(tmp_path / "trends.png"))
