"""One odd post never stops a source (issue 16): a NUL character, a 300-character author and a
60-character source name, among valid posts, through `ecoute listen` and `ecoute ingest`, on SQLite
and PostgreSQL. Every valid post is stored once, the odd ones are stored normalised, and the source
is not stuck; a post the database still refuses is reported by key and the rest of its page kept."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.mention import Mention
from pipeline.store import Store
from tests.conftest import write_jsonl
from tests.listeners.test_rss import server  # noqa: F401  (the feed server fixture)

pytestmark = pytest.mark.usefixtures("no_sleep")
LONG_AUTHOR = "a" * 300
LONG_SOURCE = "campaign-import-" + "x" * 44          # 60 characters
FEED = (b'<?xml version="1.0"?><rss version="2.0"><channel><title>Aerolia news</title>'
        b'<item><guid>ok-1</guid><title>Aerolia flight on time</title><description>fine</description></item>'
        b'<item><guid>nul-2</guid><title>Aerolia lost my bag&#0;</title><description>a &#0; byte</description></item>'
        b'<item><guid>long-3</guid><title>Aerolia refund</title><description>still waiting</description>'
        b'<author>' + LONG_AUTHOR.encode() + b'</author></item>'
        b'<item><guid>ok-4</guid><title>Aerolia crew were kind</title><description>thanks</description></item>'
        b'</channel></rss>')
ROWS = [{"id": "f1", "text": "Aerolia was fine today"},
        {"id": "f2", "text": "Aerolia lost my bag\u0000 again"},
        {"id": "f3", "text": "Aerolia refund, week 3", "author": LONG_AUTHOR},
        {"id": "f4", "text": "Aerolia from the campaign", "source": LONG_SOURCE},
        {"id": "f5", "text": "Aerolia ok"}]


@pytest.fixture
def db(backend_db):
    return backend_db


def run(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def check_stored(store: Store, keys: set[str]) -> None:
    rows = store.mention_rows().set_index("key")
    assert keys <= set(rows.index) and rows.index.is_unique
    for key in keys:
        text, author = rows.loc[key, "text"], rows.loc[key, "author"]
        assert "\x00" not in text and (not isinstance(author, str) or len(author) <= 255)
    assert store.count("mentions") == len(rows)


def test_listen_stores_a_page_with_odd_posts_and_the_source_is_not_stuck(tmp_path, server, db):  # noqa: F811
    server.live_body = FEED
    path = write_jsonl(tmp_path / "import.jsonl", ROWS)
    rules = tmp_path / "rules.yaml"
    rules.write_text("brands:\n  - {name: Aerolia, keywords: [aerolia]}\nsources:\n"
                     f"  - {{name: news, type: rss, url: 'http://127.0.0.1:{server.server_port}/live', interval: 15m}}\n"
                     f"  - {{name: import, type: file, path: '{path}', interval: 15m}}\n", encoding="utf-8")
    first = run("listen", "--once", "--no-classify", "--db", db, "--rules", rules)
    assert first.exit_code == 0, first.output
    assert "news: 4 fetched, 4 new" in first.output and "import: 5 fetched, 5 new" in first.output
    store = Store(db)
    check_stored(store, {"rss:ok-1", "rss:nul-2", "rss:long-3", "rss:ok-4", "file:f1", "file:f2", "file:f3", "file:f5"})
    rows = store.mention_rows().set_index("key")
    assert rows.loc["rss:nul-2", "title"] == "Aerolia lost my bag"
    assert rows.loc["rss:long-3", "author"] == LONG_AUTHOR[:254] + "…"
    odd_source = rows[rows["source_id"] == "f4"].iloc[0]
    assert len(odd_source["source"]) == 40 and odd_source["source"].startswith("campaign-import-")
    health = store.health().set_index("source_name")
    assert health["last_error"].isna().all() and set(health.index) == {"news", "import"}

    again = run("listen", "--once", "--no-classify", "--db", db, "--rules", rules)
    assert again.exit_code == 0 and "news: 0 fetched, 0 new" in again.output
    assert store.count("mentions") == 9


def test_ingest_stores_odd_rows_normalised(tmp_path, db):
    path = write_jsonl(tmp_path / "odd.jsonl", ROWS)
    result = run("ingest", path, "--no-classify", "--db", db)
    assert result.exit_code == 0, result.output
    assert "5 rows, 5 new mentions" in result.output
    check_stored(Store(db), {"file:f1", "file:f2", "file:f3", "file:f5"})
    assert Store(db).mention_rows().set_index("key").loc["file:f2", "text"] == "Aerolia lost my bag again"


def poisoned(source_id: str) -> Mention:
    """A Mention that slipped past normalisation (a future field, a listener bug): the database refuses it."""
    mention = Mention("twitter", source_id, "Aerolia secret post text")
    object.__setattr__(mention, "author_followers", 10**30)
    return mention


def test_a_post_the_database_refuses_is_reported_by_key_and_the_rest_of_the_page_is_kept(db):
    store = Store(db)
    page = [Mention("twitter", "1", "fine"), poisoned("2"), Mention("twitter", "3", "also fine")]
    saved = store.save_page("x", page, {"since_id": "3"})
    assert (saved.new, [r.key for r in saved.refused]) == (2, ["twitter:2"])
    assert set(store.mention_rows()["key"]) == {"twitter:1", "twitter:3"}
    assert store.get_cursor("x") == {"since_id": "3"}          # the source moves on
    audit = store.audit().set_index("action")
    detail = json.loads(audit.loc["refused", "detail"])
    assert detail["key"] == "twitter:2" and "database refused" in detail["reason"]
    assert "secret post text" not in detail["reason"] and "parameters" not in detail["reason"]


def test_ingest_without_skip_invalid_stores_nothing_when_the_database_refuses_a_row(tmp_path, db, monkeypatch):
    path = write_jsonl(tmp_path / "rows.jsonl", [{"id": str(i), "text": f"post {i}"} for i in range(3)])
    import listeners.files as files

    real = files.to_mention
    monkeypatch.setattr(files, "to_mention", lambda data, p, line, default_source="file":
                        poisoned("1") if data["id"] == "1" else real(data, p, line, default_source))
    result = run("ingest", path, "--no-classify", "--db", db)
    assert result.exit_code == 1 and "nothing stored" in result.output
    assert "twitter:1: database refused it" in result.output and "post 1" not in result.output
    assert Store(db).count("mentions") == 0
    skipped = run("ingest", path, "--no-classify", "--skip-invalid", "--db", db)
    assert skipped.exit_code == 0 and "1 bad rows skipped" in skipped.output
    assert Store(db).count("mentions") == 2
