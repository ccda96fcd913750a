"""`tests/data/complaints_fr_en.jsonl`, the held-out French and English complaint set: its format, as
`tests/data/README.md` documents it. A malformed or lopsided file would make the French-against-English
complaint figures of issue 17 meaningless without anyone noticing."""
import json
import re
import unicodedata
from collections import Counter

import pytest
import yaml

from tests.conftest import ROOT

DATA = ROOT / "tests" / "data"
SET = DATA / "complaints_fr_en.jsonl"
FIELDS = {"id", "lang", "text", "complaint", "kind"}


@pytest.fixture(scope="module")
def posts() -> list[dict]:
    return [json.loads(line) for line in SET.read_text(encoding="utf-8").splitlines()]


def folded(text: str) -> str:
    """Lower case, accents and spacing removed: "Marchéo" and "marcheo" are one brand, one text."""
    bare = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return " ".join(bare.casefold().split())


def labelled_mentions_brands() -> list[str]:
    """The brand list in the README's provenance of labelled_mentions.jsonl ("Every brand is fictional, for
    example Aerolia, SkyNova and Voleo (airlines); …"), so a brand added there is checked here too."""
    readme = (DATA / "README.md").read_text(encoding="utf-8")
    bullet = re.search(r"- Every brand is \*\*fictional\*\*, for example(.*?)\. Handles", readme, re.S).group(1)
    names = re.split(r",|;|\band\b", re.sub(r"\([^)]*\)", "", bullet))
    return [" ".join(name.split()) for name in names if name.strip()]


def demo_brands() -> list[str]:
    rules = yaml.safe_load((ROOT / "rules.yaml").read_text(encoding="utf-8"))
    return [name for brand in rules["brands"] for name in [brand["name"], *brand.get("competitors", [])]]


def test_every_line_has_exactly_the_documented_fields_written_as_plain_utf8(posts):
    assert "\\u" not in SET.read_text(encoding="utf-8")  # ensure_ascii=False: "é", not "\u00e9"
    for post in posts:
        assert set(post) == FIELDS, post.get("id")
        assert post["lang"] in {"fr", "en"} and isinstance(post["complaint"], bool), post["id"]
        assert post["text"].strip() and re.fullmatch(r"[a-z_]+", post["kind"]), post["id"]


def test_ids_are_unique_and_run_from_C001_to_C300(posts):
    assert [post["id"] for post in posts] == [f"C{n:03d}" for n in range(1, 301)]


def test_150_posts_in_each_language_with_35_to_55_percent_complaints(posts):
    by_lang = Counter(post["lang"] for post in posts)
    assert by_lang == {"fr": 150, "en": 150}
    for lang in by_lang:
        complaints = sum(post["complaint"] for post in posts if post["lang"] == lang)
        assert 0.35 <= complaints / by_lang[lang] <= 0.55, (lang, complaints)


def test_no_text_appears_twice(posts):
    repeated = [text for text, n in Counter(folded(post["text"]) for post in posts).items() if n > 1]
    assert repeated == []


def test_no_brand_of_the_other_sets_appears():
    brands = labelled_mentions_brands()
    assert {"Aerolia", "Orbis Mobile", "Épicerie Boréale", "Pixelo"} <= set(brands) and len(brands) >= 30
    text = folded(SET.read_text(encoding="utf-8"))
    found = [b for b in brands + demo_brands() if re.search(rf"\b{re.escape(folded(b))}\b", text)]
    assert found == []
