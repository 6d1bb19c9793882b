"""Beyond the paper: diversity and label consistency of every method's pseudo samples.

Per record with a synthetic JSONL file (one ``Synthetic.to_json()`` per line), on a seeded sample:

- ``distinct_1`` / ``distinct_2``: distinct uni-/bi-grams over all n-grams of the set (higher = more varied);
- ``self_bleu``: mean BLEU-4 (nltk, smoothing method1) of each sampled text against the other sampled texts
  (lower = more varied); reported as ``1 - self_bleu`` on the map;
- ``edit_to_parent``: token-level Levenshtein distance to the parent text / max(len), 0 = a copy. Parent
  texts come from the provenance (``parent_text``) or from a parents map; NA when neither has them;
- ``consistency``: share of pseudo samples that a reference classifier (a parameter: texts -> labels)
  predicts as the label they carry. The report's default is TF-IDF + logistic regression fitted on the
  full TRAIN split of the data set (never dev or test); NA when no train split can be loaded.

Tokens: whitespace words, with each CJK character its own token.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.report import figures as F
from bench.report import tables as T
from bench.report.figures import Figure, parent_text, read_jsonl, save

_TOKEN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]|[^\s\u3400-\u9fff\uf900-\ufaff]+")


def tokenize(text: str) -> list[str]:
    return _TOKEN.findall(str(text).lower())


def distinct_n(texts: Sequence[str], n: int) -> float:
    """Distinct n-grams / all n-grams over the set; NaN when the set has no n-gram."""
    grams = [tuple(toks[i:i + n]) for toks in map(tokenize, texts) for i in range(len(toks) - n + 1)]
    return len(set(grams)) / len(grams) if grams else math.nan


def _ngram_counts(toks: Sequence[str], n: int) -> Counter:
    return Counter(zip(*(toks[k:] for k in range(n))))


def _top_two(counts: Sequence[Counter]) -> dict[tuple, tuple[int, int, int]]:
    """{n-gram: (largest count, index of a text with it, second largest count)} over ``counts``."""
    top: dict[tuple, tuple[int, int, int]] = {}
    for i, c in enumerate(counts):
        for g, k in c.items():
            m1, i1, m2 = top.get(g, (0, -1, 0))
            top[g] = (k, i, m1) if k > m1 else (m1, i1, max(m2, k))
    return top


def _bleu4_against_others(i: int, counts: Sequence[Sequence[Counter]], tops, lens: Sequence[int]) -> float:
    """nltk's ``sentence_bleu`` of text i against all other texts (BLEU-4, smoothing method 1, epsilon 0.1)."""
    nums, dens = [], []
    for n in range(4):
        top = tops[n]
        num = 0
        for g, k in counts[i][n].items():
            m1, i1, m2 = top[g]
            num += min(k, m1 if i1 != i else m2)
        nums.append(num)
        dens.append(max(1, sum(counts[i][n].values())))
    if nums[0] == 0:
        return 0.0
    hyp = lens[i]
    ref = min((r for j, r in enumerate(lens) if j != i), key=lambda r: (abs(r - hyp), r))
    bp = 1.0 if hyp > ref else (0.0 if hyp == 0 else math.exp(1 - ref / hyp))
    logs = [math.log((k if k else 0.1) / d) for k, d in zip(nums, dens)]
    return bp * math.exp(math.fsum(0.25 * x for x in logs))


