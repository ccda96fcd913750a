"""Intent, complaint category and complaint severity: three small heads and the cues they read.

The sentiment and complaint heads (pipeline/models/heads) learn from public data sets; no public data set
labels intent, category or severity for English *and* French brand mentions, so these three heads
learn from a set written for this project (pipeline/models/data, see its README) and are trained by
`ecoute train-intents` into pipeline/models/heads_extra. Their features are the usual ones (sentence
embedding + hashed n-grams, pipeline/models/heads.py) next to a few dozen EN/FR cue flags and the
complaint head's own score: a few hundred posts cannot teach that "small claims", "petites
créances" and "chargeback" mean the same thing, a lexicon can.

Heads read the embedding of the encoder they were trained with. When the pipeline's encoder is
that one (same model, same adapter) they reuse its embeddings; otherwise they encode once more with
their own (slower, logged once) rather than read vectors from another space.
"""
from __future__ import annotations

import functools
import hashlib
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import sparse

from pipeline.models.heads import Heads, Inputs, inputs, load_heads
from pipeline.mention import CATEGORIES, INTENTS, SEVERITIES

log = logging.getLogger(__name__)
EXTRA_HEADS_DIR = Path(__file__).parent / "heads_extra"
TRAINING_FILE = Path(__file__).parent / "data" / "intent_category_severity.jsonl"
EXTRA_TASKS = {"intent": INTENTS, "category": CATEGORIES, "severity": SEVERITIES}


def _words(*patterns: str) -> re.Pattern:
    return re.compile(r"(?<!\w)(?:" + "|".join(patterns) + r")(?!\w)", re.IGNORECASE)


