"""Transparency risks in a batch of mentions: hidden ads, hidden affiliations, astroturf bursts, accusations.

`find_risks(rows, rules)` gives, for each row, the `Risk`s it carries, each with a short reason a
person can check ("promo code CAMI20, no disclosure marker"). Four kinds (`KINDS`):

- undisclosed_promotion: a promo code, an affiliate or referral link, "link in bio", a gift from the
  brand… and no disclosure marker (#ad, #pub, "collaboration commerciale"…).
- undisclosed_affiliation: an account listed in a brand's `affiliated_accounts` praising or pushing
  that brand without saying how it is tied to it, or a page on the brand's `owned_domains` calling
  itself independent.
- coordinated_posting: several accounts posting near-identical text about a brand within a short
  window, weighted towards young and few-follower accounts; every post of the group gets the same
  `group` id.
- deception_accusation: someone alleging fake reviews, paid shills, hidden ads or fake blogs.

Cue lists come from `rules.transparency` (EN/FR defaults in transparency_cues.py). Everything here is
rules over text and metadata, no model: a reason always names the words that triggered it.
"""
from __future__ import annotations

import functools
import hashlib
import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable

from pipeline.mention import TRANSPARENCY_KINDS, parse_time
from pipeline.rules import Coordination, Rules, Transparency
from pipeline.text import _fold, _pattern, author_is, domain_of, mentioned_brands, mentioned_competitors

KINDS = TRANSPARENCY_KINDS
LINK = re.compile(r"(?:https?://|www\.)[^\s<>\"']+|\b(?:[a-z0-9-]+\.)+[a-z]{2,}/[^\s<>\"']*", re.IGNORECASE)
WORD = re.compile(r"\w+(?:-\w+)*")
# A disclosure word right after "not", "pas", "sans"… discloses nothing ("not sponsored, just love it").
NEGATED = re.compile(r"(?:\b(?:not|no|none|non|pas|never|jamais|sans|without|isn't|n'est)\W+(?:\w+\W+){0,2})$")
# "publicité mensongère" is an accusation, not a label.
QUALIFIED = re.compile(r"^\W*(?:mensongere|deguisee|cachee|trompeuse|clandestine|masquee)s?\b")
TAG_DISCLOSURE = re.compile(r"#\w*(?:partner|sponsor|ambassad|partenai|collab)\w*")
CODE_LEAD = re.compile(r"\b(code|coupon|use|enter|with|avec|utilise[rz]?|entre[rz])\b", re.IGNORECASE)
CODE = re.compile(r"^[\"'«“(]*([A-Z0-9]*[A-Z][A-Z0-9]*)[\"'»”)!.,]*$")
CODE_FILLER = {"promo", "code", "my", "mon", "le", "the", "de", "discount", "réduction", "reduction", "réduc",
               "coupon", ":", "-", "–", "this", "ce"}
NOT_PROMO_CODES = {"error", "erreur", "booking", "réservation", "reservation", "confirmation", "postal", "zip",
                   "qr", "gate", "dress", "access", "accès", "pin", "verification", "vérification", "sms", "source"}
DEAL = re.compile(r"\d+\s?%|\b(?:deal|deals|sale|promo|offer|cheap|discount|save|bon plan|soldes?|reduction|offre|"
                  r"pas cher|checkout|off)\b")
NEGATIONS = {"not", "no", "never", "t", "pas", "jamais", "aucun", "aucune", "non"}
# Words between an accusation target and its word ("the reviews … were written by the same bot"); set to 10
# after reading the misses of tests/data/transparency_mentions.jsonl at 5 (docs/alerts.md, "Transparency risks").
PROXIMITY = 10
SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")
# The cues read a post's first CUE_CHARS characters: some checks look back over the text before each match
# (a promo code's word before, a negation before a disclosure), so their time grows with the square of the
# length (1 MB of "use my code CAMI20": over 10 minutes). Brands are still found in the whole post.
CUE_CHARS = 10_000


