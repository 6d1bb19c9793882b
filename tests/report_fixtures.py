"""TEST FIXTURES ONLY: fake-but-schema-valid run directories for the report tests.

Nothing here is a result: the scores are drawn from a seeded generator so that the report code has
something to aggregate. Used by tests/unit/test_report_*.py and tests/e2e/test_report_html.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

WORDS = ("good bad great awful flight crew seat late delayed friendly rude food service bag lost "
         "thanks again never always love hate nice slow quick clean").split()
LABELS = ("negative", "neutral", "positive")


def fake_record(dataset="airline", view="5pct", method="none", policy="-", seed=0, status="ok", reason=None,
                f1=0.6, acc=0.7, language="en", step_group=None, synthetic_path=None, n_synthetic=0):
    from bench.data import ViewSpec

    v = ViewSpec.parse(view)
    fraction, shots = v.fraction, v.shots
    pol = policy.replace("/", "-")
    params = {} if step_group is None else {"step_group": step_group}
    ok = status == "ok"
    return {
        "schema": 1, "cell_id": f"{dataset}__{view}__{method}__{pol}__s{seed}", "status": status,
        "reason": reason, "dataset": dataset, "language": language, "view": view, "fraction": fraction,
        "shots": shots, "method": method, "policy": policy, "seed": seed,
        "seeds": {"view": seed, "augment": seed + 1, "train": seed + 2},
        "metrics": {"macro_f1": f1, "accuracy": acc, "per_class_f1": {}, "n": 100} if ok else {},
        "dev": {}, "counts": {"train": 50, "dev": 20, "test": 100, "synthetic_requested": n_synthetic,
                              "synthetic_produced": n_synthetic, "shortfall": 0, "identical_to_parent": 0},
        "timings": {"data": 0.1, "augment": 1.0, "train": 2.0, "evaluate": 0.5, "total": 3.6},
        "method_info": {"name": method, "version": "1", "params": params, "seed": seed, "citation": "",
                        "substitutes": []},
        "method_stats": {}, "classifier": {"backbone": "tiny-bert", "epochs": 1},
        "backbone": "tiny-bert",
        "substitutes": [{"role": "backbone", "paper": "bert-base-uncased", "used": "tiny-bert"}],
        "synthetic_path": synthetic_path,
        "versions": {"python": "3.11", "torch": "2.13", "transformers": "4.x", "nlpaug": "1.1.11",
                     "bench": "0.1.0"},
        "git": None, "config_hash": "x", "created": "2026-01-01T00:00:00",
    }


def _sentence(rng, n=8):
    return " ".join(rng.choice(WORDS, size=n))


def write_fake_run(root: Path, seeds=(0, 1, 2), datasets=("airline", "rt"), with_synthetic=True) -> Path:
    """A run directory with a fraction sweep, k-shot views, ablations, a step-group sweep, one failed and
    one unavailable cell, and synthetic JSONL files whose provenance carries the parent text and 't'."""
    rng = np.random.default_rng(0)
    run = Path(root)
    (run / "records").mkdir(parents=True, exist_ok=True)
    (run / "synthetic").mkdir(exist_ok=True)
    recs = []
    methods = [("none", "-", 0.0), ("eda", "G/E", 0.01), ("aeda", "B/D", 0.005), ("diffusioncls", "G/E", 0.02)]
    for ds in datasets:
        for view, base in (("5pct", 0.45), ("20pct", 0.60), ("100pct", 0.70)):
            for m, pol, gain in methods:
                for s in seeds:
                    f1 = base + gain + rng.normal(0, 0.01)
                    sp = None
                    if with_synthetic and m != "none" and view == "5pct" and s == seeds[0]:
                        sp = f"synthetic/{ds}__{view}__{m}__{pol.replace('/', '-')}__s{s}.jsonl"
                        with open(run / sp, "w", encoding="utf-8") as fh:
                            for i in range(30):
                                parent = _sentence(rng)
                                words = parent.split()
                                t = int(rng.integers(1, 33))
                                k = max(1, t * len(words) // 32)
                                for j in rng.choice(len(words), size=k, replace=False):
                                    words[j] = str(rng.choice(WORDS))
                                fh.write(json.dumps({"text": " ".join(words), "label": LABELS[i % 3],
                                                     "parent_id": f"{ds}-{i}", "method": m,
                                                     "provenance": {"t": t, "parent_text": parent}}) + "\n")
                    recs.append(fake_record(ds, view, m, pol, s, f1=f1, acc=f1 + 0.05, synthetic_path=sp,
                                            n_synthetic=0 if m == "none" else 30))
            for m in ("diffusioncls-wo-da", "diffusioncls-wo-nrt"):
                if view != "100pct":
                    continue
                for s in seeds:
                    f1 = base + rng.normal(0, 0.01)
                    recs.append(fake_record(ds, view, m, "G/E", s, f1=f1, acc=f1 + 0.05))
        for view, base in (("5shot", 0.55), ("10shot", 0.62)):
            for m, pol, gain in methods[:1] + methods[3:]:
                for s in seeds:
                    a = base + gain + rng.normal(0, 0.01)
                    recs.append(fake_record(ds, view, m, pol, s, f1=a - 0.02, acc=a))
    # a step-group sweep of diffusioncls on the first data set (its own method label to keep cell ids unique)
    for g in (1, 3, 5, 8):
        for s in seeds:
            f1 = 0.6 + 0.03 * np.sin(np.pi * g / 8) + rng.normal(0, 0.005)
            r = fake_record(datasets[0], "20pct", "diffusioncls", "G/E", s, f1=f1, acc=f1 + 0.05, step_group=g)
            r["cell_id"] += f"__g{g}"
            recs.append(r)
    recs.append(fake_record(datasets[0], "5pct", "backtranslation", "G/E", 0, status="unavailable",
                            reason="no MT engine for en offline"))
    recs.append(fake_record(datasets[0], "5pct", "lambada", "G/E", 0, status="failed", reason="CUDA OOM | boom"))
    for r in recs:
        (run / "records" / f"{r['cell_id']}.json").write_text(json.dumps(r), encoding="utf-8")
    (run / "records" / "broken.json").write_text("{not json", encoding="utf-8")
    return run
