"""Figures (seaborn on matplotlib's Agg backend; each saved as PNG and PDF).

- ``schedule``: the label-aware noise schedule (paper Figure 2), from the formula alone;
- ``fig5_fraction``: macro-F1 against the train fraction, one line per method, 95% bootstrap bands;
- ``fig6_step_group``: macro-F1 of DiffusionCLS against the diffusion step group;
- ``fig7_tsne``: t-SNE of originals and pseudo samples by label, pseudo samples shaded by masking step.

A figure the run has no data for is returned with ``path_png=None`` and a note saying why.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # never a display: reports are rendered headless
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

from bench.report.load import ablation_mask  # noqa: E402

PARENT_TEXT_KEYS = ("parent_text", "original", "source_text", "parent")


@dataclass
class Figure:
    name: str
    title: str
    path_png: str | None = None
    path_pdf: str | None = None
    note: str | None = None  # why it was skipped, or what the reader must know (e.g. the representation)


def save(fig, out_dir: str | Path, name: str) -> tuple[str, str]:
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    png, pdf = out_dir / f"{name}.png", out_dir / f"{name}.pdf"
    fig.savefig(png, dpi=130, bbox_inches="tight")
    fig.savefig(pdf, bbox_inches="tight")
    plt.close(fig)
    return str(png), str(pdf)


def _label(method: str, policy: str) -> str:
    return method if policy in ("-", None) else f"{method} ({policy})"


# ---------------------------------------------------------------- Figure 2: the noise schedule


def label_aware_alpha(t, T: int = 32, w=0.0, lam: float = 0.5):
    """Probability that a token is still UNMASKED at step t under the label-aware schedule.

    Paper Eq. 2-3 (DiffusionCLS, EMNLP 2024; DiffusionBERT's spindle schedule with the [CLS]-attention
    weight ``w`` of the token in place of its entropy):
    ``alpha_t = 1 - t/T - lam * sin(pi * t / T) * w``, clipped to [0, 1]. The probability of being masked
    is ``1 - alpha_t``. Broadcasts over ``t`` and ``w``. Implemented from the formula; independent of
    ``methods/diffusioncls``.
    """
    t = np.asarray(t, dtype=float)
    return np.clip(1.0 - t / T - lam * np.sin(np.pi * t / T) * np.asarray(w, dtype=float), 0.0, 1.0)


def figure_schedule(out_dir, weights: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), T: int = 32,
                    lam: float = 0.5) -> Figure:
    t = np.arange(0, T + 1)
    rows = [{"t": int(ti), "alpha": float(a), "w": f"w = {w:g}"} for w in weights
            for ti, a in zip(t, label_aware_alpha(t, T, w, lam))]
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    sns.lineplot(data=pd.DataFrame(rows), x="t", y="alpha", hue="w", marker="o", markersize=3, ax=ax)
    ax.set(xlabel="diffusion step t", ylabel="P(token still unmasked) = alpha_t", xlim=(0, T), ylim=(0, 1.02),
           title=f"Label-aware noise schedule (T={T}, lambda={lam:g})")
    ax.legend(title="importance weight", fontsize=8)
    png, pdf = save(fig, out_dir, "schedule")
    return Figure("schedule", "Noise schedule (paper Figure 2)", png, pdf,
                  "alpha_t = 1 - t/T - lambda*sin(pi t/T)*w, clipped to [0, 1] (Eq. 2-3); w = the token's "
                  "[CLS] attention weight. Drawn from the formula, not from a run.")


# ---------------------------------------------------------------- Figure 5: F1 against train fraction


def default_step_only(d: pd.DataFrame) -> pd.DataFrame:
    """Where one data set / view / method / policy holds a sweep of the method's axis (e.g. step
    group), keep only its most common value (the default, which every plain cell has)."""
    if d["axis_value"].notna().sum() == 0:
        return d
    keys = ["dataset", "view", "method", "policy"]
    keep = pd.Series(True, index=d.index)
    for _, g in d.groupby(keys):
        if g["axis_value"].nunique() <= 1:
            continue
        mode = d.loc[d["method"] == g["method"].iloc[0], "axis_value"].mode().iloc[0]
        keep[g.index[g["axis_value"] != mode]] = False
    return d[keep]



def figure_fraction(df: pd.DataFrame, out_dir, seed: int = 0) -> Figure:
    d = df[(df["status"] == "ok") & df["fraction"].notna() & df["macro_f1"].notna()].copy()
    d = d[ablation_mask(d, "dataset", "fraction")]  # an ablation run at several fractions is a line too
    d = default_step_only(d)  # a step sweep is Figure 6's business
    d = d[d.groupby("dataset")["fraction"].transform("nunique") >= 2]
    if d.empty:
        return Figure("fig5_fraction", "Macro-F1 against train fraction (paper Figure 5)",
                      note="skipped: no data set has ok records at two or more train fractions")
    d["train fraction (%)"] = d["fraction"] * 100
    d["macro-F1 (%)"] = d["macro_f1"] * 100
    d["method"] = [_label(m, p) for m, p in zip(d["method"], d["policy"])]
    datasets = sorted(d["dataset"].unique(), key=str)
    fig, axes = plt.subplots(1, len(datasets), figsize=(5 * len(datasets), 3.8), squeeze=False)
    for ax, ds in zip(axes[0], datasets):
        sns.lineplot(data=d[d["dataset"] == ds], x="train fraction (%)", y="macro-F1 (%)", hue="method",
                     hue_order=sorted(d["method"].unique()), marker="o", errorbar=("ci", 95), n_boot=1000,
                     seed=seed, ax=ax)
        ax.set_title(str(ds))
        ax.legend(fontsize=7)
    fig.suptitle("Macro-F1 against train fraction (bands: 95% bootstrap CI over seeds)", fontsize=10)
    png, pdf = save(fig, out_dir, "fig5_fraction")
    return Figure("fig5_fraction", "Macro-F1 against train fraction (paper Figure 5)", png, pdf,
                  "Lines: mean over seeds; bands: 95% bootstrap interval over seeds (seeded).")


# ---------------------------------------------------------------- Figure 6: F1 against step group


def figure_step_group(df: pd.DataFrame, out_dir, seed: int = 0, axis: str = "step_group") -> Figure:
    """One line per configuration whose records sweep the declared ``axis`` parameter: two or more
    values on one data set / view / policy (DiffusionCLS and its variants for the step group)."""
    d = df[(df["status"] == "ok") & (df["axis"] == axis) & df["axis_value"].notna() & df["macro_f1"].notna()].copy()
    if not d.empty:
        d = d[d.groupby(["dataset", "view", "policy", "method"])["axis_value"].transform("nunique") >= 2]
        # only the seeds present at every step group of a line: the comparison across groups stays paired
        keep = []
        for _, g in d.groupby(["dataset", "view", "policy", "method"]):
            common = set.intersection(*(set(x["seed"]) for _, x in g.groupby("axis_value")))
            keep.append(g[g["seed"].isin(common)])
        d = pd.concat(keep) if keep else d.iloc[0:0]
    if d.empty:
        return Figure("fig6_step_group", "Macro-F1 against diffusion step group (paper Figure 6)",
                      note=f"skipped: no records with two or more values of the {axis} parameter")
    d["step_group"] = d["axis_value"]
    d["macro-F1 (%)"] = d["macro_f1"] * 100
    d["panel"] = [f"{a} / {b} / {c}" for a, b, c in zip(d["dataset"], d["view"], d["policy"])]
    panels = sorted(d["panel"].unique())
    fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.8), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        p = d[d["panel"] == panel]
        sns.lineplot(data=p, x="step_group", y="macro-F1 (%)", hue="method", hue_order=sorted(p["method"].unique()),
                     marker="o", errorbar=("ci", 95), n_boot=1000, seed=seed, ax=ax)
        ds, view = p["dataset"].iloc[0], p["view"].iloc[0]
        base = df[(df["status"] == "ok") & (df["method"] == "none") & (df["dataset"] == ds) & (df["view"] == view)
                  & df["seed"].isin(set(p["seed"]))]  # the seeds the lines use: the comparison stays paired
        if base["macro_f1"].notna().any():
            ax.axhline(base["macro_f1"].mean() * 100, color="grey", ls="--",
                       label=f"none (seeds {', '.join(map(str, sorted(set(base['seed']))))})")
        ax.set(title=panel, xlabel="diffusion step group")
        ax.legend(fontsize=7)
    png, pdf = save(fig, out_dir, "fig6_step_group")
    return Figure("fig6_step_group", "Macro-F1 against diffusion step group (paper Figure 6)", png, pdf,
                  "Mean over the seeds present at every step group of a line (paired), with 95% bootstrap "
                  "bands; dashed: `none` on the same view and seeds.")


# ---------------------------------------------------------------- Figure 7: t-SNE


def tfidf_svd_embed(texts: Sequence[str], n_components: int = 50, seed: int = 0) -> np.ndarray:
    """Cheap, language-agnostic default representation: TF-IDF of character 1-3-grams (word boundaries
    respected; works for unsegmented Chinese too) reduced by truncated SVD. Not the classifier's space."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    x = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), min_df=1, sublinear_tf=True).fit_transform(texts)
    k = max(1, min(n_components, x.shape[1] - 1, x.shape[0] - 1))
    return TruncatedSVD(n_components=k, random_state=seed).fit_transform(x)


