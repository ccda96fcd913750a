"""A task may have a head per language (French sentiment): mentions in that language go to it."""
import numpy as np
import pytest

from pipeline.models import heads as H
from pipeline.mention import Mention

CLASSES = ("negative", "neutral", "positive")


def _head(name: str, winner: int, dim: int, **extra) -> H.Head:
    """A head that always prefers one class (the bias), whatever the text."""
    width = dim + H.N_FEATURES if extra.get("embedding", True) else H.N_FEATURES
    intercept = np.full(3, -5.0, dtype=np.float32)
    intercept[winner] = 5.0
    return H.Head(name, CLASSES, np.zeros((3, width), dtype=np.float32), intercept, **extra)


def test_language_heads_are_saved_loaded_and_routed(tmp_path):
    dim = 4
    idf = np.ones(H.N_FEATURES, dtype=np.float32)
    own_idf = np.full(H.N_FEATURES, 2.0, dtype=np.float32)
    heads = {"sentiment": _head("sentiment", 0, dim), "complaint": _head("complaint", 1, dim),
             "sentiment_fr": _head("sentiment_fr", 2, dim, idf=own_idf, strip_accents="unicode", embedding=False)}
    card = H.save_heads(tmp_path, "enc", dim, idf, heads, {"model": "test"}, {"sentiment": {"fr": "sentiment_fr"}})
    assert card["tasks"] == ["complaint", "sentiment"] and card["language_heads"] == {"sentiment": {"fr": "sentiment_fr"}}

    loaded = H.load_heads(tmp_path)
    fr = loaded.heads["sentiment_fr"]
    assert (fr.strip_accents, fr.embedding, float(fr.idf[0])) == ("unicode", False, 2.0)
    assert loaded.heads["sentiment"].idf is None and loaded.heads["sentiment"].embedding
    texts = ["late again", "encore en retard", "déjà très déçu", "no language", "québec"]
    langs = ["en", "fr", "FR", None, "fr-CA"]
    emb = np.zeros((len(texts), dim), dtype=np.float32)
    assert loaded.predict("sentiment", emb, texts, langs).argmax(axis=1).tolist() == [0, 2, 2, 0, 2]
    assert loaded.predict("sentiment", emb, texts).argmax(axis=1).tolist() == [0] * 5   # no languages: shared head
    assert loaded.predict("complaint", emb, texts, langs).argmax(axis=1).tolist() == [1] * 5   # no French head


def test_accents_are_folded_for_a_head_that_asks_for_it():
    idf = np.ones(H.N_FEATURES, dtype=np.float32)
    folded = H.ngram_tfidf(["deja tres decu", "déjà très déçu"], idf, "unicode")
    assert abs(folded[0] - folded[1]).sum() < 1e-6
    kept = H.ngram_tfidf(["deja tres decu", "déjà très déçu"], idf)
    assert abs(kept[0] - kept[1]).sum() > 0.1


def test_a_language_head_with_other_classes_is_refused(tmp_path):
    idf = np.ones(H.N_FEATURES, dtype=np.float32)
    odd = H.Head("sentiment_fr", ("bad", "good"), np.zeros((1, H.N_FEATURES), np.float32), np.zeros(1, np.float32),
                 embedding=False)
    H.save_heads(tmp_path, "enc", 4, idf, {"sentiment": _head("sentiment", 0, 4), "sentiment_fr": odd}, {},
                 {"sentiment": {"fr": "sentiment_fr"}})
    with pytest.raises(ValueError, match="classes"):
        H.load_heads(tmp_path)


def test_shipped_heads_score_french_mentions_with_the_one_multilingual_head(rules):
    """The French head of n-grams and word vectors is trained but left out: on French val it scores below the
    multilingual shared head (card), so a French mention gets the shared head, with its measured language."""
    from pipeline.stages import SENTIMENTS, Context, label, load_models
    from pipeline.text import normalise

    models = load_models(rules)
    assert models.heads.language_heads == {} and "sentiment_fr" not in models.heads.heads
    fr = models.heads.card["metrics"]["sentiment"]["sentiment_fr"]
    assert fr["kept"] is False and fr["val_macro_f1_fr_routed"] < models.heads.card["metrics"]["sentiment"]["val_macro_f1_fr"]
    texts = ["Nul, nul, nul. Toujours pas remboursé après trois semaines, je suis furieux",
             "Merci pour l'accueil, le personnel était adorable, je recommande !"]
    out = label([Mention("twitter", str(i), t) for i, t in enumerate(texts)], Context(rules, models))
    clean = [normalise(t) for t in texts]
    shared = models.heads.predict("sentiment", models.encoder.encode(clean), clean, ["fr", "fr"])
    assert [o.lang for o in out] == ["fr", "fr"]
    assert [o.sentiment for o in out] == [SENTIMENTS[p.argmax()] for p in shared] == ["negative", "positive"]


def test_ngrams_are_hashed_as_the_heads_were_trained():
    """Our hashing (words' n-grams remembered) gives the counts of the two HashingVectorizers the heads were
    trained on, for a batch and for each text alone."""
    texts = ["Déjà très déçu 😡 par @user", "late AGAIN, flight 42 cancelled!!", "", "l’avion n'est pas là",
             "  tabs\tand\n\nnew  lines ", "İstanbul ÉCOLE ß ﬁ", "1️⃣ #tag x", "late again",
             "no\u00a0break\u2028line\u3000wide\u200bzero\u200dwidth", "a" * 3000]
    for strip in (None, "unicode"):
        chars, words = H._vectorizers(strip)
        expected = chars.transform(texts) + words.transform(texts)
        assert abs(H.ngram_counts(texts, strip) - expected).sum() == 0
        for i, text in enumerate(texts):
            assert abs(H.ngram_counts([text], strip) - expected[i]).sum() == 0


def test_the_remembered_hashes_stay_bounded_and_right(monkeypatch):
    monkeypatch.setattr(H._Hasher, "LIMIT", 40)
    hasher = H._hasher.__wrapped__(None)   # a fresh one, not the process's shared hasher
    texts = [f"flight {i} delayed again, word{i} and more{i}" for i in range(60)]
    chars, words = H._vectorizers(None)
    assert abs(hasher.counts(texts) - (chars.transform(texts) + words.transform(texts))).sum() == 0
    assert len(hasher.known) <= 40 + 30     # at most one text's words and word n-grams past the limit


def test_one_string_is_refused_rather_than_read_letter_by_letter():
    with pytest.raises(TypeError, match="list of texts"):
        H.ngram_counts("late again")
