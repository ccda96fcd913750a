"""The Bluesky listener against a local Jetstream on 127.0.0.1: events in Jetstream's documented JSON
(commit create/delete, identity, account), bursts, dropped connections, cursors, kill -9; replies
through a fake atproto client. Nothing here reaches the network: profile lookups are fakes or off."""
from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse
from types import SimpleNamespace

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import serve

from listeners import bluesky
from listeners.base import ListenerError, Unavailable
from listeners.bluesky import REWIND_US, KeywordFilter, Reply, listen, reply, subscribe_url
from pipeline.mention import Mention
from pipeline.rules import Brand, Rules, Source
from pipeline.store import Store
from tests.conftest import ROOT
from tests.listeners.test_listen_command import listen_once

BASE = 1_725_911_162_000_000  # 2024-09-09, as in Jetstream's README examples
SECOND = 1_000_000
ALICE, BOB = "did:plc:alice4z3vbxq2ezbjqe5ucnp", "did:plc:bob7yk2yzq5ko2zo6wr6he4m"


# -- Jetstream events, as its README documents them --------------------------------------------

def rkey(i: int) -> str:
    return f"3l3qo2vut{i:05d}"


def uri(i: int, did: str = ALICE) -> str:
    return f"at://{did}/app.bsky.feed.post/{rkey(i)}"


def post(i: int, text: str, did: str = ALICE, reply_to: int | None = None, langs=("en",)) -> dict:
    record = {"$type": "app.bsky.feed.post", "createdAt": "2024-09-09T19:46:02.102Z", "langs": list(langs),
              "text": text}
    if reply_to is not None:
        parent = {"cid": f"bafyreiparent{reply_to:05d}", "uri": uri(reply_to, BOB)}
        record["reply"] = {"parent": parent, "root": parent}
    return {"did": did, "time_us": BASE + i * SECOND, "kind": "commit",
            "commit": {"rev": f"3l3qo2vuowo{i:03d}", "operation": "create", "collection": "app.bsky.feed.post",
                       "rkey": rkey(i), "record": record, "cid": f"bafyreidc6sydkkbchcyg62v77w{i:05d}"}}


def delete(i: int, of: int, did: str = ALICE) -> dict:
    return {"did": did, "time_us": BASE + i * SECOND, "kind": "commit",
            "commit": {"rev": f"3l3qo2vuowp{i:03d}", "operation": "delete", "collection": "app.bsky.feed.post",
                       "rkey": rkey(of)}}


def like(i: int) -> dict:
    return {"did": BOB, "time_us": BASE + i * SECOND, "kind": "commit",
            "commit": {"rev": "3l3qo2vuowo2b", "operation": "create", "collection": "app.bsky.feed.like",
                       "rkey": rkey(i), "record": {"$type": "app.bsky.feed.like", "createdAt": "2024-09-09T19:46:02Z",
                                                   "subject": {"cid": "bafyrei", "uri": uri(1)}}, "cid": "bafyrei"}}


def identity(i: int, did: str, handle: str) -> dict:
    return {"did": did, "time_us": BASE + i * SECOND, "kind": "identity",
            "identity": {"did": did, "handle": handle, "seq": 1409752997 + i, "time": "2024-09-05T06:11:04.870Z"}}


def account(i: int, did: str, active: bool = True) -> dict:
    return {"did": did, "time_us": BASE + i * SECOND, "kind": "account",
            "account": {"active": active, "did": did, "seq": 1409753013 + i, "time": "2024-09-05T06:11:04.870Z"}}


# -- a local Jetstream --------------------------------------------------------------------------

class Jetstream:
    """Serves `events` from the `cursor` a client asks for, honouring `wantedCollections`; without a
    cursor it serves them all (as if they arrived live). `drops[n]` closes connection n after that many
    events; `pause` sleeps after each 50 events, so a stream lasts long enough to be killed mid-way."""

    def __init__(self, events: list[dict], drops: dict[int, int] | None = None, pause: float = 0.0):
        self.events, self.drops, self.pause = list(events), drops or {}, pause
        self.queries: list[dict[str, str]] = []

    def handle(self, connection) -> None:
        params = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(connection.request.path).query))
        number = len(self.queries)
        self.queries.append(params)
        cursor = int(params.get("cursor", 0))
        wanted = params.get("wantedCollections")
        try:
            self._send(connection, number, cursor, wanted)
            connection.recv()  # stay open and quiet, as a live stream between posts
        except ConnectionClosed:  # the listener went away (idle, killed)
            pass

    def _send(self, connection, number: int, cursor: int, wanted: str | None) -> None:
        sent = 0
        for event in list(self.events):
            if event["time_us"] < cursor or (wanted and "commit" in event and event["commit"]["collection"] != wanted):
                continue
            if self.drops.get(number) == sent:
                connection.close(1011, "dropped")
                return
            connection.send(json.dumps(event))
            sent += 1
            if self.pause and sent % 50 == 0:
                time.sleep(self.pause)