tfidf_svd_embed.description = "TF-IDF (char 1-3-grams) + truncated SVD (50 dims)"


def read_jsonl(path: str | Path, limit: int | None = None) -> list[dict]:
    out = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                out.append(json.loads(line))
            except ValueError:
                continue
            if limit is not None and len(out) >= limit:
                break
    return out


def parent_text(sample: dict, parents: Mapping[str, str] | None = None) -> str | None:
    """The parent's text: from the sample's provenance if it carries it, else from ``parents``; None if neither."""
    prov = sample.get("provenance") or {}
    for k in PARENT_TEXT_KEYS:
        if isinstance(prov.get(k), str):
            return prov[k]
    if parents is not None:
        return parents.get(str(sample.get("parent_id")))
    return None


def masking_step(sample: dict) -> float:
    prov = sample.get("provenance") or {}
    for k in ("t", "step", "mask_step"):
        v = prov.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return math.nan


def _pick_synthetic(df: pd.DataFrame, prefer: str = "diffusioncls") -> pd.Series | None:
    d = df[df["synthetic_path"].notna() & (df["status"] == "ok")]
    d = d[[Path(p).is_file() for p in d["synthetic_path"]]]
    if d.empty:
        return None
    pref = d[d["method"] == prefer]
    return (pref if len(pref) else d).sort_values(["dataset", "view", "seed"]).iloc[0]


