"""Table 1 of the paper: original, masked and generated text, with labels, for a few training sentences.

Drawn from the synthetic files of masked-diffusion methods (any pseudo sample whose provenance has a
``masked_text``): for each data set, the ``diffusioncls`` record of the default step group at the
lowest seed, ``per_label`` originals per label (file order, so the choice is reproducible), and up to
``per_original`` of their pseudo samples at distinct masking steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd

from bench.report.figures import default_step_only, parent_text, read_jsonl

COLUMNS = ["dataset", "view", "seed", "label", "step", "original", "masked", "generated", "changed"]


def table1_examples(df: pd.DataFrame, parents: Callable[[str], Mapping[str, str] | None] | None = None,
                    method: str = "diffusioncls", per_label: int = 2, per_original: int = 2) -> pd.DataFrame:
    d = df[(df["status"] == "ok") & (df["method"] == method) & df["synthetic_path"].notna()]
    d = default_step_only(d).sort_values(["dataset", "view", "seed"])
    rows = []
    for dataset, g in d.groupby("dataset", sort=True):
        r = next((r for _, r in g.iterrows() if Path(r["synthetic_path"]).is_file()), None)
        if r is None:
            continue
        samples = [s for s in read_jsonl(r["synthetic_path"]) if (s.get("provenance") or {}).get("masked_text")]
        pmap = parents(dataset) if callable(parents) else None
        by_parent: dict[str, list[dict]] = {}
        for s in samples:
            by_parent.setdefault(str(s.get("parent_id")), []).append(s)
        taken: dict[str, int] = {}
        for ss in by_parent.values():
            lab = ss[0].get("label")
            if taken.get(lab, 0) >= per_label:
                continue
            taken[lab] = taken.get(lab, 0) + 1
            seen_steps = set()
            for s in ss:
                prov = s["provenance"]
                if prov.get("step") in seen_steps:
                    continue
                seen_steps.add(prov.get("step"))
                rows.append({"dataset": dataset, "view": r["view"], "seed": r["seed"], "label": lab,
                             "step": prov.get("step"), "original": parent_text(s, pmap),
                             "masked": prov["masked_text"], "generated": s.get("text"),
                             "changed": prov.get("n_changed")})
                if len(seen_steps) >= per_original:
                    break
    return pd.DataFrame(rows, columns=COLUMNS)


MD_MAX_CHARS = 200  # Markdown cells are cut here (the diffusion LM sees the first max_length tokens only)


def _cell(x, limit: int | None = None) -> str:
    if x is None or (isinstance(x, float) and pd.isna(x)):
        return ""
    s = " ".join(str(x).split())
    if limit is not None and len(s) > limit:
        s = s[:limit] + " …"
    return s.replace("|", "\\|")


def write_table1(t: pd.DataFrame, out_dir: str | Path) -> list[str]:
    out = Path(out_dir)
    t.to_csv(out / "table1.csv", index=False)
    title = "Table 1: DiffusionCLS pseudo samples (original, masked at step t of T, generated)"
    if t.empty:
        md = f"### {title}\n\n_no diffusioncls records with pseudo samples in this run_\n"
    else:
        cols = ["dataset", "label", "step", "original", "masked", "generated", "changed"]
        texts = {"original", "masked", "generated"}
        lines = [f"### {title}", "", f"Texts are cut at {MD_MAX_CHARS} characters here; `table1.csv` has them whole.",
                 "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(v, MD_MAX_CHARS if c in texts else None) for c, v in zip(cols, row)) + " |"
                  for row in t[cols].itertuples(index=False)]
        md = "\n".join(lines) + "\n"
    (out / "table1.md").write_text(md, encoding="utf-8")
    return ["table1.md", "table1.csv"]