@pytest.fixture
def jetstream():
    servers = []

    def start(events, **options) -> tuple[Jetstream, str]:
        stream = Jetstream(events, **options)
        server = serve(stream.handle, "127.0.0.1", 0)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return stream, f"ws://127.0.0.1:{server.socket.getsockname()[1]}/subscribe"

    yield start
    for server in servers:
        server.shutdown()


@pytest.fixture
def every_event_a_page(monkeypatch):
    monkeypatch.setattr(bluesky, "PAGE_SECONDS", 0.0)


def rules(**brand) -> Rules:
    return Rules(brands=[Brand(**{"name": "Aerolia", "keywords": ["aerolia", "aérolia air"],
                                  "exclude": ["aerolia pizza"], **brand})])


def source(url: str, **fields) -> Source:
    return Source(**{"name": "sky", "type": "bluesky", "url": url, "idle": "0.3s", "profiles": False, **fields})


def read(url, cursor=None, **options):
    options.setdefault("sleep", lambda s: None)
    return list(listen(source(url, **{k: options.pop(k) for k in ("max_items",) if k in options}), cursor, rules(),
                       **options))


STREAM = [
    identity(0, ALICE, "alice.example.com"),
    account(1, ALICE),
    post(2, "My Aerolia flight is delayed again"),
    like(3),
    post(4, "aerolia pizza is the best pizza"),              # excluded phrase
    post(5, "Nothing to see here", did=BOB),
    post(6, "@bob.example.com Aérolia Air lost my bag", reply_to=1, langs=("fr", "en")),
    post(7, "aerolian is not a brand"),                      # no whole-word match
]


# -- listening ----------------------------------------------------------------------------------

def test_posts_naming_a_brand_become_mentions_and_the_rest_is_skipped(jetstream):
    stream, url = jetstream(STREAM)
    pages = read(url)
    mentions = [m for p in pages for m in p.mentions]
    assert [m.source_id for m in mentions] == [uri(2), uri(6)]
    delayed, bag = mentions
    assert delayed.text == "My Aerolia flight is delayed again" and delayed.author == "@alice.example.com"
    assert delayed.url == f"https://bsky.app/profile/{ALICE}/post/{rkey(2)}"
    assert delayed.thread_id == uri(2) and delayed.parent_id is None and delayed.lang == "en"
    assert delayed.created_at.isoformat() == "2024-09-09T19:46:02.102000+00:00"
    assert bag.parent_id == uri(1, BOB) and bag.thread_id == uri(1, BOB) and bag.lang == "fr"
    assert bag.raw["commit"]["cid"] == "bafyreidc6sydkkbchcyg62v77w00006"
    assert pages[-1].cursor["time_us"] == BASE + 7 * SECOND
    assert stream.queries == [{"wantedCollections": "app.bsky.feed.post"}]


def test_a_restart_sends_the_cursor_rewound_and_stores_nothing_twice(jetstream, every_event_a_page):
    stream, url = jetstream(STREAM)
    first = read(url)
    stream.events += [post(8, "Aerolia again"), post(9, "still nothing")]
    second = read(url, first[-1].cursor)
    assert stream.queries[1]["cursor"] == str(BASE + 7 * SECOND - REWIND_US)
    assert [m.source_id for p in second for m in p.mentions] == [uri(8)]  # 6 is replayed, known as recent
    assert second[-1].cursor["time_us"] == BASE + 9 * SECOND


def test_a_burst_is_read_whole_in_pages(jetstream):
    burst = [post(i, f"aerolia post {i}" if i % 3 == 0 else f"other post {i}") for i in range(3000)]
    _, url = jetstream(burst)
    pages = read(url, max_items=5000)
    keys = [m.source_id for p in pages for m in p.mentions]
    assert keys == [uri(i) for i in range(0, 3000, 3)]
    assert len(pages) >= 10 and all(len(p.mentions) <= bluesky.PAGE_SIZE for p in pages)
    assert pages[-1].cursor["time_us"] == BASE + 2999 * SECOND


def test_a_dropped_connection_resumes_from_the_last_page_losing_nothing(jetstream, every_event_a_page):
    events = [post(i, f"aerolia {i}" if i % 2 else f"x {i}") for i in range(40)]
    stream, url = jetstream(events, drops={0: 15, 1: 10})
    waits = []
    pages = read(url, sleep=waits.append)
    keys = [m.source_id for p in pages for m in p.mentions]
    assert keys == [uri(i) for i in range(1, 40, 2)]  # each once, in order
    assert len(stream.queries) == 3 and len(waits) == 2
    assert int(stream.queries[1]["cursor"]) == BASE + 14 * SECOND - REWIND_US


