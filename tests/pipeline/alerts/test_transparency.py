"""Transparency risks: hidden ads and affiliations, coordinated bursts, accusations; measured on a written set."""
import json
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from pipeline.bench.evaluate_transparency import DEFAULT_SET, evaluate, main
from pipeline.rules import RulesError, parse_rules
from pipeline.alerts.transparency import KINDS, find_risks
from tests.conftest import ROOT

T0 = datetime(2026, 9, 12, 20, 0, tzinfo=timezone.utc)


def risks_of(rules, text, **row):
    [risks] = find_risks([{"text": text, **row}], rules)
    return risks


def kinds_of(rules, text, **row):
    return {risk.kind for risk in risks_of(rules, text, **row)}


# --- undisclosed promotion -------------------------------------------------------------------------------

def test_undisclosed_promo_code_is_flagged_with_the_code_in_the_reason(rules):
    [risk] = risks_of(rules, "Lumelle Hydra+ is my holy grail, 20% off with code CAMI20!")
    assert risk.kind == "undisclosed_promotion"
    assert risk.reason == "promo code CAMI20, no disclosure marker"


@pytest.mark.parametrize("text", [
    "#ad Lumelle Hydra+ is my holy grail, 20% off with code CAMI20",
    "Paid partnership with Lumelle: code CAMI20 for 20% off",
    "Use my code CAMI20 on Lumelle #sponsored",
    "#pub La Hydra+ de Lumelle, -20 % avec le code CAMI20",
    "Collaboration commerciale avec Lumelle : code CAMI20 pour -20 %",
    "Publicité | Le sérum Lumelle, lien en bio",
    "#partenariat Lumelle, code CAMI20",
    "En partenariat avec Aerolia ✈️ mon lien de parrainage en bio",
    "Lien affilié : le sérum Lumelle https://amzn.to/4kP9xQz",
    "Lumelle x me #LumellePartner, code CAMI20",
])
def test_disclosed_promotion_is_not_flagged(rules, text):
    assert kinds_of(rules, text) == set()


@pytest.mark.parametrize("text, evidence", [
    ("grab the Lumelle serum before it sells out → amzn.to/3xLmQ2v", "affiliate link amzn.to"),
    ("Book Aerolia with my link: https://aerolia.com/deals?ref=tomtravels", "referral link aerolia.com (ref)"),
    ("Cheap Aerolia flights 70% OFF → bit.ly/aero-cheap", "short link bit.ly with a deal"),
    ("Toute ma routine Lumelle est en lien en bio", "'lien en bio'"),
    ("Reçu le sérum Lumelle, offert par la marque, je suis conquise", "'offert par'"),
])
def test_links_and_cues_without_disclosure_are_flagged(rules, text, evidence):
    [risk] = risks_of(rules, text)
    assert risk.kind == "undisclosed_promotion" and risk.reason.startswith(evidence)


@pytest.mark.parametrize("text", [
    "Not sponsored, I just love it: Lumelle SPF, and my code LILY10 still works",
    "Pas sponsorisée hein, mais le code SOLENE20 marche encore sur Lumelle",
])
def test_a_negated_marker_discloses_nothing(rules, text):
    assert kinds_of(rules, text) == {"undisclosed_promotion"}


def test_the_brands_own_accounts_may_promote(rules):
    assert kinds_of(rules, "Autumn sale! Use code AUTUMN25 for 25% off Lumelle", author="lumelle") == set()
    assert kinds_of(rules, "Autumn sale! Use code AUTUMN25 for 25% off Lumelle", author="julie_b") == {
        "undisclosed_promotion"}


# --- undisclosed affiliation ------------------------------------------------------------------------------

def test_affiliated_account_praising_its_brand_without_saying_so(rules):
    [risk] = risks_of(rules, "Just flew Aerolia: still the best airline in Europe.", author="marc_pilot_aerolia")
    assert risk.kind == "undisclosed_affiliation"
    assert "marc_pilot_aerolia is affiliated with Aerolia" in risk.reason and "'best'" in risk.reason


