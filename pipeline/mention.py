"""The one record that flows through Écoute: a `Mention`, and the `Labels` a pipeline gives it.

A listener produces Mentions, the store keeps them, every pipeline stage reads them. The raw
platform payload stays in `raw` (JSON-serialisable) for audit and reprocessing. Identity is
(source, source_id): the same post fetched twice is the same Mention.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


# What the store's columns hold (pipeline/store.py): longer values are shortened at construction, so
# that no post a platform sends can make the database refuse a page (issue 16: one author of 300
# characters stopped a PostgreSQL source for good).
MAX_SOURCE = 40
MAX_ID = 255          # source_id, parent_id, thread_id
MAX_AUTHOR = 255
MAX_LANG = 12
MAX_FOLLOWERS = 2**63 - 1   # a BIGINT
# C0 controls but tab and newline (NUL is refused by PostgreSQL text; the others only garble a
# line), and lone UTF-16 surrogates, which a JSON "\ud800" escape yields and no UTF-8 column stores
_UNSAFE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def clean_text(value: str) -> str:
    """Text a database and a terminal can hold: CR/CRLF become newlines, other control characters go,
    a lone surrogate becomes U+FFFD. Cheap for the common case (nothing to change)."""
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not _UNSAFE.search(value):
        return value
    return _UNSAFE.sub(lambda m: "\ufffd" if "\ud800" <= m.group() <= "\udfff" else "", value)


def fit_id(value: str, limit: int) -> str:
    """An identifier shortened to `limit` characters without losing its identity: a long one keeps its
    start and gains a digest of the whole, so two long ids never collide and the same one always maps
    the same way (an RSS guid can be a URL of any length)."""
    if len(value) <= limit:
        return value
    digest = hashlib.sha256(value.encode("utf-8", "replace")).hexdigest()[:16]
    return f"{value[:limit - 17]}~{digest}"


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 text, epoch seconds or a datetime, as an aware UTC datetime (None stays None).

    Raises ValueError for anything else, including a time no calendar holds (epoch 1e20)."""
    if value is None or value == "":
        return None
    try:
        if isinstance(value, datetime):
            dt = value
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            dt = datetime.fromtimestamp(value, tz=timezone.utc)
        elif isinstance(value, str):
            text = value.strip()
            if text.endswith("Z"):
                text = text[:-1] + "+00:00"
            dt = datetime.fromisoformat(text)
        else:
            raise ValueError(f"expected a date-time, got {_shown(value)}")
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        return dt.astimezone(timezone.utc)
    except (OverflowError, OSError):
        raise ValueError(f"date-time out of range: {_shown(value)}") from None


