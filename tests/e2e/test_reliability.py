"""Nothing lost, nothing mixed, nothing trusted blindly: each fault injected, each answer checked.

Faults: a synthetic set cut to fewer lines or mid-line, pseudo samples cached from another generator,
a truncated proxy result or model file, a second configuration into one run directory, a one-class
file, conflicting duplicates, --out that is a file or read-only, a corrupt manifest, two commands into
one directory at once, file permissions.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from bench.cli import main
from tests.helpers import sentences, write_csv


@pytest.fixture()
def csv_path(tmp_path):
    return write_csv(tmp_path / "tiny.csv", sentences(14, seed=2))


def _args(csv_path, out, tiny_bert_dir, methods="none,aeda", extra=()):
    return ["run", "--preset", "smoke", "--datasets", f"csv:{csv_path}", "--fractions", "50", "--seeds", "0",
            "--methods", methods, "--policies", "G/E", "--backbone", str(tiny_bert_dir), "--epochs", "1",
            "--max-length", "24", "--n-aug", "2", "--out", str(out), "--no-progress", "--jobs", "1", *extra]


def _record(out, cell="csv-tiny.csv__50pct__aeda__G-E__s0"):
    return json.loads((out / "records" / f"{cell}.json").read_text())


def _clean_run(csv_path, tmp_path, tiny_bert_dir, name="run"):
    out = tmp_path / name
    assert main(_args(csv_path, out, tiny_bert_dir)) == 0
    return out, _record(out)


@pytest.mark.parametrize("damage", ["fewer lines", "cut mid-line"])
def test_a_damaged_synthetic_set_is_recomputed_not_trusted(csv_path, tmp_path, tiny_bert_dir, damage):
    out, clean = _clean_run(csv_path, tmp_path, tiny_bert_dir)
    path = out / clean["synthetic_path"]
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == clean["counts"]["synthetic_produced"] == 30
    path.write_text("".join(lines[:3]) if damage == "fewer lines" else "".join(lines[:3]) + lines[3][:10])
    assert main([*_args(csv_path, out, tiny_bert_dir), "--overwrite", "always"]) == 0
    again = _record(out)
    assert any("cached pseudo samples damaged, recomputed" in n for n in again["notes"]), again["notes"]
    assert len(path.read_text().splitlines()) == 30  # whole again
    assert again["metrics"] == clean["metrics"] and again["counts"] == clean["counts"]


def test_pseudo_samples_of_another_generator_are_never_served(csv_path, tmp_path, tiny_bert_dir, monkeypatch):
    """The cache of pseudo samples is keyed on the models the method's fit would load here: the same
    generator is served from the cache, another one (an offline stand-in replaced by the hub model, a
    rebuilt backbone) makes its own."""
    from methods.aeda import AEDA

    monkeypatch.setattr(AEDA, "_resource_key", lambda self, context: {"generator": "first"})
    out, clean = _clean_run(csv_path, tmp_path, tiny_bert_dir)
    first = out / clean["synthetic_path"]
    stamp = first.stat().st_mtime_ns
    assert main([*_args(csv_path, out, tiny_bert_dir), "--overwrite", "always"]) == 0
    assert _record(out)["synthetic_path"] == clean["synthetic_path"] and first.stat().st_mtime_ns == stamp
    monkeypatch.setattr(AEDA, "_resource_key", lambda self, context: {"generator": "second"})
    assert main([*_args(csv_path, out, tiny_bert_dir), "--overwrite", "always"]) == 0
    again = _record(out)
    assert again["synthetic_path"] != clean["synthetic_path"] and (out / again["synthetic_path"]).exists()
    assert first.stat().st_mtime_ns == stamp  # the first generator's samples are kept, not overwritten


@pytest.mark.parametrize("victim", ["train_result.json", "model.safetensors"])
def test_a_truncated_proxy_is_retrained_not_a_failure_forever(csv_path, tmp_path, tiny_bert_dir, victim):
    out, clean = _clean_run(csv_path, tmp_path, tiny_bert_dir)
    (proxy_dir,) = (out / "cache" / "classifiers").iterdir()
    f = proxy_dir / victim
    f.write_bytes(f.read_bytes()[: max(1, f.stat().st_size // 3)])
    assert main([*_args(csv_path, out, tiny_bert_dir), "--overwrite", "always"]) == 0
    none = _record(out, "csv-tiny.csv__50pct__none__-__s0")
    assert none["status"] == "ok" and any("proxy classifier damaged, retrained" in n for n in none["notes"])
    assert none["metrics"] == _record(tmp_path / "run", "csv-tiny.csv__50pct__none__-__s0")["metrics"]
    assert main([*_args(csv_path, out, tiny_bert_dir), "--overwrite", "always"]) == 0  # and healthy after
    assert not any("damaged" in n for n in _record(out, "csv-tiny.csv__50pct__none__-__s0")["notes"])


def test_a_second_configuration_is_refused_and_nothing_is_overwritten(csv_path, tmp_path, tiny_bert_dir, capsys):
    out, clean = _clean_run(csv_path, tmp_path, tiny_bert_dir)
    capsys.readouterr()
    assert main(_args(csv_path, out, tiny_bert_dir, extra=["--lr", "0.002"])) == 2
    assert "another configuration" in capsys.readouterr().err
    assert _record(out) == clean


def test_one_class_and_conflicting_duplicates(tmp_path, tiny_bert_dir, capsys):
    one = write_csv(tmp_path / "one.csv", [(f"text {i}", "pos") for i in range(20)])
    assert main(_args(one, tmp_path / "a", tiny_bert_dir)) == 2
    assert "at least 2 classes" in capsys.readouterr().err
    rows = sentences(14, seed=2) + [("the crew was great", "positive"), ("The crew was great ", "negative"),
                                    ("the crew was great", "neutral")]
    dup = write_csv(tmp_path / "tiny.csv", rows)
    out = tmp_path / "b"
    assert main(_args(dup, out, tiny_bert_dir)) == 0
    assert "dropped 3 rows whose text appears with different labels" in capsys.readouterr().err
    rec = _record(out)
    assert any("dropped 3 rows" in n and "the crew was great" in n for n in rec["notes"])


def test_out_that_is_a_file_or_read_only_is_one_clear_line(csv_path, tmp_path, tiny_bert_dir, capsys):
    f = tmp_path / "a-file"
    f.write_text("x")
    assert main(_args(csv_path, f, tiny_bert_dir)) == 2
    err = capsys.readouterr().err
    assert "exists and is not a directory" in err and "Traceback" not in err
    ro = tmp_path / "ro"
    ro.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro", "tmpfs", str(ro)], capture_output=True).returncode:
        pytest.skip("cannot mount a read-only file system here")
    try:
        assert main(_args(csv_path, ro / "run", tiny_bert_dir)) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "Read-only file system" in err[0] and str(ro) in err[0]
    finally:
        subprocess.run(["umount", str(ro)], check=False)


def test_a_corrupt_manifest_is_kept_aside_and_rebuilt(csv_path, tmp_path, tiny_bert_dir, capsys):
    out, _ = _clean_run(csv_path, tmp_path, tiny_bert_dir)
    m = out / "manifest.json"
    m.write_text(m.read_text()[:40])
    capsys.readouterr()
    assert main(_args(csv_path, out, tiny_bert_dir)) == 0
    err = capsys.readouterr().err
    aside = list(out.glob("manifest.json.corrupt-*"))
    assert len(aside) == 1 and aside[0].name in err and "rebuilt from 2 records" in err
    fixed = json.loads(m.read_text())
    assert fixed["config"]["methods"] == ["none", "aeda"] and len(fixed["history"]) == 1


def test_two_commands_into_one_directory_both_keep_their_entries(csv_path, tmp_path, tiny_bert_dir):
    """Two processes (two seeds) into one run directory at once: the locked manifest keeps both."""
    out = tmp_path / "run"
    root = Path(__file__).resolve().parents[2]
    procs = []
    for seed in (0, 1):
        a = _args(csv_path, out, tiny_bert_dir)
        a[a.index("--seeds") + 1] = str(seed)
        procs.append(subprocess.Popen([sys.executable, "-m", "bench", *a], cwd=root, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, text=True))
    errs = [p.communicate(timeout=600)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    hist = json.loads((out / "manifest.json").read_text())["history"]
    assert len(hist) == 2 and {h["cells"] for h in hist} == {2}
    assert len(list((out / "records").glob("*.json"))) == 4


def test_records_and_cache_files_follow_the_umask(csv_path, tmp_path, tiny_bert_dir):
    old = os.umask(0o022)
    try:
        out, rec = _clean_run(csv_path, tmp_path, tiny_bert_dir)
    finally:
        os.umask(old)
    for p in [out / "records" / "csv-tiny.csv__50pct__aeda__G-E__s0.json", out / rec["synthetic_path"],
              out / "manifest.json"]:
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p


def test_messages_name_the_flag_and_the_line(tmp_path, capsys):
    assert main(["run", "--seeds", "0,x", "--dry-run"]) == 2
    assert "--seeds: 'x' is not an integer" in capsys.readouterr().err
    assert main(["run", "--fractions", "5,abc", "--dry-run"]) == 2
    assert "--fractions: 'abc' is not a number" in capsys.readouterr().err
    assert main(["run", "--seeds", "1,1", "--dry-run"]) == 2
    assert "repeated" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "fine", "label": "a"}\n{"text": "x", "label": \n')
    assert main(["run", "--datasets", f"jsonl:{bad}", "--dry-run", "--methods", "none"]) == 2
    assert f"{bad}, line 2: not valid JSON" in capsys.readouterr().err
    latin = tmp_path / "latin.csv"
    latin.write_bytes(b"text,label\nfine,a\nok,b\ncaf\xe9,a\n")
    assert main(["run", "--datasets", f"csv:{latin}", "--dry-run", "--methods", "none"]) == 2
    assert f"{latin}, line 4: byte b'\\xe9' at column 4 is not UTF-8" in capsys.readouterr().err
    empty = write_csv(tmp_path / "empty.csv", [("fine", "a"), ("  ", "b"), ("ok", "b")])
    assert main(["run", "--datasets", f"csv:{empty}", "--dry-run", "--methods", "none"]) == 2
    assert f"{empty}, line 3" in (err := capsys.readouterr().err) and "empty text" in err


def test_a_record_that_cannot_be_read_names_its_file(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "records").mkdir(parents=True)
    (run / "records" / "x.json").write_text("{cut")
    assert main(["report", str(run)]) == 0
    assert "x.json" in capsys.readouterr().err


@pytest.mark.slow
def test_kill_at_random_moments_then_resume_gives_the_same_table(csv_path, tmp_path, tiny_bert_dir):
    """10 kill -9 at random moments of a 12-cell grid, each resumed: the same Table 2 as an unbroken run,
    no temp files left, nothing recomputed after the last resume."""
    import random
    import time

    root = Path(__file__).resolve().parents[2]
    methods = "none,resample,eda,aeda"
    args = lambda out: [sys.executable, "-m", "bench", *_args(csv_path, out, tiny_bert_dir, methods=methods,  # noqa: E731
                                                                  extra=["--seeds", "0,1,2"])[0:]]
    ref, run = tmp_path / "ref", tmp_path / "killed"
    assert subprocess.run(args(ref), cwd=root, capture_output=True).returncode == 0
    rng = random.Random(0)
    for _ in range(10):
        p = subprocess.Popen(args(run), cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(rng.uniform(2, 12))
        p.kill()
        p.wait()
    assert subprocess.run(args(run), cwd=root, capture_output=True).returncode == 0
    for d in (ref, run):
        assert subprocess.run([sys.executable, "-m", "bench", "report", str(d)], cwd=root).returncode == 0
    assert (ref / "report" / "table2.csv").read_text() == (run / "report" / "table2.csv").read_text()
    assert not [p for p in run.rglob("*.tmp*")]