def test_max_items_ends_a_cycle_and_the_next_goes_on(jetstream, every_event_a_page):
    _, url = jetstream([post(i, f"aerolia {i}") for i in range(10)])
    first = read(url, max_items=4)
    second = read(url, first[-1].cursor)
    keys = [m.source_id for p in first + second for m in p.mentions]
    assert len([m for p in first for m in p.mentions]) == 4 and keys == [uri(i) for i in range(10)]


def test_a_delete_reaches_the_page_and_a_post_deleted_before_its_page_is_never_stored(jetstream):
    _, url = jetstream([post(1, "aerolia one"), post(2, "aerolia two"), delete(3, of=2), delete(4, of=99)])
    pages = read(url)
    assert [m.source_id for p in pages for m in p.mentions] == [uri(1)]
    assert [k for p in pages for k in p.deleted] == [f"bluesky:{uri(2)}", f"bluesky:{uri(99)}"]


def test_an_unreachable_jetstream_backs_off_then_is_unavailable():
    waits = []
    with pytest.raises(Unavailable, match=r"source 'sky': Jetstream at ws://127.0.0.1:9/subscribe failed 6 times"):
        read("ws://127.0.0.1:9/subscribe", sleep=waits.append)
    assert len(waits) == bluesky.MAX_RECONNECTS and waits == sorted(waits)


def test_the_default_url_is_the_public_jetstream_with_posts_only():
    assert subscribe_url(Source(name="sky", type="bluesky"), None) == (
        "wss://jetstream2.us-east.bsky.network/subscribe?wantedCollections=app.bsky.feed.post")
    assert subscribe_url(Source(name="sky", type="bluesky"), BASE).endswith(f"&cursor={BASE - REWIND_US}")


# -- authors ------------------------------------------------------------------------------------

def test_authors_are_looked_up_once_in_batches_and_a_failing_lookup_does_not_stop_the_stream(jetstream,
                                                                                             every_event_a_page):
    _, url = jetstream([post(1, "aerolia a", did=BOB), post(2, "aerolia b", did=BOB), post(3, "aerolia c")])
    asked = []

    def profiles(dids):
        asked.append(dids)
        if ALICE in dids:
            raise ConnectionError("AppView down")
        return {BOB: {"handle": "bob.example.com", "followers": 42, "created_at": "2023-04-01T00:00:00Z"}}

    mentions = [m for p in read(url, profiles=profiles) for m in p.mentions]
    assert [(m.author, m.author_followers) for m in mentions] == [
        ("@bob.example.com", 42), ("@bob.example.com", 42), (ALICE, None)]
    assert mentions[0].author_created_at.year == 2023
    assert asked == [[BOB], [ALICE]]  # Bob cached after the first page


# -- keyword filter -----------------------------------------------------------------------------

def test_the_keyword_filter_folds_accents_and_case_and_honours_exclusions():
    match = KeywordFilter(rules().brands)
    assert match("AEROLIA is late") == ["Aerolia"] and match("Aérolia air, again") == ["Aerolia"]
    assert match("aerolia pizza tonight") == [] and match("aerolian") == [] and match("") == []
    assert match("aerolia pizza, then my aerolia flight") == ["Aerolia"]


# -- end to end: ecoute listen --once, and kill -9 ---------------------------------------------

def write_rules(tmp_path, url: str, extra: str = "") -> str:
    path = tmp_path / "rules.yaml"
    path.write_text("brands:\n  - {name: Aerolia, keywords: [aerolia], exclude: [aerolia pizza]}\nsources:\n"
                    f"  - {{name: sky, type: bluesky, url: '{url}', idle: 0.3s, profiles: false, interval: 1s{extra}}}\n")
    return str(path)


def test_listen_once_twice_stores_each_match_once_honours_a_delete_and_resumes(tmp_path, jetstream):
    stream, url = jetstream(STREAM)
    db, rules_file = str(tmp_path / "sky.db"), write_rules(tmp_path, url)
    first = listen_once(db, rules_file)
    assert "sky: 2 fetched, 2 new" in first.output
    stream.events += [post(8, "aerolia once more"), delete(9, of=2)]
    second = listen_once(db, rules_file)
    assert "sky: 1 fetched, 1 new" in second.output
    assert stream.queries[1]["cursor"] == str(BASE + 7 * SECOND - REWIND_US)
    rows = Store(db).mention_rows().set_index("key")
    assert sorted(rows.index) == [f"bluesky:{uri(i)}" for i in (2, 6, 8)]
    deleted = rows.loc[f"bluesky:{uri(2)}"]
    assert deleted["deleted_at"] is not None and deleted["text"] == ""
    assert list(Store(db).audit()["actor"]) == ["source:sky"]
    assert Store(db).get_cursor("sky")["time_us"] == BASE + 9 * SECOND


