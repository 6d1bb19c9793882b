"""An out-of-tree augmenter: a tiny package declaring the `lowres_aug_bench.methods` entry point,
installed in the test run, shows in `bench ls methods` and runs a cell; nothing in the suite changes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.helpers import sentences, write_csv

PLUGIN = '''
from bench.api import Augmenter, Example, MethodMeta, MethodParams, Synthetic, param
from dataclasses import dataclass


@dataclass(frozen=True)
class ShoutParams(MethodParams):
    marks: int = param(1, doc="exclamation marks appended")


class Shout(Augmenter):
    meta = MethodMeta(name="shout", version="1", description="upper-case the text and add exclamation marks")
    Params = ShoutParams

    def _generate(self, pairs: list[tuple[Example, int]]) -> list[Synthetic]:
        return [self.synth(e, e.text.upper() + "!" * (self.p.marks + k), k=k) for e, n in pairs for k in range(n)]
'''

PYPROJECT = '''
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "bench-plugin-shout"
version = "0.0.1"

[project.entry-points."lowres_aug_bench.methods"]
shout = "bench_plugin_shout:Shout"

[tool.setuptools]
py-modules = ["bench_plugin_shout"]
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("plugin-src")
    (src / "pyproject.toml").write_text(textwrap.dedent(PYPROJECT))
    (src / "bench_plugin_shout.py").write_text(textwrap.dedent(PLUGIN))
    site = tmp_path_factory.mktemp("plugin-site")
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation",
                    "--target", str(site), str(src)], check=True, timeout=300)
    return site


def _bench(args: list[str], site: Path) -> subprocess.CompletedProcess:
    root = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(root)])}
    return subprocess.run([sys.executable, "-m", "bench", *args], capture_output=True, text=True, env=env,
                          cwd=root, timeout=600)


def test_an_installed_plugin_is_listed_and_runs_a_cell(plugin_site, tmp_path, tiny_bert_dir):
    ls = _bench(["ls", "methods"], plugin_site)
    assert ls.returncode == 0, ls.stderr
    line = next(x for x in ls.stdout.splitlines() if x.startswith("shout"))
    assert "plugin (bench-plugin-shout 0.0.1)" in line
    csv = write_csv(tmp_path / "tiny.csv", sentences(14, seed=2))
    out = tmp_path / "run"
    run = _bench(["run", "--preset", "smoke", "--datasets", f"csv:{csv}", "--fractions", "50", "--seeds", "0",
                  "--methods", "none,shout", "--policies", "G/E", "--param", "shout.marks=2", "--backbone",
                  str(tiny_bert_dir), "--epochs", "1", "--max-length", "24", "--n-aug", "2", "--out", str(out),
                  "--no-progress", "--jobs", "1"], plugin_site)
    assert run.returncode == 0, run.stdout + run.stderr
    rec = json.loads((out / "records" / "csv-tiny.csv__50pct__shout__G-E__s0.json").read_text())
    assert rec["status"] == "ok" and rec["method_info"]["plugin"] == "bench-plugin-shout 0.0.1"
    assert rec["method_info"]["params"] == {"marks": 2}
    first = json.loads((out / rec["synthetic_path"]).read_text().splitlines()[0])
    assert first["text"].endswith("!!") and first["text"] == first["text"].upper()
    # without the package the name is unknown again (nothing was added to the suite itself)
    assert "shout" not in _bench(["ls", "methods"], tmp_path).stdout
