"""What every dashboard page shares: one Store per database URL and the current rules.

The store is a Streamlit resource (one engine and connection pool per URL for all pages and sessions).
The rules are parsed once per version of the file (its path and modification time), not on every read:
a page reads them many times per rerun, and an edit on the Rules page or on disk is seen at once.
"""
from __future__ import annotations

import functools
import os

import streamlit as st

from pipeline.rules import CATEGORIES, Rules, load_rules, rules_path
from pipeline.store import Store, database_url


@st.cache_resource
def get_store(url: str) -> Store:
    return Store(url)


def store() -> Store:
    return get_store(database_url(os.environ.get("ECOUTE_DB")))


def current_rules() -> Rules:
    """The rules in $ECOUTE_RULES (else ./rules.yaml); raises RulesError, like load_rules."""
    path = rules_path(os.environ.get("ECOUTE_RULES"))
    try:
        version = path.stat().st_mtime_ns
    except OSError:
        version = None     # load_rules says what is wrong with the path
    return _rules_at(str(path), version)


@functools.lru_cache(maxsize=8)
def _rules_at(path: str, version: int | None) -> Rules:
    return load_rules(path)


def category_choices(config: Rules | None) -> list[str]:
    """The complaint categories a filter offers: the rules' own (every brand's) and the built-in ones where a
    brand has none; the built-in list when the rules cannot be read."""
    return list(config.category_names()) if config else list(CATEGORIES)