@dataclass(frozen=True)
class Risk:
    kind: str          # one of KINDS
    reason: str        # what triggered it, in a few words
    group: str | None = None   # coordinated_posting: the id its whole group shares


@dataclass(frozen=True)
class Post:
    """What the detector reads of one row."""
    key: str
    text: str              # title and body, their first CUE_CHARS characters
    folded: str            # lower case, no accents
    url: str | None
    author: str | None
    followers: int | None
    author_created_at: datetime | None
    created_at: datetime | None
    brands: tuple[str, ...]      # watched brands and competitors it speaks of
    own_brands: tuple[str, ...]  # watched brands only
    official: bool
    positive: bool               # the sentiment stage called it positive (when it ran)


def find_risks(rows: Iterable[dict] | Any, rules: Rules, recent: Iterable[dict] | Any = ()) -> list[list[Risk]]:
    """One list of Risks per row, in order.

    `rows` is a list of dicts or a DataFrame with `text` and, when known, `key` (or `id`), `title`,
    `url`, `author`, `author_followers`, `author_created_at`, `created_at`, `brands`, `official`,
    `sentiment`. Missing columns are worked out (`brands`, `official`) or their checks skipped.
    `recent`: rows already stored, in the same shape, that may complete a coordinated group; they get
    no risks of their own.
    """
    posts = [_post(row, i, rules) for i, row in enumerate(_records(rows))]
    earlier = [_post(row, f"recent-{i}", rules) for i, row in enumerate(_records(recent))]
    cues = rules.transparency
    out = [[r for r in (promotion_risk(p, cues), affiliation_risk(p, rules), accusation_risk(p, cues)) if r]
           for p in posts]
    for index, risk in coordinated(earlier + posts, cues.coordination).items():
        if index >= len(earlier):
            out[index - len(earlier)].append(risk)
    return out


# --- reading rows -------------------------------------------------------------------------------------

def _records(rows: Iterable[dict] | Any) -> list[dict]:
    return rows.to_dict("records") if hasattr(rows, "to_dict") else list(rows)


def _value(row: dict, name: str) -> Any:
    value = row.get(name)
    if value is None or (not isinstance(value, (list, tuple, str)) and value != value):   # NaN, NaT
        return None
    return value


def _post(row: dict, index: int | str, rules: Rules) -> Post:
    title, text = _value(row, "title") or "", _value(row, "text") or ""
    full = f"{title}. {text}" if title else text
    author = _value(row, "author")
    official = _value(row, "official")
    if official is None:
        official = author_is(author, [a for b in rules.brands for a in b.official_accounts])
    own = _value(row, "brands")
    own = tuple(own) if own is not None else tuple(mentioned_brands(full, rules.brands))
    followers = _value(row, "author_followers")
    return Post(
        key=str(_value(row, "key") or _value(row, "id") or index), text=full[:CUE_CHARS],
        folded=_fold(full[:CUE_CHARS]),
        url=_value(row, "url"), author=author, followers=int(followers) if followers is not None else None,
        author_created_at=_time(row, "author_created_at"), created_at=_time(row, "created_at"),
        brands=own + tuple(c for c in mentioned_competitors(full, rules.brands) if c not in own),
        own_brands=own, official=bool(official), positive=_value(row, "sentiment") == "positive")


def _time(row: dict, name: str) -> datetime | None:
    value = _value(row, name)
    return parse_time(value.to_pydatetime() if hasattr(value, "to_pydatetime") else value)


# --- matching phrases -----------------------------------------------------------------------------------

def first_phrase(phrases: list[str], folded: str) -> str | None:
    """The first phrase found as whole words in the folded text."""
    if not _any_of(tuple(phrases)).search(folded):   # one scan rejects most posts; then which one, in order
        return None
    return next((p for p in phrases if _pattern(p).search(folded)), None)


