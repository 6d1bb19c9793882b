"""Test helpers: small labelled data sets written to disk."""

from __future__ import annotations

import csv
import random
from pathlib import Path

POS = ["great", "lovely", "excellent", "friendly", "fast", "helpful", "amazing", "smooth"]
NEG = ["terrible", "awful", "rude", "late", "broken", "dirty", "slow", "horrible"]
NEU = ["scheduled", "booked", "listed", "announced", "posted", "noted", "changed", "moved"]
NOUNS = ["flight", "crew", "seat", "service", "gate", "luggage", "staff", "meal", "pilot", "upgrade"]


def sentences(n_per_class: int = 20, seed: int = 0) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    rows = []
    for label, words in (("positive", POS), ("negative", NEG), ("neutral", NEU)):
        for i in range(n_per_class):
            rows.append((f"the {rng.choice(NOUNS)} was {rng.choice(words)} and the {rng.choice(NOUNS)} "
                         f"was {rng.choice(words)} today number {i}", label))
    rng.shuffle(rows)
    return rows


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path
