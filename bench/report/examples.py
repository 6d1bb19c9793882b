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


# ---------------------------------------------------------------- the LM baselines: acceptance and examples

LM_METHODS = ("lambada", "genius", "genius-f")
LM_COLUMNS = ["dataset", "view", "method", "seed", "label", "sketch", "original", "generated", "proxy_prob"]
ACCEPT_COLUMNS = ["dataset", "view", "method", "n", "generated", "kept", "acceptance", "acceptance_min",
                  "acceptance_max"]


def lm_acceptance(df: pd.DataFrame, methods: tuple[str, ...] = LM_METHODS) -> pd.DataFrame:
    """Per data set, view and LM baseline: texts sampled (``n_generated``: ``method_stats.generated``),
    pseudo samples kept (``n_synthetic``: ``counts.synthetic_produced``) and their ratio, mean over the ok records (min and max beside).
    LAMBADA keeps the proxy's top ``1/oversample`` per class by construction; GENIUS-f drops what the
    proxy doubts; GENIUS keeps every distinct non-empty text."""
    if df.empty:
        return pd.DataFrame(columns=ACCEPT_COLUMNS)
    d = df[(df["status"] == "ok") & df["method"].isin(methods) & (df["n_generated"] > 0)].copy()
    d["acceptance"] = d["n_synthetic"] / d["n_generated"]
    rows = [{"dataset": ds, "view": v, "method": m, "n": len(g), "generated": g["n_generated"].mean(),
             "kept": g["n_synthetic"].mean(), "acceptance": g["acceptance"].mean(),
             "acceptance_min": g["acceptance"].min(), "acceptance_max": g["acceptance"].max()}
            for (ds, v, m), g in d.groupby(["dataset", "view", "method"], sort=True)]
    return pd.DataFrame(rows, columns=ACCEPT_COLUMNS)


def lm_examples(df: pd.DataFrame, parents: Callable[[str], Mapping[str, str] | None] | None = None,
                methods: tuple[str, ...] = LM_METHODS, per_label: int = 2) -> pd.DataFrame:
    """For each data set and LM baseline, ``per_label`` kept pseudo samples per label (file order, one per
    parent) from
    its record at the first view and lowest seed with a readable synthetic file: the GENIUS sketch, the
    parent (LAMBADA samples have none: it writes from the label alone) and the proxy's probability of
    the label."""
    if df.empty or "synthetic_path" not in df.columns:
        return pd.DataFrame(columns=LM_COLUMNS)
    d = df[(df["status"] == "ok") & df["method"].isin(methods) & df["synthetic_path"].notna()]
    rows = []
    for (dataset, method), g in d.sort_values(["dataset", "method", "view", "seed"]).groupby(["dataset", "method"]):
        r = next((r for _, r in g.iterrows() if Path(r["synthetic_path"]).is_file()), None)
        if r is None:
            continue
        pmap = parents(dataset) if callable(parents) else None
        taken: dict[str, int] = {}
        parents_seen: set[str] = set()
        for s in read_jsonl(r["synthetic_path"]):
            lab, prov = s.get("label"), s.get("provenance") or {}
            if taken.get(lab, 0) >= per_label or str(s.get("parent_id")) in parents_seen:
                continue
            taken[lab] = taken.get(lab, 0) + 1
            parents_seen.add(str(s.get("parent_id")))
            rows.append({"dataset": dataset, "view": r["view"], "method": method, "seed": r["seed"], "label": lab,
                         "sketch": prov.get("sketch"),
                         "original": None if prov.get("parent_assignment") else parent_text(s, pmap),
                         "generated": s.get("text"), "proxy_prob": prov.get("proxy_prob")})
    return pd.DataFrame(rows, columns=LM_COLUMNS)


def write_table1_lm(acceptance: pd.DataFrame, examples: pd.DataFrame, out_dir: str | Path) -> list[str]:
    """``table1_lm.md`` (acceptance, then examples), ``table1_lm.csv`` (examples, texts whole) and
    ``table1_lm_acceptance.csv``."""
    out = Path(out_dir)
    examples.to_csv(out / "table1_lm.csv", index=False)
    acceptance.to_csv(out / "table1_lm_acceptance.csv", index=False)
    lines = ["### Table 1, LM baselines: acceptance and pseudo samples (LAMBADA, GENIUS, GENIUS-f)", ""]
    if acceptance.empty:
        lines += ["_no lambada, genius or genius-f records with pseudo samples in this run_"]
    else:
        lines += ["Sampled = texts the generator wrote; kept = pseudo samples the cell trained on; acceptance = "
                  "kept / sampled, mean over seeds [min, max]. LAMBADA keeps the proxy's most confident "
                  "1/oversample of each class; GENIUS-f drops samples whose label the proxy doubts.", "",
                  "| dataset | view | method | seeds | sampled | kept | acceptance |", "|---|---|---|---|---|---|---|"]
        lines += [f"| {r.dataset} | {r.view} | {r.method} | {r.n} | {r.generated:.0f} | {r.kept:.0f} | "
                  f"{100 * r.acceptance:.1f}% [{100 * r.acceptance_min:.1f}, {100 * r.acceptance_max:.1f}] |"
                  for r in acceptance.itertuples(index=False)]
    if not examples.empty:
        cols = ["dataset", "method", "label", "sketch", "original", "generated", "proxy_prob"]
        texts = {"sketch", "original", "generated"}
        lines += ["", f"Texts are cut at {MD_MAX_CHARS} characters here; `table1_lm.csv` has them whole.", "",
                  "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
        lines += ["| " + " | ".join(_cell(v, MD_MAX_CHARS if c in texts else None) for c, v in zip(cols, row)) + " |"
                  for row in examples[cols].itertuples(index=False)]
    (out / "table1_lm.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return ["table1_lm.md", "table1_lm.csv", "table1_lm_acceptance.csv"]
