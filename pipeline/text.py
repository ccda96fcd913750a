"""Text stages that need no model: normalise, detect language, match brands."""
from __future__ import annotations

import functools
import re
import unicodedata

import emoji

from pipeline.rules import Brand

URL = re.compile(r"https?://[^\s<>\"']+|www\.[^\s<>\"']+", re.IGNORECASE)
HANDLE = re.compile(r"(?<![\w@])@([A-Za-z0-9_\.]{1,30})")
SPACES = re.compile(r"\s+")
# What each step reads of a post: a post is hostile input, and a 1 MB one without a space took 14 minutes
# to classify. A cap never shortens a normal post (tweets, toots, most Reddit bodies); docs/model.md.
DETECTION_CHARS = 1_000   # lingua's time grows with the square of a word's length; a language shows long before
MODEL_TEXT_CHARS = 10_000  # the encoder reads 128 tokens (about 600 characters) and the n-grams 10,000 characters


def domain_of(url: str) -> str:
    host = re.sub(r"^(https?://)?(www\.)?", "", url, flags=re.IGNORECASE).split("/")[0]
    return host.split("?")[0].lower()


def normalise(text: str, keep_handles: frozenset[str] = frozenset()) -> str:
    """Text as the model should read it: of its first MODEL_TEXT_CHARS characters.

    URLs become their domain (a link to the brand's own site is meaningful, the path is not),
    handles become @user unless they are a watched account, emoji become words
    (":pouting_face:" -> "pouting face") so an encoder with an English vocabulary still sees them.
    """
    text = unicodedata.normalize("NFC", text[:MODEL_TEXT_CHARS])   # an emoji is a word: 30 µs each
    text = URL.sub(lambda m: f" {domain_of(m.group(0))} ", text)
    text = HANDLE.sub(lambda m: m.group(0) if m.group(0).lower() in keep_handles else "@user", text)
    if not _emoji_chars().isdisjoint(text):  # most posts, French accents included, skip the emoji scan
        text = emoji.replace_emoji(text, replace=_emoji_words)
    return SPACES.sub(" ", text).strip()


@functools.lru_cache(maxsize=1)
def _emoji_chars() -> frozenset[str]:
    """Every character outside ASCII that is part of some emoji: each emoji has at least one (a keycap's
    digit comes with U+20E3), and no accented letter is one of them. With the two variation selectors,
    which the emoji scan drops even outside an emoji."""
    return frozenset(c for e in emoji.EMOJI_DATA for c in e if not c.isascii()) | {"\ufe0e", "\ufe0f"}


def _emoji_words(chars: str, data: dict) -> str:
    return " " + data["en"].strip(":").replace("_", " ") + " "


# What the detector can answer, besides 'und': the eight UMSAB languages the heads are trained on, and Dutch.
# Each is in the table of models/languages.py. Arabic and Hindi cost nothing: their script tells them first (400
# UMSAB test tweets, 50 a language: 110-142 ms with these nine against 120-207 ms with the seven before).
DETECTED_LANGUAGES = ("en", "fr", "de", "es", "it", "pt", "ar", "hi", "nl")


@functools.lru_cache(maxsize=1)
def _detector():
    from lingua import IsoCode639_1, LanguageDetectorBuilder

    codes = [getattr(IsoCode639_1, code.upper()) for code in DETECTED_LANGUAGES]
    return LanguageDetectorBuilder.from_iso_codes_639_1(*codes).with_minimum_relative_distance(0.05).build()


def detector_languages() -> list[str]:
    """The codes the detector itself says it can answer (its confidence values name every language it
    knows), 'und' last."""
    values = _detector().compute_language_confidence_values("language")
    return sorted(_code(value.language) for value in values) + ["und"]


NOT_LETTERS = re.compile(r"[#\W\d_]+")


def _letters(text: str) -> str:
    """What the detector reads: the words, without links, handles, digits or punctuation, at most
    DETECTION_CHARS of them."""
    return NOT_LETTERS.sub(" ", URL.sub(" ", HANDLE.sub(" ", text))).strip()[:DETECTION_CHARS]


def _code(language) -> str:
    return language.iso_code_639_1.name.lower() if language else "und"


def detect_language(text: str) -> str:
    """ISO 639-1 code of the text's language ('und' when too short or unclear)."""
    return detect_languages([text])[0]


def detect_languages(texts: list[str]) -> list[str]:
    """detect_language of each text, the same answers, detected together on every core."""
    letters = [_letters(text) for text in texts]
    wanted = [i for i, words in enumerate(letters) if len(words) >= 3]
    out = ["und"] * len(texts)
    detector = _detector()
    found = ([detector.detect_language_of(letters[wanted[0]])] if len(wanted) == 1   # no threads for one
             else detector.detect_languages_in_parallel_of([letters[i] for i in wanted]) if wanted else [])
    for i, language in zip(wanted, found):
        out[i] = _code(language)
    return out


def _fold(text: str) -> str:
    """Lower case without accents and without invisible format characters, so 'Aérolia', 'aerolia' and
    'Aer\u200bolia' meet: a zero-width space, joiner, soft hyphen or BOM inside a name hid it from matching."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c) and unicodedata.category(c) != "Cf")


@functools.lru_cache(maxsize=4096)
def _pattern(phrase: str) -> re.Pattern:
    return re.compile(rf"(?<!\w){re.escape(_fold(phrase.strip()))}(?!\w)")


def _matches(phrases: list[str], folded_text: str) -> bool:
    return any(_pattern(p).search(folded_text) for p in phrases)


def mentioned_brands(text: str, brands: list[Brand]) -> list[str]:
    """Names of the brands a text speaks of: a keyword outside every excluded phrase."""
    folded = _fold(text)
    found = []
    for brand in brands:
        remaining = folded
        for phrase in brand.exclude:
            remaining = _pattern(phrase).sub(" ", remaining)
        if _matches(brand.keywords, remaining):
            found.append(brand.name)
    return found


def mentioned_competitors(text: str, brands: list[Brand]) -> list[str]:
    folded = _fold(text)
    names = dict.fromkeys(c for b in brands for c in b.competitors)
    return [name for name in names if _pattern(name).search(folded)]


def author_is(author: str | None, accounts: list[str]) -> bool:
    if not isinstance(author, str) or not author:
        return False
    handle = author.lower().lstrip("@").removeprefix("u/")
    return any(handle == a.lower().lstrip("@").removeprefix("u/") for a in accounts)


def safe_url(url: object) -> str | None:
    """The URL when it is http(s), else None: a post's link is shown or followed only then."""
    return url if isinstance(url, str) and url.lower().startswith(("https://", "http://")) else None


SHOWN_CHARS = 2_000   # a queue card shows this much of a post: a 1 MB post would stall the agent's browser
CASE_CHARS = 20_000   # the case page shows more (a long blog post whole), still never a megabyte


def shown_text(text: str, limit: int = SHOWN_CHARS) -> str:
    """The text as a card shows it: its first `limit` characters, then how many more there are."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"