def figure_tsne(df: pd.DataFrame, out_dir, embed: Callable[[Sequence[str]], np.ndarray] | None = None,
                parents: Mapping[str, str] | Callable[[str], Mapping[str, str] | None] | None = None, seed: int = 0, max_samples: int = 300) -> Figure:
    title = "t-SNE of originals and pseudo samples (paper Figure 7)"
    row = _pick_synthetic(df)
    if row is None:
        return Figure("fig7_tsne", title, note="skipped: no ok record with a readable synthetic_path")
    samples = read_jsonl(row["synthetic_path"])
    if callable(parents):  # a provider: data set -> {id: text} or None
        parents = parents(row["dataset"])
    rng = np.random.default_rng(seed)
    if len(samples) > max_samples:
        samples = [samples[i] for i in sorted(rng.choice(len(samples), size=max_samples, replace=False))]
    originals: dict[str, tuple[str, str]] = {}
    for s in samples:
        pt = parent_text(s, parents)
        if pt is not None:
            originals.setdefault(str(s.get("parent_id")), (pt, str(s.get("label"))))
    texts = [str(s.get("text", "")) for s in samples] + [t for t, _ in originals.values()]
    if len(texts) < 5:
        return Figure("fig7_tsne", title, note=f"skipped: only {len(texts)} texts in {row['synthetic_path']}")
    from sklearn.manifold import TSNE

    emb_fn = embed or (lambda xs: tfidf_svd_embed(xs, seed=seed))
    rep = getattr(embed, "description", getattr(embed, "__name__", "custom")) if embed else \
        tfidf_svd_embed.description
    x = np.asarray(emb_fn(texts), dtype=float)
    perplexity = float(max(2.0, min(30.0, (len(texts) - 1) / 3)))
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):  # OpenMP threads on a busy machine cost 10x; a few hundred points need one
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", max_iter=500, random_state=seed,
                  n_jobs=1).fit_transform(x)
    n_s = len(samples)
    pts = pd.DataFrame({"x": xy[:, 0], "y": xy[:, 1],
                        "label": [str(s.get("label")) for s in samples] + [lab for _, lab in originals.values()],
                        "kind": ["pseudo"] * n_s + ["original"] * len(originals),
                        "t": [masking_step(s) for s in samples] + [math.nan] * len(originals)})
    has_t = pts["t"].notna().any()
    fig, axes = plt.subplots(1, 2 if has_t else 1, figsize=(11 if has_t else 5.5, 4.5), squeeze=False)
    ax = axes[0][0]
    sns.scatterplot(data=pts, x="x", y="y", hue="label", style="kind", style_order=["original", "pseudo"],
                    markers={"original": "o", "pseudo": "X"}, s=28, alpha=0.8, ax=ax)
    ax.set(title="by label", xlabel="", ylabel="")
    ax.legend(fontsize=7)
    if has_t:
        ax = axes[0][1]
        o = pts[pts["kind"] == "original"]
        ax.scatter(o["x"], o["y"], c="lightgrey", edgecolors="k", linewidths=0.4, s=28, label="original")
        p = pts[pts["kind"] == "pseudo"]
        sc = ax.scatter(p["x"], p["y"], c=p["t"], cmap="viridis", marker="X", s=28)
        fig.colorbar(sc, ax=ax, label="masking step t (provenance)")
        ax.set(title="pseudo samples by masking step", xlabel="", ylabel="")
        ax.legend(fontsize=7)
    where = f"{row['dataset']} / {row['view']} / {_label(row['method'], row['policy'])} / seed {row['seed']}"
    fig.suptitle(f"t-SNE, {where}; representation: {rep}", fontsize=9)
    png, pdf = save(fig, out_dir, "fig7_tsne")
    note = (f"{where}: {n_s} pseudo samples, {len(originals)} originals"
            + ("" if originals else " (no parent texts in provenance or parents map: originals not drawn)")
            + f"; representation: {rep}; t-SNE perplexity {perplexity:g}, seed {seed}.")
    return Figure("fig7_tsne", title, png, pdf, note)


def all_figures(df: pd.DataFrame, run_dir, out_dir, embed=None, parents=None, seed: int = 0) -> list[Figure]:
    out: list[Figure] = []
    for name, fn in (("schedule", lambda: figure_schedule(out_dir)),
                     ("fig5_fraction", lambda: figure_fraction(df, out_dir, seed)),
                     ("fig6_step_group", lambda: figure_step_group(df, out_dir, seed)),
                     ("fig7_tsne", lambda: figure_tsne(df, out_dir, embed, parents, seed))):
        try:
            out.append(fn())
        except Exception as e:  # one broken figure must not cost the others
            plt.close("all")
            out.append(Figure(name, name, note=f"skipped: {type(e).__name__}: {e}"))
    return out
