"""The file listener: JSONL or CSV mentions, for imports, replays and backfills.

Each line (JSONL) or row (CSV) needs `id` and `text`; `source`, `source_id`, `url`, `author`,
`author_followers`, `author_created_at`, `created_at`, `lang`, `title`, `parent_id`, `thread_id`
are optional. A bad row is reported with its file and line number. As a listener, the cursor is
the number of rows already taken, so a restart resumes after the last stored page.

Files are UTF-8 unless they start with a byte-order mark (UTF-8, UTF-16 or UTF-32, as spreadsheet
programs write them) or the caller names an encoding (`ecoute ingest --encoding latin-1`); a file
that is not what it claims to be is refused with the first line that does not decode.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from pathlib import Path
from typing import Any, Iterator

from pipeline.mention import Mention

from .base import ListenerError, Page

PAGE_SIZE = 500
MAX_CSV_FIELD = 64 * 1024 * 1024   # csv's default limit (128 KiB) refuses a long blog post
# longest first: a UTF-32 LE mark starts with the UTF-16 LE one
BOMS = ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"), (codecs.BOM_UTF8, "utf-8-sig"),
        (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


class RowError(ValueError):
    """A row that cannot become a Mention; the message names the file and line."""

    def __init__(self, path: str, line: int, problem: str):
        self.path, self.line, self.problem = path, line, problem
        super().__init__(f"{path}:{line}: {problem}")


def read_rows(path: str | Path, encoding: str | None = None) -> Iterator[tuple[int, dict[str, Any] | RowError]]:
    """(line number, row dict) per record; a row that does not parse yields a RowError instead.

    A file that does not decode raises RowError naming the first line that does not."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".jsonl", ".ndjson", ".json", ".csv"):
        raise RowError(str(path), 0, f"unknown file type '{suffix}': expected .jsonl or .csv")
    encoding = encoding or sniff_encoding(path)
    try:
        with path.open(encoding=encoding, newline="") as handle:
            if suffix == ".csv":
                yield from _csv_rows(handle, str(path))
            else:
                yield from _jsonl_rows(handle, str(path))
    except UnicodeError as exc:
        line = _first_undecodable_line(path, encoding)
        raise RowError(str(path), line, f"not {encoding} text ({exc.reason}); save the file as UTF-8, "
                                        f"or name its encoding (ecoute ingest --encoding latin-1)") from None


def sniff_encoding(path: Path) -> str:
    """UTF-8, or the encoding a byte-order mark at the start of the file names."""
    with path.open("rb") as handle:
        start = handle.read(4)
    return next((name for bom, name in BOMS if start.startswith(bom)), "utf-8")


def _first_undecodable_line(path: Path, encoding: str) -> int:
    """The line a decoding error is on (the error itself only knows a position in a buffer)."""
    decoder = codecs.getincrementaldecoder(encoding)()
    number = 1
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(65536), b""):
            try:
                text = decoder.decode(chunk)
            except UnicodeError as exc:
                return number + exc.object[:exc.start].count(b"\n") if isinstance(exc.object, bytes) else number
            number += text.count("\n")
    return number


def _jsonl_rows(handle: io.TextIOBase, name: str):
    for number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, RowError(name, number, f"not valid JSON ({exc.msg} at column {exc.colno})")
            continue
        except RecursionError:
            yield number, RowError(name, number, "JSON nested too deep to read")
            continue
        if not isinstance(data, dict):
            yield number, RowError(name, number, f"expected a JSON object, got {type(data).__name__}")
            continue
        yield number, data


def _csv_rows(handle: io.TextIOBase, name: str):
    csv.field_size_limit(max(csv.field_size_limit(), MAX_CSV_FIELD))
    reader = csv.DictReader(handle)
    try:
        fieldnames = reader.fieldnames
    except csv.Error as exc:
        yield 1, RowError(name, 1, f"not a CSV header ({exc})")
        return
    if not fieldnames or "text" not in fieldnames:
        yield 1, RowError(name, 1, f"CSV header must name a 'text' column, got {str(fieldnames)[:200]}")
        return
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:   # the rest of the file cannot be split into rows reliably
            raise RowError(name, reader.line_num, f"not valid CSV ({exc})") from None
        extra = row.pop(None, None)
        if extra:
            yield reader.line_num, RowError(name, reader.line_num, f"{len(extra)} more values than header columns")
            continue
        yield reader.line_num, {k: (v if v != "" else None) for k, v in row.items()}


def to_mention(data: dict[str, Any], path: str, line: int, default_source: str = "file") -> Mention:
    data = dict(data)
    data.setdefault("source", default_source)
    raw = {k: v for k, v in data.items() if k != "raw"}
    try:
        return Mention.from_dict({**data, "raw": data.get("raw") or raw})
    except ValueError as exc:
        raise RowError(path, line, str(exc)) from None


def read_mentions(path: str | Path, errors: list[RowError] | None = None,
                  encoding: str | None = None) -> Iterator[Mention]:
    """Mentions of a file, in order. Bad rows raise RowError, or are collected in `errors` if given;
    a file that cannot be read at all (its encoding, broken CSV quoting) always raises."""
    for line, row in read_rows(path, encoding):
        try:
            if isinstance(row, RowError):
                raise row
            yield to_mention(row, str(path), line)
        except RowError as exc:
            if errors is None:
                raise
            errors.append(exc)


def listen(source, cursor: dict | None, rules=None) -> Iterator[Page]:
    """Pages of the file's mentions after the cursor's row count."""
    if not Path(source.path).is_file():
        raise ListenerError(f"source '{source.name}': file {source.path} not found "
                            f"(relative paths start from the directory Écoute runs in)")
    try:
        yield from _pages(source, cursor)
    except RowError as exc:
        raise ListenerError(f"source '{source.name}': {exc}") from None


def _pages(source, cursor: dict | None) -> Iterator[Page]:
    done = int((cursor or {}).get("rows", 0))
    batch: list[Mention] = []
    taken = 0
    for taken, (line, row) in enumerate(read_rows(source.path), start=1):
        if taken <= done:
            continue
        if isinstance(row, RowError):
            raise row
        batch.append(to_mention(row, source.path, line))
        if len(batch) >= PAGE_SIZE:
            yield Page(batch, {"rows": taken})
            batch = []
    if batch or taken > done:
        yield Page(batch, {"rows": max(taken, done)})