def self_bleu(texts: Sequence[str], max_samples: int = 100, seed: int = 0) -> float:
    """Mean sentence BLEU-4 of each text against all the others (sampled down to ``max_samples``, seeded).

    The same numbers as averaging nltk's ``sentence_bleu(others, text, smoothing_function=method1)``
    (a test checks it), but each n-gram's two largest counts over the set give every text's clip
    against the others in one pass: nltk recounts every reference for every hypothesis, which took
    about 13 s a record on Chinese news (character tokens)."""
    toks = [t for t in map(tokenize, texts) if t]
    if len(toks) < 2:
        return math.nan
    if len(toks) > max_samples:
        rng = np.random.default_rng(seed)
        toks = [toks[i] for i in sorted(rng.choice(len(toks), size=max_samples, replace=False))]
    counts = [[_ngram_counts(t, n) for n in range(1, 5)] for t in toks]
    tops = [_top_two([c[n] for c in counts]) for n in range(4)]
    lens = [len(t) for t in toks]
    return float(np.mean([_bleu4_against_others(i, counts, tops, lens) for i in range(len(toks))]))


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between two token sequences (insert, delete, substitute: cost 1), in C++
    (``editdistance``): the pure-Python table took as long as the rest of the diversity measures."""
    import editdistance

    return int(editdistance.eval(list(a), list(b)))


def normalized_edit_distance(a: str, b: str) -> float:
    ta, tb = tokenize(a), tokenize(b)
    m = max(len(ta), len(tb))
    return edit_distance(ta, tb) / m if m else 0.0


def label_consistency(texts: Sequence[str], labels: Sequence[str],
                      classifier: Callable[[Sequence[str]], Sequence[str]]) -> float:
    """Share of ``texts`` that ``classifier`` predicts as their ``labels``; NaN for an empty set."""
    if not texts:
        return math.nan
    pred = list(classifier(list(texts)))
    return float(np.mean([str(p) == str(y) for p, y in zip(pred, labels)]))


def reference_classifier(train_texts: Sequence[str], train_labels: Sequence[str], seed: int = 0
                         ) -> Callable[[Sequence[str]], list[str]]:
    """TF-IDF of word 1-2-grams (CJK characters as words; min_df 2) + logistic regression (C=4), fitted on
    the given texts, which must be a TRAIN split. About 0.8 accuracy on held-out airline train tweets; a
    char-n-gram union is 2 points better and 4x slower, so the cheaper one is the default."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline

    min_df = 2 if len(train_texts) >= 200 else 1
    feats = TfidfVectorizer(tokenizer=tokenize, token_pattern=None, ngram_range=(1, 2), min_df=min_df,
                            sublinear_tf=True)
    model = make_pipeline(feats, LogisticRegression(max_iter=1000, C=4.0, random_state=seed))
    model.fit(list(train_texts), [str(y) for y in train_labels])
    return lambda texts: list(model.predict(list(texts)))


def default_train_data(dataset: str, data_dirs: Mapping[str, str] | None = None):
    """(texts, labels, {id: text}) of the data set's full TRAIN split via ``bench.data.load_dataset``."""
    from bench.data import load_dataset

    tr = load_dataset(dataset, dict(data_dirs) if data_dirs else None).train
    return [e.text for e in tr], [e.label for e in tr], {e.id: e.text for e in tr}


def views_parents(run_dir) -> dict[str, str]:
    """{id: text} from any ``RUN/cache/views/*.jsonl`` (lines with ``id`` and ``text``); empty if none."""
    out: dict[str, str] = {}
    for f in sorted((Path(run_dir) / "cache" / "views").glob("*.jsonl")) if run_dir else []:
        for d in read_jsonl(f):
            if isinstance(d, dict) and "id" in d and isinstance(d.get("text"), str):
                out.setdefault(str(d["id"]), d["text"])
    return out


def measure(samples: Sequence[dict], classifier=None, parents: Mapping[str, str] | None = None,
            max_samples: int = 500, bleu_samples: int = 100, seed: int = 0) -> dict[str, Any]:
    """All diversity / consistency measures of one synthetic set (a list of ``Synthetic.to_json()`` dicts)."""
    rng = np.random.default_rng(seed)
    if len(samples) > max_samples:
        samples = [samples[i] for i in sorted(rng.choice(len(samples), size=max_samples, replace=False))]
    texts = [str(s.get("text", "")) for s in samples]
    labels = [str(s.get("label")) for s in samples]
    eds = []
    for s in samples:
        p = parent_text(s, parents)
        if p is not None:
            eds.append(normalized_edit_distance(s.get("text", ""), p))
    return {
        "n_measured": len(samples),
        "distinct_1": distinct_n(texts, 1), "distinct_2": distinct_n(texts, 2),
        "self_bleu": self_bleu(texts, bleu_samples, seed),
        "edit_to_parent": float(np.mean(eds)) if eds else math.nan,
        "copies": float(np.mean([e == 0 for e in eds])) if eds else math.nan,
        "consistency": label_consistency(texts, labels, classifier) if classifier is not None else math.nan,
    }