def _cursor_time(db) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            row = conn.execute("select cursor from cursors where source_name='sky'").fetchone()
        return json.loads(row[0])["time_us"] if row else 0
    except sqlite3.OperationalError:
        return 0


def _listen(db, rules_file, *extra):
    return subprocess.Popen([sys.executable, "-m", "pipeline.cli", "listen", "--no-classify", "--db", db,
                             "--rules", rules_file, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, cwd=ROOT)


def test_killed_with_sigkill_mid_stream_a_restart_stores_every_match_exactly_once(tmp_path, jetstream):
    total = 20_000
    events = [post(i, f"aerolia {i}" if i % 4 == 0 else f"other {i}") for i in range(total)]
    _, url = jetstream(events, pause=0.003)
    db, rules_file = str(tmp_path / "sky.db"), write_rules(tmp_path, url, ", max_items: 100000")
    process = _listen(db, rules_file)
    last = BASE + (total - 1) * SECOND
    deadline = time.time() + 120
    while time.time() < deadline and not (BASE < _cursor_time(db) < last - 1000 * SECOND):
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(10)
    killed_at = _cursor_time(db)
    assert BASE < killed_at < last, "the listener was not caught mid-stream"
    again = _listen(db, rules_file, "--once")
    output, _ = again.communicate(timeout=300)
    assert again.returncode == 0, output
    with sqlite3.connect(db) as conn:
        stored = [r[0] for r in conn.execute("select source_id from mentions")]
    assert len(stored) == len(set(stored)) == total // 4
    assert set(stored) == {uri(i) for i in range(0, total, 4)}
    assert _cursor_time(db) == last


# -- replies ------------------------------------------------------------------------------------

class FakeClient:
    """Stands in for atproto's Client: records what send_post got, answers like createRecord."""

    def __init__(self):
        self.sent = []

    def send_post(self, text, reply_to=None):
        self.sent.append((text, reply_to))
        return SimpleNamespace(uri=f"at://did:plc:aeroliadesk/app.bsky.feed.post/3kreply", cid="bafyreply")


def test_reply_names_the_post_as_parent_and_its_thread_root():
    client = FakeClient()
    mention = bluesky.to_mention(post(6, "Aerolia lost my bag", reply_to=1))
    posted = reply(source(None), mention, "Sorry! Please DM us your file number.", client=client)
    assert posted == Reply("at://did:plc:aeroliadesk/app.bsky.feed.post/3kreply",
                           "https://bsky.app/profile/did:plc:aeroliadesk/post/3kreply")
    [(text, ref)] = client.sent
    assert text == "Sorry! Please DM us your file number."
    assert (ref.parent.uri, ref.parent.cid) == (uri(6), "bafyreidc6sydkkbchcyg62v77w00006")
    assert (ref.root.uri, ref.root.cid) == (uri(1, BOB), "bafyreiparent00001")
    top = bluesky.to_mention(post(2, "Aerolia?"))
    reply(source(None), top, "Hi!", client=client)
    assert client.sent[-1][1].root == client.sent[-1][1].parent


def test_reply_without_credentials_says_what_to_set(monkeypatch):
    monkeypatch.delenv("BLUESKY_HANDLE", raising=False)
    monkeypatch.setenv("BLUESKY_APP_PASSWORD", "xxxx-xxxx")
    with pytest.raises(ListenerError, match="set BLUESKY_HANDLE and BLUESKY_APP_PASSWORD"):
        reply(source(None), Mention("bluesky", uri(1), "hi"), "hello")


def test_a_failed_reply_is_a_listener_error_naming_the_post():
    class Refusing(FakeClient):
        def send_post(self, text, reply_to=None):
            raise RuntimeError("Bad request: record too long")

    with pytest.raises(ListenerError, match=rf"Bluesky refused the reply to {uri(2)}: RuntimeError"):
        reply(source(None), bluesky.to_mention(post(2, "Aerolia?")), "x" * 400, client=Refusing())


def test_the_benchmark_filters_its_synthetic_events_like_the_listener():
    from listeners import bench_jetstream

    chosen = bench_jetstream.brands(3)
    messages = bench_jetstream.events(2000, [k for b in chosen for k in b.keywords] + [b.exclude[0] for b in chosen])
    kinds = {json.loads(m)["kind"] for m in messages}
    seconds, matched = bench_jetstream.run(messages, KeywordFilter(chosen))
    assert kinds == {"commit", "identity", "account"} and seconds > 0 and 0 < matched < 40