@functools.lru_cache(maxsize=256)
def _any_of(phrases: tuple[str, ...]) -> re.Pattern:
    """One pattern matching wherever any of the phrases would, as whole words (never matches when empty)."""
    if not phrases:
        return re.compile(r"(?!)")
    return re.compile(rf"(?<!\w)(?:{_trie([_fold(p.strip()) for p in phrases])})(?!\w)")


def _trie(words: list[str]) -> str:
    """A regex matching exactly the given words, as a tree of their shared prefixes ('cod(?:e|ice)'): the
    engine tries each letter once per position instead of every phrase in turn (hundreds of cues)."""
    root: dict = {}
    for word in words:
        node = root
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def branch(node: dict) -> str:
        alternatives = [re.escape(char) + branch(child) for char, child in sorted(node.items()) if char]
        if not alternatives:
            return ""
        if "" not in node:
            return alternatives[0] if len(alternatives) == 1 else f"(?:{'|'.join(alternatives)})"
        return f"(?:{'|'.join(alternatives)})?"

    return branch(root)


def disclosure(phrases: list[str], folded: str) -> str | None:
    """A disclosure marker that is not negated ("not sponsored") nor qualified ("publicité mensongère")."""
    for phrase in phrases if _any_of(tuple(phrases)).search(folded) else ():
        for match in _pattern(phrase).finditer(folded):
            if not NEGATED.search(folded[:match.start()]) and not QUALIFIED.match(folded[match.end():]):
                return phrase
    tag = TAG_DISCLOSURE.search(folded)
    return tag.group(0) if tag else None


# --- undisclosed promotion ---------------------------------------------------------------------------------

def promotion_risk(post: Post, cues: Transparency) -> Risk | None:
    if post.official:
        return None
    evidence = promotion_evidence(post, cues)
    if not evidence or disclosure(cues.disclosure_markers, post.folded):
        return None
    return Risk("undisclosed_promotion", f"{' and '.join(evidence[:2])}, no disclosure marker")


def promotion_evidence(post: Post, cues: Transparency) -> list[str]:
    found = [f"promo code {code}" for code in promo_codes(post.text)]
    found += [link for link in (link_evidence(link, post.folded, cues) for link in links(post)) if link]
    cue = first_phrase(cues.promotion_cues, post.folded)
    return found + ([f"'{cue}'"] if cue else [])


def promo_codes(text: str) -> list[str]:
    """Upper-case codes after 'code' or 'coupon' ('code CHLOE15'), or after 'use', 'with', 'avec'… when the post
    offers a discount ('-20 % avec ELSA20'); not booking or error codes."""
    codes = []
    deal = functools.cache(lambda: bool(DEAL.search(_fold(text))))   # read once, not once per 'use'
    for lead in CODE_LEAD.finditer(text):
        before = text[:lead.start()].split()
        if before and before[-1].strip(".,:;!?").lower() in NOT_PROMO_CODES:
            continue
        code = _code_after(text[lead.end():].split()[:4])
        verb = lead.group(1).lower() not in ("code", "coupon")
        if code and (not verb or deal()) and code not in codes:
            codes.append(code)
    return codes


def _code_after(words: list[str]) -> str | None:
    for word in words:
        match = CODE.match(word)
        if match and 4 <= len(match.group(1)) <= 16 and (any(c.isdigit() for c in word) or len(match.group(1)) >= 5):
            return match.group(1)
        if word.lower().strip(":") not in CODE_FILLER:
            return None
    return None


def links(post: Post) -> list[str]:
    return [m.group(0) for m in LINK.finditer(post.text)]   # not post.url: that is where the post lives


def link_evidence(link: str, folded: str, cues: Transparency) -> str | None:
    domain = domain_of(link)
    if _on(domain, cues.affiliate_domains):
        return f"affiliate link {domain}"
    query = link.split("?", 1)[1].lower() if "?" in link else ""
    params = {part.split("=")[0] for part in query.split("&")} | set(query.split("&"))
    param = next((p for p in cues.affiliate_params if p.lower() in params), None)
    if param:
        return f"referral link {domain} ({param})"
    if _on(domain, cues.link_shorteners) and DEAL.search(folded):
        return f"short link {domain} with a deal"
    return None


