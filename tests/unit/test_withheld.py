"""A data set whose card forbids redistribution (SMP2020-EWECT) keeps its texts and test labels out of
reports and of the run files `bench report --with-records` copies; its scores stay."""

from __future__ import annotations

import json
from pathlib import Path

from bench.data import load_cards, withheld_datasets
from bench.report import build_report, copy_run_files
from tests.report_fixtures import fake_record

SECRET = "微博原文不可外传"  # stands for an SMP2020-EWECT text: must appear in no report file


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    for d in ("records", "predictions", "cache/synthetic"):
        (run / d).mkdir(parents=True)
    for ds, text, lang in (("airline", "a shareable tweet", "en"), ("smp2020-ewect", SECRET, "zh")):
        for method, policy in (("none", "-"), ("genius-f", "G/E")):
            rec = fake_record(ds, "5pct", method, policy, 0, language=lang, n_synthetic=2 if policy != "-" else 0)
            if method == "genius-f":
                rec["synthetic_path"] = f"cache/synthetic/{ds}.jsonl"
                rec["method_stats"] = {"generated": 4}
                lines = [{"text": f"{text} {i}", "label": "neutral", "parent_id": f"p{i}", "method": method,
                          "provenance": {"sketch": text, "proxy_prob": 0.9, "parent_text": text}} for i in range(2)]
                (run / rec["synthetic_path"]).write_text("\n".join(map(json.dumps, lines)), encoding="utf-8")
            (run / "records" / f"{rec['cell_id']}.json").write_text(json.dumps(rec), encoding="utf-8")
            (run / "predictions" / f"{rec['cell_id']}.json").write_text(json.dumps({"ids": ["t1"]}), encoding="utf-8")
    return run


def test_the_card_says_which_data_sets_are_withheld():
    assert not load_cards()["smp2020-ewect"].redistributable and load_cards()["inews"].redistributable
    withheld = withheld_datasets(["airline", "smp2020-ewect", "csv-mine"])
    assert list(withheld) == ["smp2020-ewect"] and "not redistributable" in withheld["smp2020-ewect"]


def test_copied_run_files_hold_no_predictions_or_pseudo_samples_of_a_withheld_data_set(tmp_path):
    run, ref = _run(tmp_path), tmp_path / "ref"
    copied = copy_run_files(run, ref)
    assert sorted(p.name for p in (ref / "records").iterdir()) == sorted(p.name for p in (run / "records").iterdir())
    assert sorted(p.name for p in (ref / "predictions").iterdir()) == [
        "airline__5pct__genius-f__G-E__s0.json", "airline__5pct__none__-__s0.json"]
    assert [p.name for p in (ref / "cache" / "synthetic").iterdir()] == ["airline.jsonl.gz"]
    assert any("withheld" in c and "smp2020-ewect" in c for c in copied)


def test_copied_pseudo_samples_are_compressed_reproducibly_and_the_report_of_the_copy_reads_them(tmp_path):
    import gzip

    run, ref = _run(tmp_path), tmp_path / "ref"
    copy_run_files(run, ref)
    gz = ref / "cache" / "synthetic" / "airline.jsonl.gz"
    first = gz.read_bytes()
    assert gzip.decompress(first) == (run / "cache" / "synthetic" / "airline.jsonl").read_bytes()
    copy_run_files(run, ref)  # a later copy of the same samples is byte-identical: no timestamp inside
    assert gz.read_bytes() == first
    again = tmp_path / "ref2"
    copy_run_files(ref, again)  # a report of a report keeps the compressed file as it is
    assert (again / "cache" / "synthetic" / "airline.jsonl.gz").read_bytes() == first
    build_report(ref, ref, figures=False, train_data=None)
    assert "a shareable tweet 1" in (ref / "table1_lm.md").read_text(encoding="utf-8")


def test_a_report_quotes_no_text_of_a_withheld_data_set_but_keeps_its_scores(tmp_path):
    run, out = _run(tmp_path), tmp_path / "report"
    res = build_report(run, out, figures=False, train_data=None)
    assert "examples:smp2020-ewect" in res["skipped"]
    lm = (out / "table1_lm.md").read_text(encoding="utf-8")
    assert "a shareable tweet" in lm and "| smp2020-ewect | 5pct | genius-f | 1 | 4 | 2 |" in lm
    for f in out.rglob("*"):
        if f.is_file() and f.suffix in {".md", ".csv", ".html", ".tex"}:
            assert SECRET not in f.read_text(encoding="utf-8"), f.name