@pytest.mark.parametrize("text", [
    "I work for Aerolia, views are my own, but the new cabin is the best.",
    "Je travaille chez Aerolia : le nouveau salon est le meilleur d'Europe.",
    "#ad Aerolia's new cabin is the best.",
    "Crew rest rules at Aerolia need fixing, we are exhausted.",      # not praise
    "Best sunset ever from the cockpit tonight.",                      # not about the brand
])
def test_affiliated_account_disclosing_or_not_promoting_is_fine(rules, text):
    assert kinds_of(rules, text, author="marc_pilot_aerolia") == set()


def test_owned_domain_presented_as_independent(rules):
    text = "Nous avons testé en toute indépendance la crème Hydra+ de Lumelle : la meilleure du marché."
    [risk] = risks_of(rules, text, url="https://peau-naturelle-avis.fr/1-avis-lumelle", author="La rédaction")
    assert risk.kind == "undisclosed_affiliation"
    assert risk.reason == "peau-naturelle-avis.fr belongs to Lumelle but presents itself as 'en toute indépendance'"
    assert kinds_of(rules, text, url="https://blog-julie.example/lumelle") == set()
    assert kinds_of(rules, "Ce site est édité par Lumelle. " + text, url="https://peau-naturelle-avis.fr/2") == set()
    assert kinds_of(rules, "Découvrez la nouvelle gamme Lumelle.", url="https://lumelle.fr/nouveautes") == set()


# --- coordinated posting ------------------------------------------------------------------------------------

BURST = [
    "Lumelle Hydra+ = la meilleure crème de ma vie, je la recommande à toutes !! 😍 #lumelle",
    "lumelle hydra+ la meilleure crème de ma vie, je la recommande à toutes #lumelle",
    "LUMELLE HYDRA+ la meilleure crème de toute ma vie, je la conseille à toutes 💯",
    "Lumelle Hydra+ : la meilleure crème de ma vie. Je la recommande à toutes les filles. #skincare",
    "La Hydra+ de Lumelle, la meilleure crème de ma vie, je la recommande à toutes ✨✨",
]


def posts(texts, authors=None, minutes=3, account_age_days=10, followers=12, start=T0):
    rows = []
    for i, text in enumerate(texts):
        created = start + timedelta(minutes=minutes * i)
        rows.append({"key": f"x:{i}", "text": text, "author": authors[i] if authors else f"avis_{i}",
                     "author_followers": followers, "created_at": created,
                     "author_created_at": created - timedelta(days=account_age_days)})
    return rows


def test_a_burst_of_young_accounts_is_flagged_as_one_group(rules):
    found = find_risks(posts(BURST), rules)
    assert all([r.kind for r in risks] == ["coordinated_posting"] for risks in found)
    assert len({risks[0].group for risks in found}) == 1 and found[0][0].group.startswith("coord-")
    assert found[0][0].reason == "5 accounts, near-identical text within 12 min, 5 created <90 days ago, " \
                                 "5 with <100 followers"


def test_one_account_repeating_itself_is_not_coordination(rules):
    assert find_risks(posts(BURST, authors=["same_person"] * 5), rules) == [[]] * 5


def test_established_accounts_sharing_a_headline_are_not_coordination(rules):
    headline = ["Aerolia to cut 300 jobs in restructuring, union says https://news.example/aerolia-jobs"] * 5
    assert find_risks(posts(headline, account_age_days=2000, followers=5000), rules) == [[]] * 5


def test_the_same_text_days_apart_is_not_coordination(rules):
    assert find_risks(posts(BURST, minutes=24 * 60), rules) == [[]] * 5


