"""Every Mention is storable from the moment it exists (issue 16): control characters, lone
surrogates, over-long names and ids and out-of-range numbers are normalised at construction."""
from datetime import datetime

import pytest

from pipeline.mention import MAX_ID, Mention, fit_id, parse_time


def test_control_characters_go_but_newlines_and_tabs_stay():
    m = Mention("rss", "1", "a\x00b\x07c\r\nd\te\rf", title="t\x00itle", author="@d\x1bn")
    assert (m.text, m.title, m.author) == ("abc\nd\te\nf", "title", "@dn")


def test_a_lone_surrogate_becomes_a_replacement_character():
    assert Mention("file", "1", "bad \ud800 half").text == "bad \ufffd half"
    assert Mention("file", "1", "ok \U0001F600").text == "ok \U0001F600"


def test_long_names_are_cut_and_long_ids_keep_their_identity():
    m = Mention("x" * 60, "9" * 400, "text", author="a" * 300, parent_id="p" * 300, lang="not-a-language-tag")
    assert len(m.source) == 40 and len(m.source_id) == MAX_ID and len(m.parent_id) == MAX_ID
    assert len(m.author) == 255 and m.author.endswith("…") and m.lang is None
    assert Mention("x" * 60, "9" * 400, "again").key == m.key          # the same post maps the same way
    assert fit_id("9" * 400, MAX_ID) != fit_id("9" * 399 + "8", MAX_ID)  # two long ids never collide
    assert Mention("rss", "short", "t").source_id == "short"


@pytest.mark.parametrize("followers", [10**30, -5, float("inf")])
def test_a_follower_count_no_column_holds_is_dropped_on_construction(followers):
    assert Mention("x", "1", "t", author_followers=followers).author_followers is None


@pytest.mark.parametrize("value, problem", [("inf", "expected a whole number"), (1e300, "from 0 to"),
                                            ("-1", "from 0 to"), ("lots", "expected a whole number")])
def test_a_bad_follower_count_in_a_row_is_named(value, problem):
    with pytest.raises(ValueError, match=f"field .author_followers.: .*{problem}"):
        Mention.from_dict({"id": "1", "text": "t", "author_followers": value})


@pytest.mark.parametrize("value", [1e20, -1e20, "99999-01-01"])
def test_a_date_no_calendar_holds_is_a_value_error(value):
    with pytest.raises(ValueError):
        Mention.from_dict({"id": "1", "text": "t", "created_at": value})
    assert parse_time("2026-11-01T10:00:00Z") == datetime.fromisoformat("2026-11-01T10:00:00+00:00")
