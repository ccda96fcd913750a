"""The one record that flows through Écoute: a `Mention`, and the `Labels` a pipeline gives it.

A listener produces Mentions, the store keeps them, every pipeline stage reads them. The raw
platform payload stays in `raw` (JSON-serialisable) for audit and reprocessing. Identity is
(source, source_id): the same post fetched twice is the same Mention.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 text, epoch seconds or a datetime, as an aware UTC datetime (None stays None)."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        dt = value
    elif isinstance(value, (int, float)):
        dt = datetime.fromtimestamp(value, tz=timezone.utc)
    elif isinstance(value, str):
        text = value.strip()
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        dt = datetime.fromisoformat(text)
    else:
        raise ValueError(f"expected a date-time, got {value!r}")
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


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
        followers = data.get("author_followers")
        if followers in (None, "") or followers != followers:
            values["author_followers"] = None
        else:
            try:
                values["author_followers"] = int(float(followers))
            except (ValueError, TypeError):
                raise ValueError(f"field 'author_followers': expected a whole number, got {followers!r}") from None
        return cls(**values)


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
    category: str | None = None          # complaints only: delivery, billing_refund, … (pipeline/intents.py)
    severity: str | None = None          # complaints only: no_explicit_reproach, disapproval, accusation, blame
    transparency: tuple[str, ...] = ()
    reasons: tuple[str, ...] = ()
    model: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["brands"] = list(self.brands)
        data["competitors"] = list(self.competitors)
        data["transparency"] = list(self.transparency)
        data["reasons"] = list(self.reasons)
        return data


def dumps(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, default=str)
