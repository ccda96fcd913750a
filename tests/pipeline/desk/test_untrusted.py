"""Text from outside, made safe for a spreadsheet cell and for a line of our own words."""
import math

import pandas as pd

from pipeline.desk.untrusted import csv_safe, plain_name, safe_csv_cell, to_csv


def test_cells_that_would_start_a_formula_are_quoted_and_nothing_else_changes():
    for hostile in ("=1+1", "+1", "-1+2", "@SUM(A1)", "\tx", "\rx", "|cmd", "  =1+1", "\n@x"):
        assert safe_csv_cell(hostile) == "'" + hostile
    for harmless in ("hello", "a=b", "", "Aérolia -20%", "x@y.z"):
        assert safe_csv_cell(harmless) == harmless
    for value in (-1.5, 3, None, math.inf):
        assert safe_csv_cell(value) is value


def test_number_columns_stay_numbers_and_text_columns_are_escaped():
    frame = pd.DataFrame({"text": ["=HYPERLINK(\"x\")", "ok"], "score": [-0.5, 0.25], "n": [-3, 4]})
    safe = csv_safe(frame)
    assert list(safe["text"]) == ["'=HYPERLINK(\"x\")", "ok"]
    assert safe["score"].dtype == float and safe["n"].dtype == frame["n"].dtype
    assert to_csv(frame).decode().splitlines()[1:] == ['"\'=HYPERLINK(""x"")",-0.5,-3', "ok,0.25,4"]
    assert list(frame["text"])[0].startswith("=")          # the frame itself is untouched


def test_a_name_cannot_reverse_the_line_it_is_shown_in():
    assert plain_name("ma\u202enollam") == "\u2068manollam\u2069"
    assert plain_name("\u2067x\u2069\u202a\u200f") == "\u2068x\u2069"
    assert plain_name("سارة") == "\u2068سارة\u2069"            # right-to-left names stay, isolated
    assert plain_name(None) == plain_name(float("nan")) == plain_name("") == ""
