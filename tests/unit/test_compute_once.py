"""Two processes that need the same cache entry at once compute it once: the second waits on a file
lock and then reads what the first made (two grid lanes reaching one seed's proxy classifier, or the
once-per-machine MLM adaptation, used to train it twice side by side)."""

from __future__ import annotations

import json
import multiprocessing as mp
import threading
import time
from pathlib import Path

from bench.api.io import file_lock


def _hold(lock: str, log: str, tag: str) -> None:
    with file_lock(lock):
        with open(log, "a") as fh:
            fh.write(f"{tag}+\n")
        time.sleep(0.3)  # long enough for the other process to try the lock
        with open(log, "a") as fh:
            fh.write(f"{tag}-\n")


def test_the_file_lock_excludes_another_process(tmp_path):
    lock, log = tmp_path / "x.lock", tmp_path / "log"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_hold, args=(str(lock), str(log), t)) for t in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    lines = log.read_text().split()
    assert len(lines) == 4 and all(p.exitcode == 0 for p in procs)
    assert lines[0][0] == lines[1][0] and lines[2][0] == lines[3][0], f"interleaved: {lines}"


def test_the_mlm_adaptation_runs_once_when_two_callers_ask_at_once(tmp_path, monkeypatch):
    from bench.api import hub
    from methods.common import mlm

    calls = []

    def fake_adapt(path, out, params, progress):
        calls.append(path)
        time.sleep(0.3)  # the other caller arrives while this one works
        Path(out).mkdir(parents=True)
        return {"fill_mask_before": 0.05, "fill_mask_after": 0.3}

    monkeypatch.setattr(hub, "locate", lambda name: f"/models/{name}")
    monkeypatch.setattr(mlm, "has_trained_mlm_head", lambda path: False)
    monkeypatch.setattr(mlm, "_adapt", fake_adapt)
    got = []
    threads = [threading.Thread(target=lambda: got.append(mlm.adapted_mlm_dir("minilm", root=tmp_path)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(calls) == 1 and len(got) == 2 and got[0] == got[1]
    assert json.loads((got[0] / "adaptation.json").read_text())["fill_mask_after"] == 0.3
