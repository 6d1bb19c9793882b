"""The paper's numbers for the cells this suite can run (DiffusionCLS, EMNLP 2024; Tables 2, 3, 9).

Only where the suite's data set is the paper's (SMP2020-EWECT) or its stand-in for the same benchmark
(Rotten Tomatoes sentences, the source SST-2 was built from, for Table 3). The paper's classifier is
chinese-roberta-wwm-ext / bert-base on a GPU, one number per cell (mean of 3 or 5 seeds, no spread), so a
comparison with the suite's offline numbers is about direction, not level.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PaperCell:
    """What the paper reports for one (data set, view): the table, its metric, and scores by method."""

    table: str
    metric: str
    scores: tuple[tuple[str, float], ...]
    note: str = ""

    def text(self) -> str:
        body = ", ".join(f"{m} {v:.2f}" for m, v in self.scores)
        return f"{self.table} ({self.metric}{', ' + self.note if self.note else ''}): {body}"


def _t9(raw: float, dcls: float) -> PaperCell:
    return PaperCell("Table 9", "macro-F1", (("raw PLM", raw), ("DiffusionCLS", dcls)))


PAPER_CELLS: dict[tuple[str, str], PaperCell] = {
    ("smp2020-ewect", "5pct"): _t9(54.88, 54.93),
    ("smp2020-ewect", "20pct"): _t9(63.60, 64.35),
    ("smp2020-ewect", "35pct"): _t9(63.65, 64.49),
    ("smp2020-ewect", "50pct"): _t9(65.09, 65.09),
    ("smp2020-ewect", "100pct"): PaperCell("Table 2", "macro-F1", (
        ("raw PLM", 65.87), ("EDA", 50.12), ("AEDA", 65.81), ("BT", 65.15), ("GPT-2", 65.06), ("GENIUS", 64.30),
        ("DiffusionCLS", 67.98)), note="G/E"),
    ("rt", "5shot"): PaperCell("Table 3", "accuracy", (("no aug", 54.38), ("GPT-2", 52.18),
                                                        ("DiffusionCLS", 65.30)), note="SST-2"),
    ("rt", "10shot"): PaperCell("Table 3", "accuracy", (("no aug", 61.82), ("GPT-2", 54.17),
                                                         ("DiffusionCLS", 68.29)), note="SST-2"),
}


def paper_text(dataset: str, view: str) -> str:
    """The paper's numbers for a cell, or a dash when the paper has no such cell."""
    c = PAPER_CELLS.get((str(dataset), str(view)))
    return c.text() if c else "-"
