from datetime import datetime, timedelta, timezone

import pytest

from pipeline.mention import Labels, Mention
from pipeline.store import Store

HOSTILE = ("[click me](https://evil.example) <img src=x onerror=alert(1)> **bold** <script>alert(2)</script> "
           "[run](javascript:alert(3))")


@pytest.fixture
def filled_db(tmp_path, monkeypatch, rules_file):
    """A store with three queued complaints (one with hostile text) and a week of trend data."""
    db = str(tmp_path / "dash.db")
    store = Store(db)
    now = datetime.now(timezone.utc)
    mentions = [Mention("twitter", str(i), f"@aerolia complaint number {i}", url=f"https://x.com/u/status/{i}",
                        author=f"@user{i}", author_followers=1000 * i, created_at=now - timedelta(days=i % 7, hours=1))
                for i in range(1, 15)]
    mentions[0] = mentions[0].replace(text=HOSTILE)
    store.save_mentions(mentions)
    labels = [Labels(m.key, "en", True, ("Aerolia",), "negative" if i % 2 else "positive", 0.8,
                     i < 3, 0.9 if i < 3 else 0.1, "complaint" if i < 3 else "praise", i < 3, 90 - i,
                     reasons=("complaint 0.90",), model="test") for i, m in enumerate(mentions)]
    store.save_labels(labels, sla=3600)
    monkeypatch.setenv("ECOUTE_DB", db)
    monkeypatch.setenv("ECOUTE_RULES", str(rules_file))
    return db


@pytest.fixture(autouse=True)
def bound_to_loopback():
    """AppTest runs in this process: the dashboard reads server.address as `ecoute dashboard` sets it."""
    from streamlit import config

    before = config.get_option("server.address")
    config.set_option("server.address", "127.0.0.1")
    yield
    config.set_option("server.address", before)


def table_labels(element) -> list[str]:
    """The column headings a person sees on an st.dataframe: its column_config label, else the column name."""
    import json

    config = json.loads(element.proto.columns or "{}")
    return [(config.get(str(c)) or {}).get("label") or str(c) for c in element.value.columns]


def assert_tables_read_as_words(at) -> None:
    """Every table on the page: headings in words (no `median_first_response_min`) and missing values as
    empty cells (Streamlit writes "None" unless told otherwise)."""
    assert len(at.dataframe), "no table on the page"
    for element in at.dataframe:
        labels = table_labels(element)
        assert not [label for label in labels if "_" in label], labels
        assert element.proto.HasField("placeholder") and element.proto.placeholder == "", labels
