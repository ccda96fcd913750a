"""What text from outside (posts, authors, source names) needs before it leaves us in another form:
a spreadsheet cell, or a name inside a line of our own words.

Post text is hostile input. On screen it goes only through plain-text paths (st.text, dataframe cells,
escaped HTML); here are the two places where plain text is still not inert.
"""
from __future__ import annotations

import re

import pandas as pd

# CSV injection (OWASP "CSV Injection"): a spreadsheet evaluates a cell that starts with = + - @ TAB or CR
# as a formula (=HYPERLINK(...) leaks data, DDE runs commands). OWASP's remedy is a single quote in
# front, which the spreadsheet shows as text. Our choice, stricter than the letter of OWASP: the
# formula characters also count after leading whitespace (some spreadsheets trim it before they
# evaluate), and `|` counts too (the DDE form `|cmd`, named by other guidance).
FORMULA_START = re.compile(r"^(?:[\t\r]|[ \n]*[=+\-@|\t\r])")


def safe_csv_cell(value: object) -> object:
    """The value as a spreadsheet reads it as text: strings that would start a formula get a leading
    single quote; anything that is not a string (numbers, dates, None) is returned unchanged."""
    if isinstance(value, str) and FORMULA_START.match(value):
        return "'" + value
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of the frame with every text cell passed through safe_csv_cell. Number columns stay
    numbers (a negative float is not a formula), so only object and string columns are touched;
    column names are escaped too, since a frame's columns can come from data."""
    text_columns = [c for c in frame.columns if frame[c].dtype == object or isinstance(frame[c].dtype, pd.StringDtype)]
    out = frame.assign(**{str(c): frame[c].map(safe_csv_cell) for c in text_columns}) if text_columns else frame.copy()
    return out.rename(columns=lambda c: safe_csv_cell(c) if isinstance(c, str) else c)


def to_csv(frame: pd.DataFrame) -> bytes:
    """The frame as UTF-8 CSV, every text cell made safe to open in a spreadsheet: what every CSV the
    project writes goes through."""
    return csv_safe(frame).to_csv(index=False).encode("utf-8")


# Bidirectional controls: an RTL override (U+202E) in a name reverses the rest of the line around it.
BIDI_CONTROLS = re.compile("[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def plain_name(name: object) -> str:
    """A user-supplied name (a post's author, an agent) as it is shown inside a line of other text:
    its bidirectional controls removed, then isolated with FSI ... PDI so that a right-to-left name
    still reads correctly without reordering the words around it. None and NaN become ''."""
    if not isinstance(name, str):
        return "" if name is None or name != name else str(name)      # name != name: NaN
    cleaned = BIDI_CONTROLS.sub("", name)
    return f"\u2068{cleaned}\u2069" if cleaned else ""
