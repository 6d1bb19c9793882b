"""Wall time of one grid run with ``--jobs 1`` and then with ``--jobs N``, on this machine, one after the other.

Each run starts from an empty run and cache directory, so neither reuses the other's work. It prints
both wall times, their ratio, the CPU use of each run (user + system seconds of the children over
wall seconds x cores) and whether the two runs wrote the same records (every field but timings,
timestamps, paths and versions). Run it on an otherwise idle machine:

    python scripts/bench_jobs.py --jobs 2 -- --preset smoke --methods none,resample,eda,aeda --seeds 0,1

Arguments after ``--`` go to ``bench run`` unchanged.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# fields that legitimately differ between two runs of the same cells
VOLATILE = {"timings", "created", "git", "versions", "synthetic_path", "predictions_path"}


def _strip(obj):
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in VOLATILE and not k.endswith("seconds")}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _records(out: Path) -> dict[str, dict]:
    return {f.name: _strip(json.loads(f.read_text())) for f in sorted((out / "records").glob("*.json"))}


def _run(jobs: int, run_args: list[str], work: Path) -> dict:
    out = work / f"jobs{jobs}"
    cmd = [sys.executable, "-m", "bench", "run", *run_args, "--jobs", str(jobs), "--out", str(out),
           "--cache-dir", str(out / "cache"), "--no-progress"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"jobs {jobs} failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    recs = _records(out)
    return {"jobs": jobs, "wall_s": round(wall, 1), "cpu_s": round(cpu, 1), "cells": len(recs),
            "cpu_use": round(cpu / (wall * (os.cpu_count() or 1)), 3), "records": recs}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    own, run_args = (argv[: argv.index("--")], argv[argv.index("--") + 1:]) if "--" in argv else (argv, [])
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--keep", default=None, help="keep the two run directories here (default: a temp dir)")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args(own)
    load = os.getloadavg()
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="bench-jobs-"))
    try:
        one = _run(1, run_args, work)
        many = _run(args.jobs, run_args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    same = one["records"] == many["records"]
    diff = sorted(k for k in one["records"].keys() | many["records"].keys()
                  if one["records"].get(k) != many["records"].get(k))
    result = {"run_args": run_args, "load_before": load, "speedup": round(one["wall_s"] / many["wall_s"], 2),
              "identical_records": same, "differing": diff,
              **{f"jobs{r['jobs']}": {k: v for k, v in r.items() if k != "records"} for r in (one, many)}}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
