"""What people talk about: topics from the encoder's embeddings, labelled by their key phrases.

Mentions are embedded with the configured encoder (the embedded MiniLM by default, the one that
classifies them), grouped with scikit-learn's KMeans on unit vectors (k grows with the square root
of the number of mentions, 3 to 12), and each group is labelled with its most distinctive words and
word pairs by class-based TF-IDF (c-TF-IDF, as BERTopic does: a term's frequency in the topic times
log(1 + average words per topic / the term's frequency over all topics)). A topic's growth compares
its mentions in the second half of the period with the first half; its examples are the mentions
nearest its centre. Text goes in as data and comes out as data: callers display it escaped.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

# Function words of English and French that would otherwise label every topic.
STOP_WORDS = sorted(set("""
a an and are as at be been but by can could did do does for from had has have he her his how i if in into is it
its just me my no not of on or our out she so some than that the their them then there they this to too up us
was we were what when which who why will with would you your yours im dont cant ive get got very really still
au aux avec ce ces cette dans de des du elle en est et eux il ils je la le les leur lui ma mais me mes moi mon
ne nos notre nous on ou par pas pour qu que qui sa se ses son sont sur ta te tes toi ton tu un une vos votre
vous y été être avoir ai as avons avez ont fait faire plus très tout tous toute toutes ça cest jai sans
can't don't i'm it's that's lets anyone know j'ai c'est n'est qu'il d'un d'une
""".split()))


def topic_count(n: int) -> int:
    return max(3, min(12, round(math.sqrt(n / 2)))) if n >= 6 else max(1, n // 2)


def find_topics(frame: pd.DataFrame, embeddings: np.ndarray, k: int | None = None, seed: int = 0,
                words: int = 4, examples: int = 3, ignore: tuple[str, ...] = ()) -> tuple[pd.Series, pd.DataFrame]:
    """Cluster mentions (`text`, `created_at` columns) by their embeddings; `ignore`: words never used
    in labels (the brands' own names, present in every topic).

    Returns (topic id per mention, one row per topic: topic, label, mentions, growth, share, examples
    (a list of texts), terms (list)), largest topics first.
    """
    from sklearn.cluster import KMeans

    if len(frame) == 0:
        return pd.Series(dtype="int64"), pd.DataFrame(columns=["topic", "label", "mentions", "growth", "share",
                                                                 "examples", "terms"])
    k = min(k or topic_count(len(frame)), len(frame))
    vectors = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-9)
    model = KMeans(n_clusters=k, n_init=4, random_state=seed).fit(vectors)
    assigned = pd.Series(model.labels_, index=frame.index, name="topic")
    terms = class_tfidf_terms(frame["text"].fillna("").tolist(), model.labels_, k, words, ignore)
    times = pd.to_datetime(frame["created_at"])
    middle = times.min() + (times.max() - times.min()) / 2
    rows = []
    for topic in range(k):
        members = np.flatnonzero(model.labels_ == topic)
        late = int((times.iloc[members] > middle).sum())
        early = len(members) - late
        ranked = frame["text"].iloc[members[np.argsort(-vectors[members] @ model.cluster_centers_[topic])]]
        rows.append({"topic": topic, "label": ", ".join(terms[topic][:3]) or f"topic {topic + 1}",
                     "mentions": len(members), "growth": (late + 1) / (early + 1),
                     "share": len(members) / len(frame), "examples": list(dict.fromkeys(ranked))[:examples],
                     "terms": terms[topic]})
    table = pd.DataFrame(rows).sort_values("mentions", ascending=False, ignore_index=True)
    return assigned, table


def class_tfidf_terms(texts: list[str], labels: np.ndarray, k: int, words: int = 4,
                      ignore: tuple[str, ...] = ()) -> list[list[str]]:
    """The `words` most distinctive terms (words and word pairs) of each class, by c-TF-IDF."""
    from sklearn.feature_extraction.text import CountVectorizer

    documents = [" ".join(t for t, label in zip(texts, labels) if label == topic) for topic in range(k)]
    vectorizer = CountVectorizer(ngram_range=(1, 2), stop_words=STOP_WORDS + [w.lower() for w in ignore], min_df=1,
                                 token_pattern=r"(?u)\b[^\W\d_][\w'’-]+\b", strip_accents=None, lowercase=True)
    try:
        counts = vectorizer.fit_transform(documents).toarray().astype(float)
    except ValueError:          # nothing but stop words
        return [[] for _ in range(k)]
    vocabulary = vectorizer.get_feature_names_out()
    frequency = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    average = counts.sum() / k
    weights = frequency * np.log(1 + average / np.maximum(counts.sum(axis=0), 1))
    out = []
    for topic in range(k):
        order = np.argsort(-weights[topic])
        chosen: list[str] = []
        for index in order:
            term = vocabulary[index]
            if weights[topic, index] <= 0 or len(chosen) >= words:
                break
            if not any(term in kept or kept in term for kept in chosen):
                chosen.append(term)
        out.append(chosen)
    return out


def mention_topics(frame: pd.DataFrame, rules, k: int | None = None) -> tuple[pd.Series, pd.DataFrame]:
    """Topics of stored mentions (as `analytics.mentions()` returns them), embedded by the configured
    encoder (loaded once per process)."""
    from pipeline.stages import load_models

    frame = frame[frame["text"].fillna("").str.strip() != ""]
    if frame.empty:
        return find_topics(frame, np.zeros((0, 1)))
    encoder = load_models(rules).encoder
    embeddings = encoder.encode(frame["text"].tolist())
    names = {word for b in rules.brands for name in (b.name, *b.keywords, *b.competitors) for word in name.split()}
    return find_topics(frame, np.asarray(embeddings), k, ignore=tuple(sorted(n.lower().lstrip("@#") for n in names)))