def test_stored_mentions_complete_a_group_but_get_no_risks(rules):
    rows = posts(BURST)
    found = find_risks(rows[3:], rules, recent=rows[:3])
    assert [[r.kind for r in risks] for risks in found] == [["coordinated_posting"]] * 2
    assert find_risks(rows[3:], rules) == [[], []]


# --- deception accusations -----------------------------------------------------------------------------------

@pytest.mark.parametrize("text", [
    "Aerolia's Trustpilot page is full of bought reviews, don't fall for it",
    "These accounts defending Aerolia in every thread are obviously paid shills",
    "Half the 5-star reviews for Lumelle were posted the same day. Those reviews are fake.",
    "Lumelle paie des influenceuses sans le dire, c'est de la pub déguisée.",
    "Les avis 5 étoiles de SkyNordic sont achetés, aucun vrai client ne parle comme ça",
    "Le blog « avis de consommatrices » qui encense Lumelle appartient à Lumelle. Blog bidon.",
])
def test_accusations_in_english_and_french(rules, text):
    [risk] = risks_of(rules, text)
    assert risk.kind == "deception_accusation" and risk.reason.startswith("alleges deception: '")


@pytest.mark.parametrize("text", [
    "Lumelle's new self tanner gives the most natural fake tan I've ever had",
    "Le sac en faux cuir offert avec le coffret Lumelle est trop joli",
    "This is not an ad, I just really love the Lumelle lip balm 😂",
    "PSA: there are fake Aerolia customer service accounts asking for card details",
    "Checked them: the Lumelle reviews are not fake, real buyers with photos",   # "I thought… fake, but" is flagged
    "C'est faux, Aerolia n'a pas supprimé la ligne Nice-Dublin",
    "Booking code XK7P2Q doesn't work on the Aerolia app, error code E4012 every time",
    "Promo code didn't apply at checkout on Lumelle and now the sale is over.",
    "Gifted my mum the Lumelle Christmas set and she loved it",
    "The new Aerolia TV ad with the singing flight attendants is weirdly catchy",
])
def test_look_alikes_are_not_flagged(rules, text):
    assert kinds_of(rules, text, author="someone") == set()


# --- rules.yaml ------------------------------------------------------------------------------------------------

RULES = "brands:\n  - name: Lumelle\n    keywords: [lumelle]\n"


def test_markers_added_in_rules_yaml_are_honoured_and_defaults_can_be_removed():
    text = "Lumelle Hydra+, code CAMI20 pour -20 % #werbung"
    rules = parse_rules(RULES + "transparency:\n  disclosure_markers: ['#werbung']\n")
    assert kinds_of(rules, text) == set()
    assert "#ad" in rules.transparency.disclosure_markers
    assert kinds_of(parse_rules(RULES), text) == {"undisclosed_promotion"}
    removed = parse_rules(RULES + "transparency:\n  remove: ['#pub']\n")
    assert kinds_of(removed, "#pub Lumelle, code CAMI20") == {"undisclosed_promotion"}


def test_the_commented_transparency_example_in_rules_yaml_is_valid():
    text = (ROOT / "rules.yaml").read_text(encoding="utf-8")
    block = text[text.index("# transparency:"):].split("\n\n")[0]      # the commented block, up to a blank line
    example = "\n".join(line[2:] for line in block.splitlines())
    rules = parse_rules(text + "\n" + example)
    assert "#anzeige" in rules.transparency.disclosure_markers
    assert rules.transparency.coordination.young_account == timedelta(days=90)


@pytest.mark.parametrize("yaml_tail, expected", [
    ("transparency:\n  disclosure_markers: '#werbung'\n",
     "rules.yaml:5 transparency.disclosure_markers: expected a list of strings, got '#werbung'"),
    ("transparency:\n  coordination:\n    window: soon\n",
     "rules.yaml:6 transparency.coordination.window: expected a duration like '30m' or '2h', got 'soon'"),
    ("transparency:\n  disclosure_marker: ['#werbung']\n",
     "rules.yaml:5 transparency.disclosure_marker: unknown field (did you mean 'disclosure_markers'?)"),
])
def test_a_bad_transparency_field_is_located(yaml_tail, expected):
    with pytest.raises(RulesError) as err:
        parse_rules(RULES + yaml_tail, "rules.yaml")
    [problem] = err.value.problems
    assert problem.startswith(expected)