def _on(domain: str, domains: list[str]) -> bool:
    return any(domain == d.lower() or domain.endswith("." + d.lower()) for d in domains)


# --- undisclosed affiliation ----------------------------------------------------------------------------------

def affiliation_risk(post: Post, rules: Rules) -> Risk | None:
    if post.official:
        return None
    cues = rules.transparency
    disclosed = disclosure(cues.disclosure_markers, post.folded) or first_phrase(cues.affiliation_disclosures,
                                                                                  post.folded)
    if disclosed:
        return None
    for brand in rules.brands:
        reason = affiliated_praise(post, brand, cues) or owned_independent(post, brand, cues)
        if reason:
            return Risk("undisclosed_affiliation", reason)
    return None


def affiliated_praise(post: Post, brand, cues: Transparency) -> str | None:
    if brand.name not in post.own_brands or not author_is(post.author, brand.affiliated_accounts):
        return None
    praise = first_phrase(cues.praise_cues, post.folded)
    push = f"'{praise}'" if praise else next(iter(promotion_evidence(post, cues)), None)
    if not push and not post.positive:
        return None
    return f"{post.author} is affiliated with {brand.name} and promotes it ({push or 'positive'}) without saying so"


def owned_independent(post: Post, brand, cues: Transparency) -> str | None:
    if not post.url or not _on(domain_of(post.url), brand.owned_domains):
        return None
    claim = first_phrase(cues.independence_claims, post.folded)
    if not claim:
        return None
    return f"{domain_of(post.url)} belongs to {brand.name} but presents itself as '{claim}'"


# --- deception accusations ------------------------------------------------------------------------------------

def accusation_risk(post: Post, cues: Transparency) -> Risk | None:
    if post.official:
        return None
    phrase = first_phrase(cues.accusation_phrases, post.folded)
    if phrase:
        return Risk("deception_accusation", f"alleges deception: '{phrase}'")
    pair = accused_pair(post.text, cues)
    return Risk("deception_accusation", f"alleges deception: '{pair[0]} … {pair[1]}'") if pair else None


def accused_pair(text: str, cues: Transparency) -> tuple[str, str] | None:
    """A target ('reviews', 'avis') near a deception word ('fake', 'achetés') in the same sentence, not
    negated; the two words as written, in text order."""
    for sentence in SENTENCE_END.split(text):
        pair = _pair_in(sentence, cues)
        if pair:
            return pair
    return None


@functools.lru_cache(maxsize=64)
def _folded(words: tuple[str, ...]) -> frozenset[str]:
    return frozenset(_fold(w) for w in words)


_fold_word = functools.lru_cache(maxsize=65536)(_fold)   # words recur across posts: fold each once


def _pair_in(sentence: str, cues: Transparency) -> tuple[str, str] | None:
    written = WORD.findall(sentence.casefold())
    words = [_fold_word(w) for w in written]
    targets = _folded(tuple(cues.accusation_targets))
    deceptive = _folded(tuple(cues.accusation_words))
    for i, word in enumerate(words):
        if word not in deceptive or NEGATIONS & set(words[max(0, i - 2):i]):
            continue
        near = range(max(0, i - PROXIMITY), min(len(words), i + PROXIMITY + 1))
        j = next((j for j in near if words[j] in targets), None)
        if j is not None:
            return (written[j], written[i]) if j < i else (written[i], written[j])
    return None


# --- coordinated posting --------------------------------------------------------------------------------------

def shingles(folded: str) -> frozenset[str]:
    """Words and word pairs, without links, punctuation or emoji: what survives a copy-paste with edits."""
    words = WORD.findall(LINK.sub(" ", folded))
    return frozenset(words) | frozenset(f"{a} {b}" for a, b in zip(words, words[1:]))


