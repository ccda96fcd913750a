"""Listener test fixtures: where the cassettes are, replay-only vcr configs, no sleeping.

Two sets of cassettes: the real recordings in ../shared/fixtures (tests skip when a checkout has
no ../shared), and our own trimmed Aerolia copies under tests/listeners/fixtures, which keep the
recorded HTTP structure, URLs and headers with invented content (see the README in each folder).
"""
from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import vcr

from tests import conftest as root

HERE = Path(__file__).resolve().parent
OWN_FIXTURES = HERE / "fixtures"


@pytest.fixture
def shared_fixtures() -> Path:
    folder = root.SHARED / "fixtures"
    if not folder.is_dir():
        pytest.skip("../shared/fixtures is absent")
    return folder


@pytest.fixture
def own_fixtures() -> Path:
    return OWN_FIXTURES


@pytest.fixture
def no_sleep(monkeypatch) -> list[float]:
    """prawcore sleeps between retries and before rate-limited calls; tests record the waits instead.

    Not autouse: the runner's tests beside these need a real sleep."""
    import time

    waits: list[float] = []
    monkeypatch.setattr(time, "sleep", waits.append)
    return waits


def gunzip_bodies(request, response):
    """tweepy's cassettes hold gzip bodies recorded under urllib3 1.x; urllib3 2.x replays them still
    compressed (vcrpy issue #719), so decode them once at load time."""
    headers = response["headers"]
    encoding = next((k for k in headers if k.lower() == "content-encoding"), None)
    body = response["body"].get("string")
    if encoding and isinstance(body, bytes) and body[:2] == b"\x1f\x8b":
        response["body"]["string"] = gzip.decompress(body)
        del headers[encoding]
        for name in [k for k in headers if k.lower() == "content-length"]:
            headers[name] = [str(len(response["body"]["string"]))]
    return request, response


def query_param(name: str):
    """A vcr matcher comparing one query-string parameter, for cassettes recorded with fewer params."""
    def matcher(r1, r2):
        return dict(r1.query).get(name) == dict(r2.query).get(name)

    return matcher


@pytest.fixture
def sent() -> list[dict[str, str]]:
    """Query parameters of each distinct request the code under test sent, in order."""
    return []


def _recorder(sent: list, **options) -> vcr.VCR:
    def record(r1, r2):  # vcr calls matchers with (request sent, request recorded)
        params = dict(r1.query)
        if params not in sent:
            sent.append(params)
        return True

    recorder = vcr.VCR(record_mode="none", **options)
    recorder.register_matcher("sent", record)
    recorder.register_matcher("search_query", query_param("query"))
    recorder.register_matcher("search_q", query_param("q"))
    return recorder


EXACT = ["sent", "method", "scheme", "host", "path", "query"]


@pytest.fixture
def tweepy_vcr(sent) -> vcr.VCR:
    """Replay-only; by default exact method and URL (query parameters in any order)."""
    return _recorder(sent, after_load_interaction=gunzip_bodies, match_on=EXACT)


@pytest.fixture
def praw_vcr(sent) -> vcr.VCR:
    return _recorder(sent, serializer="json", match_on=EXACT)