# Each cue is a flag (0/1) per post. Patterns are lower-case EN then FR; `\w*` takes inflections.
CUES: dict[str, re.Pattern] = {
    "question_mark": re.compile(r"\?"),
    "question_start": _words(r"^\s*(?:how|what|when|where|why|who|which|does|do|did|is|are|can|could|will|would|"
                             r"should|has|have|anyone|est-ce|comment|pourquoi|quand|où|qui|quel\w*|combien|"
                             r"savez-vous|peut-on|y a-t-il|y'a-tu|c'est-tu|on peut|vous savez|quelqu'un)"),
    "first_person_problem": _words(r"my \w+ (?:is|was|has|have|still|never|didn't|won't|doesn't)",
                                   r"i (?:was|got|have been|paid|ordered|bought|waited|can't|cannot)",
                                   r"(?:mon|ma|mes) \w+ (?:est|a|n'|ne|toujours|jamais)",
                                   r"j'(?:ai|attends|peux pas)", r"je (?:peux|n'ai|suis|viens)"),
    "thanks_praise": _words(r"thanks?", r"thank you", r"love", r"amazing", r"great service", r"best",
                            r"impressed", r"brilliant", r"recommend", r"merci", r"bravo", r"génial\w*",
                            r"top", r"j'adore", r"adorable", r"super service", r"écoeurant", r"malade",
                            r"meilleur\w*", r"je recommande", r"la classe", r"chapeau"),
    "sarcasm": re.compile(r"🙃|🙄|upside.down face|face with rolling eyes|\b(?:sure|yeah right|cool cool|"
                          r"love that for me|living the dream|very cool|mais oui|la belle vie|trop mignon|"
                          r"bravo|génial|super jeu|ben voyons|tranquille)\b", re.IGNORECASE),
    "news": _words(r"announces?", r"reports?", r"according to", r"says", r"said", r"recalls?", r"shares",
                   r"breaking", r"urgent", r"annonce", r"selon", r"rappelle", r"l'action", r"indique",
                   r"confirmed", r"a confirmé", r"hiring", r"recrute", r"giveaway", r"concours", r"win",
                   r"gagnez", r"apply", r"postulez"),
    "demand": _words(r"i want", r"i demand", r"refund me", r"give (?:me|us)", r"fix (?:it|this)", r"now",
                     r"today", r"by (?:friday|monday|end of)", r"je veux", r"j'exige", r"remboursez",
                     r"rendez", r"réparez", r"retirez", r"rappelez", r"maintenant", r"aujourd'hui",
                     r"d'ici", r"tout de suite"),
    "threat": _words(r"ombudsman", r"regulator\w*", r"authority", r"small claims", r"court", r"lawyer",
                     r"legal action", r"lawsuit", r"class action", r"chargeback", r"dispute\w*", r"sue",
                     r"report(?:ing)? (?:you|this|it)", r"trading standards", r"or i(?:'m| will| go)?",
                     r"otherwise", r"médiateur", r"régulateur", r"autorité", r"petites créances",
                     r"tribunal", r"avocat", r"justice", r"action collective", r"opposition",
                     r"rétrofacturation", r"conteste\w*", r"porte plainte", r"plainte", r"signal\w+",
                     r"saisi\w+", r"cnil", r"dgccrf", r"dgac", r"arcep", r"office de la protection",
                     r"sinon", r"ou je", r"ou on"),
    "boycott": _words(r"boycott\w*", r"resign\w*", r"step down", r"fired", r"stop (?:buying|using|booking)",
                      r"don't (?:buy|use|book)", r"avoid", r"tell everyone", r"uninstall", r"démission\w*",
                      r"viré", r"arrêtez (?:tous|d'acheter)", r"achetez (?:pas|plus)", r"prenez pas",
                      r"réservez plus", r"faites passer", r"désinstallez", r"évitez"),
    "accuse": _words(r"lie[ds]?", r"lying", r"liar\w*", r"scam\w*", r"theft", r"steal\w*", r"stole\w*",
                     r"fraud\w*", r"on purpose", r"knew", r"knowingly", r"without (?:asking|consent|notice)",
                     r"never asked", r"false advertising", r"mislabel\w*", r"misleading", r"fake\w*",
                     r"pretend\w*", r"deceptive", r"hid(?:e|den)?", r"you (?:charged|sold|took|deleted|knew)",
                     r"ment\w*", r"menti", r"mensonge\w*", r"arnaque\w*", r"c'est du vol", r"volé",
                     r"exprès", r"saviez", r"savait", r"sans (?:prévenir|demander|mon accord)",
                     r"jamais demandé", r"trompeu\w*", r"mensonger\w*", r"faux", r"fausse", r"caché\w*",
                     r"vous avez (?:vendu|pris|supprimé|facturé|abonné)", r"faites semblant", r"en douce"),
    "annoyance": _words(r"again", r"still", r"seriously", r"ridiculous", r"unacceptable", r"worst",
                        r"terrible", r"awful", r"disaster", r"joke", r"ugh", r"wtf", r"annoying", r"come on",
                        r"encore", r"toujours", r"sérieux", r"ridicule", r"inadmissible", r"pire", r"nul\w*",
                        r"catastrophe", r"honte", r"pénible", r"tannant", r"franchement", r"pas acceptable",
                        r"poche", r"tabarnak", r"ostie", r"câlisse", r"voyons"),
    "polite_report": _words(r"hi", r"hello", r"could you", r"can you check", r"please", r"thanks in advance",
                            r"bonjour", r"pouvez-vous", r"pourriez-vous", r"vous pouvez", r"svp",
                            r"s'il vous plaît", r"merci d'avance"),
    "reference": re.compile(r"\b(?:ref|réf|order|commande|ticket|n°|#)\s*[\w-]*\d{3,}|\b\d{1,2}[:h]\d{2}\b",
                            re.IGNORECASE),
    "caps_shout": re.compile(r"\b[A-ZÀ-Ý]{4,}\b"),
    "exclaim": re.compile(r"!{2,}|\?{2,}"),
    # category vocabulary: words an agent would file the complaint under
    "cat_delivery": _words(r"parcels?", r"packages?", r"deliver\w*", r"courier\w*", r"driver\w*", r"tracking",
                           r"doorstep", r"depot", r"colis", r"livr\w*", r"livreur\w*", r"suivi", r"dépôt",
                           r"point relais", r"avis de passage", r"carton"),
    "cat_billing": _words(r"charged?", r"charges", r"refund\w*", r"fees?", r"bill\w*", r"invoice\w*",
                          r"overdraft", r"subscription", r"debited", r"factur\w*", r"prélev\w*",
                          r"rembours\w*", r"frais", r"débit\w*", r"agios", r"abonnement", r"cotisation"),
    "cat_quality": _words(r"broke\w*", r"broken", r"defect\w*", r"cracked", r"leak\w*", r"faulty", r"cheap",
                          r"quality", r"material\w*", r"shrink\w*", r"smaller", r"formula", r"recipe",
                          r"cassé\w*", r"défaut\w*", r"défectueu\w*", r"fendu", r"fuit", r"qualité",
                          r"réduflation", r"recette", r"formule", r"plus petit\w*"),
    "cat_service": _words(r"on hold", r"hold music", r"support", r"agent\w*", r"chatbot", r"bot",
                          r"customer service", r"call ?back", r"no reply", r"no answer\w*", r"hung up",
                          r"ticket", r"hotline", r"en attente", r"musique d'attente", r"service client",
                          r"conseill\w*", r"robot", r"rappel", r"rappelle", r"aucune réponse", r"raccroch\w*",
                          r"réclamation", r"service après-vente"),
    "cat_delay": _words(r"delay\w*", r"late", r"cancel+ed", r"cancel+ation", r"tarmac", r"gate", r"flight",
                        r"train", r"bus", r"departure", r"postponed", r"pushed", r"retard\w*", r"annul\w*",
                        r"supprimé", r"vol", r"départ", r"repouss\w*", r"quai", r"porte d'embarquement"),
    "cat_app": _words(r"apps?", r"website", r"site", r"log ?in", r"logged out", r"crash\w*", r"update",
                      r"checkout", r"error", r"bug\w*", r"down", r"sync\w*", r"page", r"portal", r"button",
                      r"appli", r"application", r"connexion", r"connecter", r"déconnect\w*", r"plant\w*",
                      r"mise à jour", r"erreur", r"panne", r"synchro\w*", r"bouton", r"portail"),
    "cat_safety": _words(r"allerg\w*", r"rash\w*", r"burn\w*", r"glass", r"brakes?", r"power loss",
                         r"lost power", r"seatbelt", r"choking", r"hazard", r"dangerous", r"unsafe", r"sparks?",
                         r"wires?", r"crowded", r"swell\w*", r"hurt", r"injur\w*", r"recall", r"sting\w*",
                         r"allergi\w*", r"allergène\w*", r"plaques", r"brûl\w*", r"verre", r"freins?",
                         r"ceinture", r"dangereu\w*", r"étincelles?", r"fils électriques", r"bondé",
                         r"gonflé", r"réaction", r"blessé", r"pique\w*", r"noix", r"nuts?", r"explos\w*"),
    "cat_other": _words(r"points?", r"loyalty", r"emails?", r"unsubscrib\w*", r"marketing", r"spam",
                        r"my data", r"privacy", r"terms", r"plastic", r"packaging", r"branch\w*", r"unlimited",
                        r"throttl\w*", r"bike lane", r"cycle lane", r"fidélité", r"mails?", r"désabonn\w*",
                        r"données", r"vie privée", r"conditions", r"plastique", r"emballage\w*", r"agence\w*",
                        r"illimité", r"bridé", r"piste cyclable", r"démarcheurs?", r"pub\w*"),
}
CUE_NAMES = tuple(CUES)


