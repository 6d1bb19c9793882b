"""The Ray executor: a smoke grid through a local Ray cluster writes the records of the local executor."""

from __future__ import annotations

import json

import pytest

from bench.cli import main
from tests.helpers import sentences, write_csv

ray = pytest.importorskip("ray", reason="Ray is the [ray] extra (scripts/setup.sh installs it)")


def _records(out):
    return {p.stem: json.loads(p.read_text()) for p in (out / "records").glob("*.json")}


def _comparable(rec):
    return {k: v for k, v in rec.items() if k not in ("timings", "created", "git")}


def test_a_local_ray_cluster_gives_the_records_of_the_local_executor(tmp_path, tiny_bert_dir):
    csv = write_csv(tmp_path / "tiny.csv", sentences(14, seed=2))
    common = ["run", "--preset", "smoke", "--datasets", f"csv:{csv}", "--fractions", "50", "--seeds", "0",
              "--methods", "none,eda,aeda", "--policies", "G/E", "--backbone", str(tiny_bert_dir), "--epochs", "1",
              "--max-length", "24", "--n-aug", "2", "--no-progress"]
    local, on_ray = tmp_path / "local", tmp_path / "ray"
    assert main([*common, "--out", str(local), "--jobs", "1"]) == 0
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}})
    try:
        assert main([*common, "--out", str(on_ray), "--executor", "ray"]) == 0
    finally:
        ray.shutdown()
    a, b = _records(local), _records(on_ray)
    assert set(a) == set(b) and len(a) == 3
    for k in a:
        assert _comparable(a[k]) == _comparable(b[k]), k
    assert not list(on_ray.glob("**/.bench-ray-probe"))  # the storage probe cleans up after itself