def similarity(a: frozenset[str], b: frozenset[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def coordinated(posts: list[Post], cfg: Coordination) -> dict[int, Risk]:
    """Index → Risk for every post in a coordinated group."""
    candidates = [i for i, p in enumerate(posts) if p.author and not p.official and p.brands]
    features = {i: shingles(posts[i].folded) for i in candidates}
    candidates = [i for i in candidates if len(features[i]) >= 9]   # five words or more
    candidates.sort(key=lambda i: (posts[i].created_at is not None, posts[i].created_at or datetime.min))
    parent = {i: i for i in candidates}
    # Prefix filtering (exact for Jaccard): order shingles rarest first; two sets with similarity ≥ t
    # share a shingle among the first |A| - ceil(t·|A|) + 1 of each, so only posts sharing one of those
    # are compared, instead of every pair in the window.
    frequency = Counter(token for i in candidates for token in features[i])
    seen_with: dict[str, list[int]] = {}
    for i in candidates:
        tokens = sorted(features[i], key=lambda token: (frequency[token], token))
        prefix = tokens[:len(tokens) - math.ceil(cfg.similarity * len(tokens)) + 1]
        compared: set[int] = set()
        for token in prefix:
            for j in seen_with.get(token, ()):
                if j in compared:
                    continue
                compared.add(j)
                gap = _gap(posts[j], posts[i])
                if gap is not None and gap > cfg.window:
                    continue
                if similarity(features[i], features[j]) >= cfg.similarity:
                    parent[_root(parent, i)] = _root(parent, j)
            seen_with.setdefault(token, []).append(i)
    groups: dict[int, list[int]] = {}
    for i in candidates:
        groups.setdefault(_root(parent, i), []).append(i)
    risks = {}
    for members in groups.values():
        risk = group_risk([posts[i] for i in members], cfg)
        risks.update({i: risk for i in members} if risk else {})
    return risks


def _root(parent: dict[int, int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _gap(a: Post, b: Post) -> timedelta | None:
    return abs(b.created_at - a.created_at) if a.created_at and b.created_at else None


def group_risk(members: list[Post], cfg: Coordination) -> Risk | None:
    accounts: dict[str, Post] = {}
    for post in members:
        accounts.setdefault(post.author.lower().lstrip("@"), post)
    if len(accounts) < cfg.min_accounts:
        return None
    weights = [account_weight(p, cfg) for p in accounts.values()]
    if sum(weights) < cfg.min_score:
        return None
    young = sum(1 for p in accounts.values() if _age(p) is not None and _age(p) < cfg.young_account)
    few = sum(1 for p in accounts.values() if p.followers is not None and p.followers < cfg.few_followers)
    times = [p.created_at for p in members if p.created_at]
    span = f" within {_duration(max(times) - min(times))}" if times else ""
    first = min(members, key=lambda p: (p.created_at is None, p.created_at or datetime.min, p.key))
    group = "coord-" + hashlib.sha1(first.key.encode()).hexdigest()[:10]
    reason = (f"{len(accounts)} accounts, near-identical text{span}, {young} created <{cfg.young_account.days} "
              f"days ago, {few} with <{cfg.few_followers} followers")
    return Risk("coordinated_posting", reason, group)


def account_weight(post: Post, cfg: Coordination) -> float:
    """0.1 for an established account with an audience, up to 1 for a new one nobody follows."""
    age = _age(post)
    young = 0.5 if age is None else float(age < cfg.young_account)
    few = 0.5 if post.followers is None else float(post.followers < cfg.few_followers)
    return 0.1 + 0.9 * (0.7 * young + 0.3 * few)


def _age(post: Post) -> timedelta | None:
    if post.author_created_at is None or post.created_at is None:
        return None
    return post.created_at - post.author_created_at


def _duration(span: timedelta) -> str:
    minutes = span.total_seconds() / 60
    return f"{minutes:.0f} min" if minutes < 120 else f"{minutes / 60:.1f} h"
