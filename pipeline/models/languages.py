"""Which languages Écoute reads, and how well it knows each: one table, `COVERAGE`.

Every language the detector can answer (text.DETECTED_LANGUAGES, and 'und') maps, for each task the heads
may have, to one of:
- TRAINED: the heads are trained on it and measured on its test split (`ecoute bench` prints the figures):
  the eight UMSAB languages for sentiment, English for complaints, irony and emotion;
- TRANSFERRED: trained on other languages and read through the multilingual encoder; not measured;
- UNKNOWN: no language could be told (too short, or only links and emoji): the shared heads, not measured.

Which languages the loaded heads were measured on is in their card (`card["languages"]`, task → codes);
heads trained before the card had one were measured on English and French (`LEGACY_MEASURED`). A mention
whose language is not among those measured for sentiment says so in its reasons ("language nl not
measured", "language unknown"): it is scored all the same, never silently.

UMSAB's Hindi tweets are romanised (Latin script), while the detector knows Hindi in Devanagari: those tweets
are detected as English or another Latin-script language, and Devanagari Hindi was never measured.
"""
from __future__ import annotations

import re

from pipeline.models.heads import base_language

TRAINED = "trained"
TRANSFERRED = "transferred: trained on other languages, read through the multilingual encoder; not measured"
UNKNOWN = "fallback: no language told (too short or unclear), the shared heads; not measured"
T, X = TRAINED, TRANSFERRED

COVERAGE: dict[str, dict[str, str]] = {   # language → task → how the heads read it
    "en": {"sentiment": T, "complaint": T, "irony": T, "emotion": T},
    "fr": {"sentiment": T, "complaint": X, "irony": X, "emotion": X},
    "de": {"sentiment": T, "complaint": X, "irony": X, "emotion": X},
    "es": {"sentiment": T, "complaint": X, "irony": X, "emotion": X},
    "it": {"sentiment": T, "complaint": X, "irony": X, "emotion": X},
    "pt": {"sentiment": T, "complaint": X, "irony": X, "emotion": X},
    "ar": {"sentiment": T, "complaint": X, "irony": X, "emotion": X},
    "hi": {"sentiment": T, "complaint": X, "irony": X, "emotion": X},
    "nl": {"sentiment": X, "complaint": X, "irony": X, "emotion": X},
    "und": {"sentiment": UNKNOWN, "complaint": UNKNOWN, "irony": UNKNOWN, "emotion": UNKNOWN},
}
NAMES = {"en": "English", "fr": "French", "de": "German", "es": "Spanish", "it": "Italian", "pt": "Portuguese",
         "ar": "Arabic", "hi": "Hindi", "nl": "Dutch", "und": "unknown"}
UMSAB = {code: NAMES[code].lower() for code in ("en", "fr", "de", "es", "it", "pt", "ar", "hi")}   # folders
LEGACY_MEASURED = {"sentiment": ("en", "fr"), "complaint": ("en",)}   # heads whose card has no "languages"
CODE = re.compile(r"[a-z]{2,3}")


def measured_languages(card: dict, task: str = "sentiment") -> tuple[str, ...]:
    """The languages the heads with this card were measured on for a task."""
    languages = card.get("languages")
    if languages is None:
        return LEGACY_MEASURED.get(task, ("en",))
    if isinstance(languages, list):   # one list: sentiment's
        return tuple(languages) if task == "sentiment" else ("en",)
    return tuple(languages.get(task, ()))


def language_reason(lang: object, measured: tuple[str, ...]) -> str | None:
    """'language nl not measured', 'language unknown' (no language, or not a language code), or None."""
    code = base_language(lang)
    if not CODE.fullmatch(code) or code == "und":
        return "language unknown"
    return None if code in measured else f"language {code} not measured"