@dataclass
class DiversityResult:
    per_record: pd.DataFrame
    table: T.Table
    files: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    figure: Figure | None = None
    examples: list[dict] = field(default_factory=list)


MEASURES = ("distinct_1", "distinct_2", "self_bleu", "edit_to_parent", "copies", "consistency")


def diversity_frame(df: pd.DataFrame, classifier_for: Callable[[str], Any] | None = None,
                    parents_for: Callable[[str], Mapping[str, str] | None] | None = None, seed: int = 0,
                    max_samples: int = 500, bleu_samples: int = 100) -> pd.DataFrame:
    """One row per ok record whose synthetic file exists, with :data:`MEASURES`."""
    rows = []
    d = df[(df["status"] == "ok") & df["synthetic_path"].notna()]
    for _, r in d.iterrows():
        path = Path(r["synthetic_path"])
        if not path.is_file():
            continue
        samples = read_jsonl(path)
        if not samples:
            continue
        clf = classifier_for(r["dataset"]) if classifier_for else None
        parents = parents_for(r["dataset"]) if parents_for else None
        m = measure(samples, clf, parents, max_samples=max_samples, bleu_samples=bleu_samples, seed=seed)
        rows.append({"dataset": r["dataset"], "view": r["view"], "method": r["method"], "policy": r["policy"],
                     "seed": r["seed"], "synthetic_path": str(path), "n_samples": len(samples), **m})
    cols = ["dataset", "view", "method", "policy", "seed", "synthetic_path", "n_samples", "n_measured", *MEASURES]
    return pd.DataFrame(rows, columns=cols)


DEFAULT_CLASSIFIER_DESC = "TF-IDF word 1-2-grams + logistic regression fitted on the full train split; never test"


def summarize_frame(per_record: pd.DataFrame, classifier_desc: str = DEFAULT_CLASSIFIER_DESC) -> T.Table:
    """Mean over the records (seeds) of each data set / view / method / policy."""
    if per_record.empty:
        return T.Table("diversity", "Diversity and label consistency of pseudo samples", pd.DataFrame(),
                       pd.DataFrame())
    g = per_record.groupby(["dataset", "view", "method", "policy"], sort=True)
    data = g[list(MEASURES)].mean().reset_index()
    data.insert(4, "records", g.size().to_numpy())
    data.insert(5, "samples", g["n_samples"].sum().to_numpy())

    def f(x, d=3):
        return "NA" if pd.isna(x) else f"{x:.{d}f}"
    disp = pd.DataFrame({
        "dataset": data["dataset"], "view": data["view"], "method": data["method"], "policy": data["policy"],
        "records": data["records"].astype(str), "samples": data["samples"].astype(str),
        "distinct-1": data["distinct_1"].map(f), "distinct-2": data["distinct_2"].map(f),
        "self-BLEU": data["self_bleu"].map(f), "edit to parent": data["edit_to_parent"].map(f),
        "copies": data["copies"].map(f), "label consistency": data["consistency"].map(f)})
    notes = ["distinct-n: distinct n-grams / all n-grams (higher = more varied); self-BLEU: BLEU-4 of each "
             "sampled text against the others (lower = more varied); edit to parent: token Levenshtein / max "
             "length (0 = copy); copies: share with distance 0; label consistency: share that the reference "
             f"classifier ({classifier_desc}) predicts as the carried label. Means over records (seeds); NA = not measurable (no parent texts / no train split)."]
    return T.Table("diversity", "Diversity and label consistency of pseudo samples", disp, data,
                   section=["dataset", "view"], notes=notes)


MAP_KEYS = ["dataset", "view", "method", "policy"]


def _per_seed(per_record: pd.DataFrame | None) -> dict[tuple, pd.DataFrame]:
    """{(data set, view, method, policy): per-seed x = 1 - self-BLEU and y = consistency} for the spread."""
    if per_record is None or per_record.empty:
        return {}
    r = per_record.dropna(subset=["self_bleu", "consistency"])
    return {k: pd.DataFrame({"x": 1 - g["self_bleu"], "y": g["consistency"]}) for k, g in r.groupby(MAP_KEYS)}