def cue_flags(texts: list[str]) -> np.ndarray:
    """One row per text, one 0/1 column per cue in CUE_NAMES."""
    return _cue_flags(tuple(texts)).copy()


@functools.lru_cache(maxsize=4)
def _cue_flags(texts: tuple[str, ...]) -> np.ndarray:
    """The three heads of a batch read the same flags: computed once per batch."""
    return np.array([[1.0 if pattern.search(text) else 0.0 for pattern in CUES.values()] for text in texts],
                    dtype=np.float32).reshape(len(texts), len(CUES))


def extra_inputs(texts: list[str], complaint_scores: np.ndarray, weight: float) -> sparse.csr_matrix:
    """[complaint head's score | cue flags], scaled by `weight` (picked by cross-validation)."""
    return sparse.csr_matrix(_extras(texts, complaint_scores, weight))


def _extras(texts: list[str], complaint_scores: np.ndarray, weight: float) -> np.ndarray:
    scores = np.asarray(complaint_scores, dtype=np.float32).reshape(-1, 1)
    return weight * np.hstack([scores, _cue_flags(tuple(texts))])


def adapter_fingerprint(adapter: str | Path | None) -> str | None:
    """A digest of an encoder adapter's files (None: the bare encoder)."""
    if not adapter:
        return None
    return _digest(str(Path(adapter).resolve()))


@functools.lru_cache(maxsize=8)
def _digest(folder: str) -> str:
    digest = hashlib.sha256()
    for file in sorted(Path(folder).rglob("*")):
        if file.is_file() and file.suffix != ".md":   # a README (peft writes one) says nothing of the weights
            digest.update(file.relative_to(folder).as_posix().encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class ExtraHeads:
    """The intent, category and severity heads, with what they need to read a batch."""

    heads: Heads
    directory: Path

    @property
    def adapter(self) -> Path | None:
        name = self.heads.card.get("adapter")
        return self.directory / name if name else None

    @property
    def name(self) -> str:
        return str(self.heads.card.get("model", "extra-heads"))

    def reads_embeddings_of(self, encoder) -> bool:
        """True when `encoder` is the one these heads were trained on (model and adapter)."""
        return (encoder.name == self.heads.encoder
                and adapter_fingerprint(getattr(encoder, "adapter", None)) == self.heads.card.get("adapter_sha"))

    def base_inputs(self, embeddings: np.ndarray, texts: list[str]) -> Inputs:
        return inputs(embeddings, texts, self.heads.idf)

    def predict(self, task: str, base: Inputs, texts: list[str],
                complaint_scores: np.ndarray) -> tuple[list[str], np.ndarray]:
        """(label, its probability) per text; `base` comes from `base_inputs`."""
        weight = float(self.heads.card["cue_weights"][task])
        x = base.plus(_extras(texts, complaint_scores, weight))
        head = self.heads.heads[task]
        proba = head.predict_proba(x)
        best = proba.argmax(axis=1)
        return [head.classes[i] for i in best], proba[np.arange(len(best)), best]


def load_extra_heads(directory: str | Path | None = None) -> ExtraHeads:
    """The heads written by `ecoute train-intents` (default: the shipped ones in pipeline/models/heads_extra)."""
    directory = Path(directory) if directory else EXTRA_HEADS_DIR
    if not (directory / "card.json").exists():
        raise FileNotFoundError(f"no intent heads in {directory} (card.json missing); run `ecoute train-intents "
                                f"--out {directory}` or fix models.intent_heads")
    heads = load_heads(directory)
    missing = [task for task in EXTRA_TASKS if task not in heads.heads]
    if missing:
        raise FileNotFoundError(f"{directory} has no {', '.join(missing)} head; run `ecoute train-intents`")
    return ExtraHeads(heads, directory)


def read_training_set(path: Path = TRAINING_FILE) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