# --- inputs, the evaluation set, the demo -------------------------------------------------------------------------

def test_a_dataframe_with_missing_values_reads_like_a_list(rules):
    rows = posts(BURST) + [{"key": "y", "text": "Lumelle code CAMI20 -20 %", "author": None,
                            "author_followers": float("nan"), "created_at": pd.NaT, "author_created_at": None}]
    frame = pd.DataFrame(rows).astype(object)
    assert find_risks(frame, rules) == find_risks(rows, rules)
    assert [r.kind for r in find_risks(frame, rules)[-1]] == ["undisclosed_promotion"]


# Measured 2026-11-25 (README, "Transparency risks"): precision 1.00 for every kind; recall 0.93
# (promotion), 1.00 (affiliation), 1.00 (coordination), 0.92 (accusation). Floors leave 0.05.
FLOORS = {"undisclosed_promotion": (0.95, 0.88), "undisclosed_affiliation": (0.95, 0.95),
          "coordinated_posting": (0.95, 0.95), "deception_accusation": (0.95, 0.87)}


def test_the_evaluation_set_keeps_its_measured_precision_and_recall(rules):
    result = evaluate(DEFAULT_SET, rules)
    assert result["mentions"] >= 220
    for kind, (precision, recall) in FLOORS.items():
        scores = result["kinds"][kind]
        assert scores["precision"] >= precision and scores["recall"] >= recall, (kind, scores)
    assert result["flags_on_disclosed"] == 0


def test_the_evaluation_set_is_well_formed():
    lines = [json.loads(line) for line in DEFAULT_SET.read_text(encoding="utf-8").splitlines()]
    assert len({line["id"] for line in lines}) == len(lines)
    assert {line["lang"] for line in lines} == {"en", "fr"}
    assert all(set(line["expected"]) <= set(KINDS) and line["text"] and line["case"] for line in lines)


def test_evaluate_prints_per_kind_lines_and_ends_with_json(capsys):
    main([str(DEFAULT_SET)])
    out = capsys.readouterr().out.strip().splitlines()
    assert all(any(line.startswith(kind) for line in out) for kind in KINDS)
    assert set(json.loads(out[-1])["kinds"]) == set(KINDS)


DEMO_EXPECTED = {
    "ambassador-undisclosed": {"undisclosed_affiliation"}, "employee-undisclosed": {"undisclosed_affiliation"},
    "owned-review-blog": {"undisclosed_affiliation"}, "coordinated": {"coordinated_posting"},
    "deception-accusation": {"deception_accusation"},
}


def test_the_demo_datas_transparency_cases_are_found(rules):
    rows = [json.loads(line) for line in (ROOT / "pipeline/demo/mentions.jsonl").read_text("utf-8").splitlines()]
    risks = find_risks(rows, rules)
    found = [{risk.kind for risk in row_risks} for row_risks in risks]
    for row, kinds in zip(rows, found):
        tag = row["raw"].get("demo")
        if tag in DEMO_EXPECTED:
            assert DEMO_EXPECTED[tag] <= kinds, (tag, row["text"])
        elif tag in ("ambassador-disclosed", "employee-disclosed", "official"):
            assert not kinds, (tag, row["text"])
    groups = {row_risks[0].group for row, row_risks in zip(rows, risks) if row["raw"].get("demo") == "coordinated"}
    assert len(groups) == 1
    complaints = [k for row, k in zip(rows, found) if row["raw"].get("demo", "").endswith(("complaint", "crisis"))]
    assert sum(1 for k in complaints if k) == 0
