"""The typed record: round trip, migration of schema-1 records, the closed schema, the generated doc."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bench.records import SCHEMA, CellRecord, RecordError, read_record, schema_markdown

ROOT = Path(__file__).resolve().parents[2]

V1 = {  # a schema-1 record as the suite wrote it before the typed schema (fields abridged by nothing)
    "schema": 1, "cell_id": "airline__5pct__diffusioncls[step_group=3]__G-E__s0", "dataset": "airline",
    "view": "5pct", "method": "diffusioncls[step_group=3]", "policy": "G/E", "seed": 0, "status": "ok",
    "reason": None, "language": "en", "fraction": 0.05, "shots": None,
    "seeds": {"view": 1, "augment": 2, "train": 3}, "config_hash": "abc", "backbone": "minilm",
    "classifier": {"backbone": "minilm", "epochs": 4},
    "method_info": {"name": "diffusioncls", "version": "2", "params": {"step_group": 3, "lam": 0.5}, "seed": 2,
                    "needs_fit": True, "languages": ["en", "zh"], "citation": "Chen", "substitutes": []},
    "method_stats": {"identical_to_parent": 4},
    "metrics": {"macro_f1": 0.7, "accuracy": 0.8, "per_class_f1": {"negative": 0.9}, "n": 10},
    "dev": {"best_epoch": 2, "history": [{"epoch": 1, "loss": 1.0, "dev_macro_f1": 0.5, "dev_accuracy": 0.6}],
            "macro_f1": 0.5, "accuracy": 0.6},
    "counts": {"train": 5, "dev": 3, "test": 10, "train_label_counts": {"negative": 5}, "synthetic_requested": 20,
               "synthetic_produced": 20, "shortfall": 0, "identical_to_parent": 4,
               "synthetic_label_counts": {"negative": 20}},
    "timings": {"total": 1.0}, "substitutes": [], "synthetic_path": "cache/synthetic/x.jsonl",
    "versions": {"python": "3.11"}, "git": "deadbeef", "created": "2026-01-01T00:00:00+00:00",
}


def test_schema_1_records_migrate_with_registry_facts():
    rec = CellRecord.from_json(json.loads(json.dumps(V1)))
    assert rec.schema == SCHEMA
    info = rec.method_info
    assert (info.name, info.base, info.family) == ("diffusioncls[step_group=3]", "diffusioncls", "diffusioncls")
    assert info.overrides == {"step_group": 3} and "variant" in info.tags and info.axes == ["step_group"]
    assert rec.metrics.macro_f1 == 0.7 and rec.dev.best_epoch == 2 and rec.counts.synthetic_produced == 20
    variant = CellRecord.from_json({**V1, "method": "diffusioncls-wo-nrt", "cell_id": "x"})
    assert (variant.method_info.base, variant.method_info.family) == ("diffusioncls-wo-nrt", "diffusioncls")


def test_round_trip_and_a_closed_schema(tmp_path):
    rec = CellRecord.from_json(json.loads(json.dumps(V1)))
    path = tmp_path / "r.json"
    rec.write(path)
    assert read_record(path) == rec
    with pytest.raises(RecordError, match="unknown field"):
        CellRecord.from_json({**rec.to_json(), "surprise": 1}, "r.json")
    with pytest.raises(RecordError, match="schema 99"):
        CellRecord.from_json({**V1, "schema": 99})


def test_a_damaged_record_names_its_file(tmp_path):
    path = tmp_path / "cut.json"
    path.write_text(json.dumps(V1)[:50])
    with pytest.raises(RecordError, match=re.escape(str(path))):
        read_record(path)


def test_docs_records_md_is_generated_from_the_schema():
    text = (ROOT / "docs" / "records.md").read_text(encoding="utf-8")
    m = re.search(r"<!-- schema:begin[^\n]*-->\n(.*)<!-- schema:end -->", text, flags=re.S)
    assert m, "docs/records.md lost its generated section markers"
    assert m.group(1) == schema_markdown(), "docs/records.md is stale: regenerate it from `python -m bench ls schema`"


def test_a_record_from_before_fit_reused_takes_it_from_the_methods_fit_statistics():
    base = CellRecord(cell_id="a__5pct__m__G-E__s0", dataset="a", view="5pct", method="m", policy="G/E", seed=0)
    d = base.to_json()
    d.pop("fit_reused")
    assert CellRecord.from_json({**d, "method_stats": {"fit": {"cache_hit": True}}}).fit_reused is True
    assert CellRecord.from_json({**d, "method_stats": {"fit": {"cached": False}}}).fit_reused is False
    assert CellRecord.from_json(d).fit_reused is None


def test_a_record_from_before_fit_work_takes_the_diffusion_lms_steps_from_its_fit_statistics():
    base = CellRecord(cell_id="a__5pct__m__G-E__s0", dataset="a", view="5pct", method="m", policy="G/E", seed=0)
    d = base.to_json()
    d.pop("fit_work")
    assert CellRecord.from_json({**d, "method_stats": {"fit": {"training": {"steps": 104}}}}).fit_work == 104.0
    assert CellRecord.from_json({**d, "method_stats": {"fit": {"training": {"steps": True}}}}).fit_work is None
    assert CellRecord.from_json(d).fit_work is None
    assert CellRecord.from_json({**d, "fit_work": 7.0}).fit_work == 7.0