def _shown(value: Any, limit: int = 80) -> str:
    """A value as an error message quotes it: never the whole of a huge input."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} characters)"


def parse_followers(value: Any) -> int | None:
    """A follower count as a whole number a BIGINT holds; None for none. Raises ValueError naming the value."""
    if value is None or value == "" or value != value:
        return None
    try:
        number = int(float(value)) if not isinstance(value, int) else value
    except (ValueError, TypeError, OverflowError):
        raise ValueError(f"expected a whole number, got {_shown(value)}") from None
    if not 0 <= number <= MAX_FOLLOWERS:
        raise ValueError(f"expected a whole number from 0 to {MAX_FOLLOWERS}, got {_shown(value)}")
    return number


def format_time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Mention:
    """A public post, comment or article that may speak about a brand."""

    source: str
    source_id: str
    text: str
    created_at: datetime | None = None
    url: str | None = None
    author: str | None = None
    author_followers: int | None = None
    author_created_at: datetime | None = None
    title: str | None = None
    lang: str | None = None
    parent_id: str | None = None
    thread_id: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        """Every Mention is storable: control characters stripped, ids and names cut to their columns."""
        fixed: dict[str, Any] = {}
        for name in ("text", "title", "url", "author", "lang", "source", "source_id", "parent_id", "thread_id"):
            value = getattr(self, name)
            if value is not None:
                fixed[name] = clean_text(value) if isinstance(value, str) else str(value)
        fixed["source"] = fit_id(fixed["source"], MAX_SOURCE)
        fixed["source_id"] = fit_id(fixed["source_id"], MAX_ID)
        for name in ("parent_id", "thread_id"):
            if name in fixed:
                fixed[name] = fit_id(fixed[name], MAX_ID)
        if len(fixed.get("author") or "") > MAX_AUTHOR:
            fixed["author"] = fixed["author"][:MAX_AUTHOR - 1] + "…"
        if len(fixed.get("lang") or "") > MAX_LANG:
            fixed["lang"] = None   # not a language tag: the detector decides
        if self.author_followers is not None:
            try:
                fixed["author_followers"] = parse_followers(self.author_followers)
            except ValueError:
                fixed["author_followers"] = None
        for name, value in fixed.items():
            if value is not getattr(self, name):
                object.__setattr__(self, name, value)

    @property
    def key(self) -> str:
        """Stable identity across fetches: source and the platform's id."""
        return f"{self.source}:{self.source_id}"

    def replace(self, **changes: Any) -> "Mention":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        for name in ("created_at", "author_created_at"):
            data[name] = format_time(data[name])
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Mention":
        """Build from a loosely typed dict (a JSONL line, a CSV row, a table row).

        Raises ValueError naming the field that is wrong.
        """
        text = data.get("text")
        if text is None or (isinstance(text, float) and text != text):
            raise ValueError("missing field 'text'")
        source_id = data.get("source_id", data.get("id"))
        if source_id is None or str(source_id).strip() == "":
            raise ValueError("missing field 'id' (or 'source_id')")
        values: dict[str, Any] = {
            "source": str(data.get("source") or "file"),
            "source_id": str(source_id),
            "text": str(text),
            "raw": dict(data.get("raw") or {}),
        }
        for name in ("url", "author", "title", "lang", "parent_id", "thread_id"):
            value = data.get(name)
            values[name] = None if value in (None, "") or value != value else str(value)
        for name in ("created_at", "author_created_at"):
            try:
                values[name] = parse_time(data.get(name))
            except (ValueError, TypeError) as exc:
                raise ValueError(f"field '{name}': {exc}") from None
        try:
            values["author_followers"] = parse_followers(data.get("author_followers"))
        except ValueError as exc:
            raise ValueError(f"field 'author_followers': {exc}") from None
        return cls(**values)


# The label vocabulary, written once: what each field of Labels may hold (rules.yaml, the heads, the store, the
# dashboard and the benches read these names from here).
SENTIMENTS = ("negative", "neutral", "positive")
INTENTS = ("complaint", "question", "praise", "other")
CATEGORIES = ("delivery", "billing_refund", "product_quality", "customer_service", "delays_cancellation",
              "app_website", "safety", "other")          # the built-in complaint categories (rules.yaml may replace them)
SEVERITIES = ("no_explicit_reproach", "disapproval", "accusation", "blame")   # Jin & Aletras 2020, weakest first
EMOTIONS = ("anger", "joy", "optimism", "sadness")       # TweetEval emotion's mapping.txt order
TRANSPARENCY_KINDS = ("undisclosed_promotion", "undisclosed_affiliation", "coordinated_posting",
                      "deception_accusation")
DISMISS_REASONS = ("spam", "irrelevant", "duplicate", "other")   # why a case was closed without a reply


@dataclass(frozen=True)
class Labels:
    """What the pipeline decided about one mention, and which models decided it."""

    mention_key: str
    lang: str
    relevant: bool
    brands: tuple[str, ...]
    sentiment: str
    sentiment_score: float
    complaint: bool
    complaint_score: float
    intent: str
    needs_response: bool
    priority: int
    competitors: tuple[str, ...] = ()
    category: str | None = None          # complaints only: delivery, billing_refund, … (pipeline/models/intents.py)
    severity: str | None = None          # complaints only: no_explicit_reproach, disapproval, accusation, blame
    transparency: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    model: str = ""
    error: str | None = None
    emotion: str | None = None           # anger, joy, optimism or sadness; None when the heads have no emotion task
    emotion_score: float | None = None   # that emotion's probability
    irony_score: float | None = None     # probability of irony; None when the heads have no irony task

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["brands"] = list(self.brands)
        data["competitors"] = list(self.competitors)
        data["transparency"] = list(self.transparency)
        data["reasons"] = list(self.reasons)
        return data


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
