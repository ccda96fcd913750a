"""Importing files with bad rows (issue 16): every problem is `file:line: reason`, never a traceback,
and without --skip-invalid a file with any bad row stores nothing."""
from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pipeline.cli import main
from pipeline.store import Store


@pytest.fixture
def db(backend_db):
    return backend_db


def ingest(db, *args):
    return CliRunner().invoke(main, ["ingest", *map(str, args), "--no-classify", "--db", db])


def jsonl(path, rows):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.mark.parametrize("bad, problem", [
    ({"id": "2", "text": "t", "author_followers": "inf"}, "field 'author_followers': expected a whole number"),
    ({"id": "2", "text": "t", "author_followers": 1e300}, "field 'author_followers': expected a whole number from 0"),
    ({"id": "2", "text": "t", "created_at": 1e20}, "field 'created_at': date-time out of range"),
    ('{"id": "2", "text": ' + "[" * 100_000 + "]" * 100_000 + "}", "JSON nested too deep"),
])
def test_a_bad_row_is_named_by_line_and_the_file_stores_nothing(tmp_path, db, bad, problem):
    path = jsonl(tmp_path / "rows.jsonl", [{"id": "1", "text": "fine"}, bad, {"id": "3", "text": "fine"}])
    result = ingest(db, path)
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output   # not a traceback
    assert f"rows.jsonl:2: {problem}" in result.output and "nothing stored" in result.output
    assert "Traceback" not in result.output and Store(db).count("mentions") == 0
    skipped = ingest(db, path, "--skip-invalid")
    assert skipped.exit_code == 0 and Store(db).count("mentions") == 2


def test_a_latin1_csv_is_refused_with_its_line_and_read_with_encoding(tmp_path, db):
    path = tmp_path / "export.csv"
    path.write_bytes("id,text\n1,fine\n2,Aerolia a perdu ma valise à Orly\n".encode("latin-1"))
    refused = ingest(db, path)
    assert refused.exit_code == 1 and "export.csv:3: not utf-8 text" in refused.output
    assert "--encoding latin-1" in refused.output and Store(db).count("mentions") == 0
    read = ingest(db, path, "--encoding", "latin-1")
    assert read.exit_code == 0, read.output
    assert "valise à Orly" in Store(db).mention_rows().set_index("source_id").loc["2", "text"]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-8-sig"])
def test_a_csv_with_a_byte_order_mark_is_read(tmp_path, db, encoding):
    path = tmp_path / "excel.csv"
    path.write_bytes("id,text\n1,Lumelle crème épuisée\n".encode(encoding))
    result = ingest(db, path)
    assert result.exit_code == 0, result.output
    assert Store(db).mention_rows()["text"].tolist() == ["Lumelle crème épuisée"]


def test_an_unknown_encoding_is_a_usage_error(tmp_path, db):
    path = jsonl(tmp_path / "rows.jsonl", [{"id": "1", "text": "fine"}])
    result = ingest(db, path, "--encoding", "klingon")
    assert result.exit_code == 2 and "unknown encoding 'klingon'" in result.output