@F.paper_style
def draw_map(data: pd.DataFrame, per_record: pd.DataFrame | None = None):
    """One panel per data set / view; one point per method x policy in the method's colour and marker (open
    for B/D), ±1 SD over seeds as error bars and the seeds as faint points when ``per_record`` has them.
    The legend names the points: no text next to them, so nothing overlaps. None when nothing to draw."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    d = data.dropna(subset=["self_bleu", "consistency"]) if not data.empty else data
    if d.empty:
        return None
    styles = F.method_styles(d["method"])
    seeds = _per_seed(per_record)
    panels = sorted({(a, b) for a, b in zip(d["dataset"], d["view"])},
                    key=lambda k: (str(k[0]), T._view_sort(k[1])))
    ncols = min(3, len(panels))
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(4.0 * ncols, 3.5 * nrows), squeeze=False, sharey=True)
    legend: dict[str, Any] = {}
    for ax, (ds, view) in zip(axes.flat, panels):
        p = d[(d["dataset"] == ds) & (d["view"] == view)]
        for _, r in sorted(p.iterrows(), key=lambda ir: F.line_order(ir[1]["method"], ir[1]["policy"])):
            st, label = F.line_style(r["method"], r["policy"], styles), F.line_label(r["method"], r["policy"])
            s = seeds.get(tuple(r[k] for k in MAP_KEYS))
            sd = s.std() if s is not None and len(s) >= 2 else None
            c = ax.errorbar(1 - r["self_bleu"], r["consistency"], xerr=None if sd is None else sd["x"],
                            yerr=None if sd is None else sd["y"], fmt=st.marker, color=st.color, markersize=7.5,
                            capsize=2.5, elinewidth=0.9, zorder=3, **F.marker_face(st))
            c.lines[0].set_gid(f"line:{label}")
            if sd is not None:
                ax.scatter(s["x"], s["y"], s=16, marker=st.marker, alpha=0.35, linewidths=0.6, zorder=2,
                           facecolors="none" if st.hollow else st.color, edgecolors=st.color)
            legend.setdefault(label, F.legend_handle(st, line=False))
        ax.set(ylim=(-0.02, 1.02), title=f"{ds}, {F.view_label(view)}", xlabel="diversity (1 − self-BLEU)",
               ylabel="label consistency")
        ax.margins(x=0.15)
        ax.xaxis.set_major_locator(MaxNLocator(5))
        ax.yaxis.set_tick_params(labelleft=True)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    F.figure_legend(fig, list(legend.values()), list(legend), "method, policy")
    fig.suptitle("Diversity-consistency map (up and right is better)")
    fig.tight_layout()
    return fig


def figure_map(data: pd.DataFrame, out_dir, per_record: pd.DataFrame | None = None) -> Figure:
    """Diversity-consistency map: x = 1 - self-BLEU, y = label consistency, one point per method/policy
    in one panel per data set / view (``per_record``: the per-seed measures, for the spread)."""
    title = "Diversity-consistency map"
    fig = draw_map(data, per_record)
    if fig is None:
        return Figure("diversity_map", title, note="skipped: no synthetic set with both self-BLEU and label "
                                                   "consistency (consistency needs the train split)")
    png, pdf = save(fig, out_dir, "diversity_map")
    spread = ("error bars ±1 standard deviation over seeds (n−1) and faint points the seeds, where a set was "
              "measured for two or more seeds" if per_record is not None else "no per-seed spread drawn")
    return Figure("diversity_map", title, png, pdf,
                  "One point per data set / view / method / policy: the mean over seeds; " + spread + ". Up and "
                  "right is better: varied pseudo samples that still carry their label.")


def examples(df: pd.DataFrame, k: int = 3, parents=None) -> list[dict]:
    """A few pseudo samples per data set / method / policy (first lines of the file of the first view and
    seed that has one), so the report stays readable for large sweeps."""
    out = []
    d = df[(df["status"] == "ok") & df["synthetic_path"].notna()].sort_values(
        ["dataset", "view", "method", "policy", "seed"])
    seen = set()
    for _, r in d.iterrows():
        key = (r["dataset"], r["view"], r["method"], r["policy"])
        per_method = (key[0], key[2], key[3])  # data set, method, policy
        if per_method in seen or not Path(r["synthetic_path"]).is_file():
            continue
        seen.add(per_method)
        lines = read_jsonl(r["synthetic_path"], limit=k)
        pmap = parents(r["dataset"]) if callable(parents) else parents
        out.append({"dataset": key[0], "view": key[1], "method": key[2], "policy": key[3], "seed": r["seed"],
                    "samples": [{"text": s.get("text"), "label": s.get("label"), "parent": parent_text(s, pmap),
                                 "provenance": s.get("provenance") or {}} for s in lines]})
    return out


class TrainData:
    """Lazy, cached access to each data set's full TRAIN split: ``get(ds) -> (texts, labels, {id: text})``
    or None (with the reason in ``errors``). ``loader``: ``"auto"`` (``bench.data.load_dataset``, with the
    run manifest's ``settings.data_dirs``), a callable ``dataset -> (texts, labels, {id: text})``, or None
    (never load). Parent texts fall back to ``RUN/cache/views/*.jsonl`` when the loader has none."""

    def __init__(self, loader="auto", run_dir=None):
        self.run_dir = Path(run_dir) if run_dir else None
        if loader == "auto":
            data_dirs = _manifest_data_dirs(self.run_dir)
            self.loader = lambda ds: default_train_data(ds, data_dirs)
        else:
            self.loader = loader
        self.cache: dict[str, Any] = {}
        self.errors: dict[str, str] = {}
        self._views: dict[str, str] | None = None

    def get(self, dataset: str):
        if dataset not in self.cache:
            self.cache[dataset] = None
            if self.loader is not None:
                try:
                    self.cache[dataset] = self.loader(dataset)
                except Exception as e:  # unknown / unprepared data set: measures are NA, and we say why
                    self.errors[f"train split of {dataset}"] = f"{type(e).__name__}: {e}"
        return self.cache[dataset]

    def parents(self, dataset: str) -> Mapping[str, str] | None:
        tr = self.get(dataset)
        if tr and tr[2]:
            return tr[2]
        if self._views is None:
            self._views = views_parents(self.run_dir) if self.run_dir else {}
        return self._views or None


def _manifest_data_dirs(run_dir) -> dict[str, str] | None:
    import json

    try:
        man = json.loads((Path(run_dir) / "manifest.json").read_text(encoding="utf-8"))
        return dict((man.get("settings") or {}).get("data_dirs") or {}) or None
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def diversity_report(df: pd.DataFrame, run_dir, out_dir, classifier=None, parents=None, train_data="auto",
                     seed: int = 0) -> DiversityResult:
    """Measure every synthetic set of the run, write ``diversity.{md,csv,tex}``, ``diversity_records.csv`` and
    the map (``figures/diversity_map.{png,pdf}``). ``train_data``: a :class:`TrainData` or what it takes."""
    out_dir = Path(out_dir)
    td = train_data if isinstance(train_data, TrainData) else TrainData(train_data, run_dir)
    clf_cache: dict[str, Any] = {}

    def classifier_for(ds):
        if classifier is not None:
            return classifier
        if ds not in clf_cache:
            tr = td.get(ds)
            clf_cache[ds] = reference_classifier(tr[0], tr[1], seed) if tr and len(set(tr[1])) >= 2 else None
        return clf_cache[ds]

    def parents_for(ds):
        return parents if parents is not None else td.parents(ds)

    per = diversity_frame(df, classifier_for, parents_for, seed=seed)
    table = summarize_frame(per, DEFAULT_CLASSIFIER_DESC if classifier is None else
                            getattr(classifier, "description", "a classifier supplied by the caller"))
    files = T.write_table(table, out_dir)
    per.to_csv(out_dir / "diversity_records.csv", index=False)
    files.append("diversity_records.csv")
    fig = figure_map(table.data, out_dir / "figures", per_record=per)
    if fig.path_png:
        files += [str(Path(p).relative_to(out_dir)) for p in (fig.path_png, fig.path_pdf)]
    skipped = dict(td.errors)
    if per.empty:
        skipped["diversity"] = "no ok record with a readable synthetic_path"
    return DiversityResult(per, table, files, skipped, fig, examples(df, parents=parents_for))
