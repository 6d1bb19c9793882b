"""End to end through the CLI on a tiny CSV with a tiny random BERT: run, resume, fail, report."""

from __future__ import annotations

import gzip
import json

import pytest

from bench.cli import main
from tests.helpers import sentences, write_csv

METHODS = "none,resample,eda,aeda"


@pytest.fixture()
def csv_path(tmp_path):
    return write_csv(tmp_path / "tiny.csv", sentences(14, seed=2))


def _args(csv_path, out, tiny_bert_dir, methods=METHODS, extra=()):
    return ["run", "--preset", "smoke", "--datasets", f"csv:{csv_path}", "--fractions", "50", "--seeds", "0",
            "--methods", methods, "--backbone", str(tiny_bert_dir), "--epochs", "1", "--max-length", "24",
            "--n-aug", "2", "--out", str(out), "--no-progress", "--device", "cpu", "--jobs", "1", *extra]


def _records(out):
    return {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}


def test_run_then_rerun_skips_finished_cells(csv_path, tmp_path, tiny_bert_dir, capsys):
    out = tmp_path / "run"
    assert main(_args(csv_path, out, tiny_bert_dir)) == 0
    recs = _records(out)
    assert set(recs) == {"csv-tiny.csv__50pct__none__-__s0", "csv-tiny.csv__50pct__resample__B-D__s0",
                         "csv-tiny.csv__50pct__eda__G-E__s0", "csv-tiny.csv__50pct__eda__B-D__s0",
                         "csv-tiny.csv__50pct__aeda__G-E__s0", "csv-tiny.csv__50pct__aeda__B-D__s0"}
    for r in recs.values():
        assert r["status"] == "ok", r.get("reason")
        assert 0 <= r["metrics"]["macro_f1"] <= 1
        assert r["counts"]["train"] == 15  # half of the 70% train split of 42 rows, per class rounded up
        assert r["timings"]["total"] > 0 and r["config_hash"]
        assert r["versions"]["torch"]
    eda = recs["csv-tiny.csv__50pct__eda__G-E__s0"]
    assert eda["counts"]["synthetic_produced"] == 2 * eda["counts"]["train"]
    synth = (out / eda["synthetic_path"]).read_text().splitlines()
    assert len(synth) == eda["counts"]["synthetic_produced"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert len(manifest["cells"]) == 6 and manifest["finished"]
    # all methods of a cell group saw the same train view
    assert len({r["counts"]["train"] for r in recs.values()}) == 1
    before = {k: v["created"] for k, v in recs.items()}
    capsys.readouterr()
    assert main(_args(csv_path, out, tiny_bert_dir)) == 0
    assert "6 already done" in capsys.readouterr().out
    assert {k: v["created"] for k, v in _records(out).items()} == before
    hist = json.loads((out / "manifest.json").read_text())["history"]
    assert [h["cells"] for h in hist] == [6, 6] and [h["skipped"] for h in hist] == [0, 6]
    assert all(h["command"].startswith("python -m bench") for h in hist)


def test_interrupted_run_resumes_without_redoing(csv_path, tmp_path, tiny_bert_dir, monkeypatch):
    out = tmp_path / "run"
    import bench.runner as R

    real = R.run_cell
    calls = []

    def dying(cell, settings, *a, **k):
        if len(calls) == 2:
            raise KeyboardInterrupt  # killed halfway
        calls.append(cell.cell_id)
        return real(cell, settings, *a, **k)

    monkeypatch.setattr(R, "run_cell", dying)
    assert main(_args(csv_path, out, tiny_bert_dir)) == 130
    done = _records(out)
    assert set(done) == set(calls)
    monkeypatch.setattr(R, "run_cell", real)
    assert main(_args(csv_path, out, tiny_bert_dir)) == 0
    again = _records(out)
    assert len(again) == 6
    for k in done:
        assert again[k]["created"] == done[k]["created"], f"{k} was recomputed"


def test_failed_cell_is_recorded_and_sets_exit_code(csv_path, tmp_path, tiny_bert_dir, monkeypatch):
    out = tmp_path / "run"
    import methods.aeda

    def boom(self, pairs):
        raise RuntimeError("synthetic failure for the test")

    monkeypatch.setattr(methods.aeda.AEDA, "_generate", boom)
    assert main(_args(csv_path, out, tiny_bert_dir, extra=["--continue-on-error"])) == 1
    recs = _records(out)
    failed = [r for r in recs.values() if r["status"] == "failed"]
    # the data are balanced, so B/D asks AEDA for nothing and only the G/E cell reaches the failure
    assert [r["cell_id"] for r in failed] == ["csv-tiny.csv__50pct__aeda__G-E__s0"]
    assert "synthetic failure" in failed[0]["reason"] and failed[0]["traceback"]
    assert sum(r["status"] == "ok" for r in recs.values()) == 5
    # without --continue-on-error the run stops at the first failure, keeping what finished
    out2 = tmp_path / "run2"
    assert main(_args(csv_path, out2, tiny_bert_dir)) == 1
    assert any(r["status"] == "failed" for r in _records(out2).values())


def test_a_full_disk_stops_the_grid_even_with_continue_on_error(csv_path, tmp_path, tiny_bert_dir, monkeypatch,
                                                                capsys):
    """On a full disk every later cell would fail in seconds (a grid once marked 29 cells failed so):
    the first failure stops the run, and says why and what to do."""
    import shutil
    from collections import namedtuple

    import methods.aeda

    out = tmp_path / "run"
    Usage = namedtuple("Usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 10**6, 10**6))

    def boom(self, pairs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(methods.aeda.AEDA, "_generate", boom)
    assert main(_args(csv_path, out, tiny_bert_dir, extra=["--continue-on-error"])) == 1
    recs = _records(out)
    assert [r["cell_id"] for r in recs.values() if r["status"] == "failed"] == ["csv-tiny.csv__50pct__aeda__G-E__s0"]
    assert len(recs) < 6  # the cells after the failure did not run
    err = capsys.readouterr().err
    assert "the disk is full" in err and "1 MB free" in err and "run the same command again" in err


@pytest.mark.parametrize("argv, message", [
    (["run", "--methods", "edaa", "--dry-run"], "did you mean 'eda'"),
    (["run", "--datasets", "airlines", "--dry-run"], "did you mean 'airline'"),
    (["run", "--preset", "quik", "--dry-run"], "did you mean 'quick'"),
    (["run", "--fractions", "500", "--dry-run"], "percentages"),
    (["run", "--policies", "X", "--dry-run"], "unknown policy"),
    (["run", "--param", "eda.alpha", "--dry-run"], "METHOD.KEY=VALUE"),
])
def test_bad_cli_input_is_named(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_missing_backbone_is_a_clear_failure(csv_path, tmp_path):
    out = tmp_path / "run"
    code = main(["run", "--datasets", f"csv:{csv_path}", "--fractions", "50", "--seeds", "0", "--methods", "none",
                 "--backbone", str(tmp_path / "no-such-model"), "--out", str(out), "--no-progress", "--jobs", "1"])
    assert code == 1
    (rec,) = _records(out).values()
    assert rec["status"] == "failed" and "no-such-model" in rec["reason"]


def test_report_writes_table2(csv_path, tmp_path, tiny_bert_dir):
    out = tmp_path / "run"
    assert main(_args(csv_path, out, tiny_bert_dir, methods="none,aeda")) == 0
    assert main(["report", str(out)]) == 0
    md = (out / "report" / "table2.md").read_text()
    assert "aeda" in md and "none" in md
    assert (out / "report" / "table2.csv").exists()
    # --with-records: the report directory alone holds what regenerates it (a stale copy is replaced)
    ref = tmp_path / "reference"
    (ref / "records").mkdir(parents=True)
    (ref / "records" / "stale.json").write_text("{}")
    assert main(["report", str(out), "--out", str(ref), "--with-records"]) == 0
    assert sorted(p.name for p in (ref / "records").iterdir()) == sorted(p.name for p in (out / "records").iterdir())
    assert (ref / "manifest.json").read_text() == (out / "manifest.json").read_text()
    assert len(list((ref / "predictions").iterdir())) == len(list((out / "predictions").iterdir())) > 0
    aeda = json.loads((ref / "records" / "csv-tiny.csv__50pct__aeda__G-E__s0.json").read_text())
    gz = ref / (aeda["synthetic_path"] + ".gz")  # pseudo samples, compressed in the reference copy
    assert gzip.decompress(gz.read_bytes()).decode() == (out / aeda["synthetic_path"]).read_text(encoding="utf-8")
    assert main(["report", str(ref), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "table2.md").read_text() == md
    assert (tmp_path / "again" / "diversity.md").read_text() == (out / "report" / "diversity.md").read_text()
    # a grid still running finishes a cell while the report is built: the report is of the copy, so the
    # committed tables and records agree
    import bench.report as BR

    real_build = BR.build_report

    def build_while_a_cell_finishes(*a, **k):
        res = real_build(*a, **k)
        late = json.loads((out / "records" / "csv-tiny.csv__50pct__none__-__s0.json").read_text())
        late["cell_id"], late["seed"] = "csv-tiny.csv__50pct__none__-__s9", 9
        (out / "records" / "csv-tiny.csv__50pct__none__-__s9.json").write_text(json.dumps(late))
        return res

    BR.build_report = build_while_a_cell_finishes
    try:
        live = tmp_path / "live"
        assert main(["report", str(out), "--out", str(live), "--with-records"]) == 0
    finally:
        BR.build_report = real_build
    assert (live / "table2.md").read_text() == md and not (live / "records" / "csv-tiny.csv__50pct__none__-__s9.json").exists()


def test_model_based_methods_through_the_runner(csv_path, tmp_path, tiny_bert_dir, tiny_llama_dir):
    """DiffusionCLS (offline and reflective, NRT through classifier_options, the batch hook) and the LM
    baselines run as cells on tiny models; the proxy is trained once and shared."""
    out = tmp_path / "run"
    methods = "none,diffusioncls,diffusioncls-reflective,diffusioncls-wo-da,lambada,genius-f"
    extra = ["--policies", "G/E", "--param", "diffusioncls.dlm_epochs=1",
             "--param", f"lambada.model={tiny_llama_dir}", "--param", "lambada.max_new_tokens=8",
             "--param", "lambada.oversample=2", "--param", "genius-f.model=none/none",
             "--param", f"genius-f.offline_model={tiny_llama_dir}", "--param", "genius-f.max_new_tokens=8",
             "--sweep", "diffusioncls.step_group=2,4"]
    assert main(_args(csv_path, out, tiny_bert_dir, methods=methods, extra=extra)) == 0
    recs = _records(out)
    assert all(r["status"] == "ok" for r in recs.values()), {k: r.get("reason") for k, r in recs.items()}
    d = recs["csv-tiny.csv__50pct__diffusioncls__G-E__s0"]
    assert d["classifier"]["nrt_weight"] > 0 and d["classifier"]["group_batches"] is True
    assert d["classifier"]["budget_unit"] == "texts" and d["dev"]["training"]["texts_per_step"] > 0
    assert d["counts"]["synthetic_produced"] > 0
    prov = [json.loads(x)["provenance"] for x in (out / d["synthetic_path"]).read_text().splitlines()]
    assert all("masked_text" in p for p in prov)
    assert recs["csv-tiny.csv__50pct__diffusioncls-wo-da__G-E__s0"]["counts"]["synthetic_produced"] == 0
    refl = recs["csv-tiny.csv__50pct__diffusioncls-reflective__G-E__s0"]
    assert refl["counts"]["synthetic_produced"] == 0  # generated online while the classifier trains
    assert refl["counts"]["online_synthetic"]["produced"] > 0
    # one proxy for the whole (dataset, view, seed) group
    assert len(list((out / "cache" / "classifiers").iterdir())) == 1
    assert recs["csv-tiny.csv__50pct__lambada__G-E__s0"]["method_stats"].get("acceptance_rate") is not None
    # the step sweep: one more cell, the same diffusion LM (trained by the plain cell, loaded by the sweep's)
    sw = recs["csv-tiny.csv__50pct__diffusioncls[step_group=2]__G-E__s0"]
    assert sw["method_info"]["params"]["step_group"] == 2
    assert sw["method_stats"]["fit"]["cache_hit"] is True
    assert sw["fit_reused"] is True and d["fit_reused"] is False  # the record's typed fact, for the grid's ETA
    assert recs["csv-tiny.csv__50pct__lambada__G-E__s0"]["fit_reused"] is False  # its LoRA adapter trained
    # the fit's work in the method's unit: the diffusion LM's steps as trained; the originals by default
    assert d["fit_work"] == d["method_stats"]["fit"]["training"]["steps"] > 0
    assert recs["csv-tiny.csv__50pct__lambada__G-E__s0"]["fit_work"] == d["counts"]["train"]
    assert recs["csv-tiny.csv__50pct__none__-__s0"]["fit_work"] is None
    assert sw["method_stats"]["fit"]["diffusion_lm_key"] == d["method_stats"]["fit"]["diffusion_lm_key"]
    assert main(["report", str(out)]) == 0
    rep = out / "report"
    t1 = (rep / "table1.md").read_text()
    assert "[MASK]" in t1 and "| dataset | label | step |" in t1
    assert (rep / "figures" / "fig6_step_group.png").exists()
    t2 = (rep / "table2.md").read_text()
    assert "diffusioncls [step_group=2]" in t2 and "diffusioncls [step_group=4]" in t2


def test_a_run_replays_from_its_manifest(csv_path, tmp_path, tiny_bert_dir, capsys):
    """`run --config RUN/manifest.json` runs exactly the recorded configuration: the same cells, all done."""
    out = tmp_path / "run"
    assert main(_args(csv_path, out, tiny_bert_dir, methods="none,aeda", extra=["--param", "aeda.ratio=0.25"])) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["config"]["method_params"]["aeda"] == {"ratio": 0.25}
    assert manifest["config"]["classifier"]["epochs"] == 1 and manifest["config"]["methods"] == ["none", "aeda"]
    capsys.readouterr()
    assert main(["run", "--config", str(out / "manifest.json"), "--no-progress", "--jobs", "1"]) == 0
    assert "3 already done" in capsys.readouterr().out
    replay = json.loads((out / "manifest.json").read_text())
    assert replay["config"] == manifest["config"] and replay["cells"] == manifest["cells"]
    # a flag still overrides the file: the same configuration into another directory recomputes nothing wrong
    other = tmp_path / "other"
    assert main(["run", "--config", str(out / "manifest.json"), "--out", str(other), "--no-progress",
                 "--jobs", "1"]) == 0
    a, b = _records(out), _records(other)
    assert {k: v["metrics"] for k, v in a.items()} == {k: v["metrics"] for k, v in b.items()}


def test_overwrite_policies_and_a_refused_second_configuration(csv_path, tmp_path, tiny_bert_dir, capsys):
    out = tmp_path / "run"
    args = _args(csv_path, out, tiny_bert_dir, methods="none,aeda")
    assert main(args) == 0
    created = {k: v["created"] for k, v in _records(out).items()}
    # a record marked failed is recomputed under the default policy, kept under `never`
    p = out / "records" / "csv-tiny.csv__50pct__aeda__G-E__s0.json"
    rec = json.loads(p.read_text())
    rec.update(status="failed", reason="injected", metrics=None)
    p.write_text(json.dumps(rec))
    assert main([*args, "--overwrite", "never"]) == 1  # kept, and still a failed cell of the grid
    assert json.loads(p.read_text())["status"] == "failed"
    assert main(args) == 0
    assert json.loads(p.read_text())["status"] == "ok"
    # `always` recomputes every cell of the command
    assert main([*args, "--overwrite", "always"]) == 0
    assert all(v["created"] >= created[k] for k, v in _records(out).items())
    # another configuration into the same directory is refused, naming the file; nothing is overwritten
    before = {k: v["config_hash"] for k, v in _records(out).items()}
    capsys.readouterr()
    assert main([*args, "--lr", "0.001"]) == 2
    err = capsys.readouterr().err
    assert "another configuration" in err and "--overwrite always" in err and ".json" in err
    assert {k: v["config_hash"] for k, v in _records(out).items()} == before


def _comparable(rec):
    """What must not depend on the executor: everything but timings, creation time and paths."""
    return {k: v for k, v in rec.items() if k not in ("timings", "created", "git")}


def test_two_workers_write_the_records_of_one(csv_path, tmp_path, tiny_bert_dir):
    """--jobs 2 (worker processes, a proxy computed once before the cells that need it) gives the same
    records as --jobs 1 in this process."""
    one, two = tmp_path / "one", tmp_path / "two"
    methods = "none,eda,aeda,resample"
    assert main(_args(csv_path, one, tiny_bert_dir, methods=methods)) == 0
    args = _args(csv_path, two, tiny_bert_dir, methods=methods)
    assert args[-2:] == ["--jobs", "1"]
    assert main([*args[:-2], "--jobs", "2"]) == 0
    a, b = _records(one), _records(two)
    assert set(a) == set(b) and len(a) == 6
    for k in a:
        assert _comparable(a[k]) == _comparable(b[k]), k
