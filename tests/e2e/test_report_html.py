"""End to end: a fake run directory -> build_report -> the HTML report rendered by headless chromium.

The records are TEST FIXTURES (tests/report_fixtures.py), not results. The browser part needs Debian's
``chromium`` on PATH (``apt-get install chromium``); without it that test is skipped, saying so.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report_fixtures import LABELS, WORDS, write_fake_run  # noqa: E402

from bench.report import build_report  # noqa: E402


def fake_train_data(dataset):
    """A tiny stand-in train split (texts, labels, {id: text}) so label consistency is measured."""
    import random

    rng = random.Random(dataset)
    texts = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(30)]
    return texts, [LABELS[i % 3] for i in range(30)], {f"{dataset}-{i}": t for i, t in enumerate(texts)}


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    run = write_fake_run(tmp_path_factory.mktemp("run"), seeds=(0, 1), datasets=("airline",))
    result = build_report(run, n_boot=200, train_data=fake_train_data)
    return run, result


def test_build_report_writes_every_part(report):
    run, r = report
    out = run / "report"
    assert r["out_dir"] == str(out)
    for name in ("table2", "table9", "table3", "table3_f1", "table4", "aggregate", "costs", "diversity"):
        for ext in ("md", "csv", "tex"):
            assert (out / f"{name}.{ext}").is_file(), f"{name}.{ext}"
    for fig in ("schedule", "fig5_fraction", "fig6_step_group", "fig7_tsne", "diversity_map"):
        assert (out / "figures" / f"{fig}.png").is_file() and (out / "figures" / f"{fig}.pdf").is_file(), fig
    assert (out / "report.md").is_file() and (out / "report.html").is_file() and (out / "records.csv").is_file()
    assert r["skipped"] == {}, r["skipped"]
    assert r["status_counts"] == {"ok": 44, "unavailable": 1, "failed": 1}
    assert [f for f, _ in r["load_errors"]] == ["broken.json"]


def test_html_is_self_contained_and_complete(report):
    run, _ = report
    html = (run / "report" / "report.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", html), "external reference in the report"
    assert html.count("data:image/png;base64,") == 5
    for needle in ("Table 2", "Table 9", "Table 3", "Table 4", "Aggregate over data sets", "unavailable: no MT",
                   "failed", "Example pseudo samples", "Offline substitutes used", "bert-base-uncased",
                   "tiny-bert", "nlpaug", "TF-IDF"):
        assert needle in html, needle
    assert "CUDA OOM | boom" in html  # the failed cell's reason is listed, escaped, not interpreted


def test_report_without_figures_or_data_still_writes_tables(tmp_path):
    run = write_fake_run(tmp_path / "run", seeds=(0,), datasets=("rt",), with_synthetic=False)
    r = build_report(run, tmp_path / "elsewhere", n_boot=50, train_data=None, figures=False)
    assert (tmp_path / "elsewhere" / "table2.md").is_file()
    assert "± -" in (tmp_path / "elsewhere" / "table2.md").read_text(encoding="utf-8")  # one seed: no std
    assert "diversity:diversity" in r["skipped"] and "figure:diversity_map" in r["skipped"]


def test_empty_run_still_writes_every_table(tmp_path):
    (tmp_path / "records").mkdir()
    r = build_report(tmp_path, train_data=None, figures=False)
    assert set(r["tables"]) == {"table1", "table2", "table9", "table3", "table3_f1", "table4", "aggregate", "costs",
                            "summary"}
    assert "no diffusioncls records" in (tmp_path / "report" / "table1.md").read_text(encoding="utf-8")
    assert "No records" in (tmp_path / "report" / "table2.md").read_text(encoding="utf-8")
    with pytest.raises(FileNotFoundError):
        build_report(tmp_path / "not-a-run")


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.skipif(_chromium() is None, reason="headless chromium not on PATH (Debian: apt-get install chromium)")
def test_html_renders_in_headless_chromium(report, tmp_path):
    run, _ = report
    page = tmp_path / "probe.html"
    probe = ("<script>window.addEventListener('load',function(){var ok=0;for(var i of document.images)"
             "{if(i.complete&&i.naturalWidth>0)ok++;}document.body.setAttribute('data-images-ok',ok);"
             "document.body.setAttribute('data-tables',document.querySelectorAll('table').length);});</script>")
    page.write_text((run / "report" / "report.html").read_text(encoding="utf-8").replace("</body>",
                                                                                       probe + "</body>"),
                    encoding="utf-8")
    args = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--no-first-run", "--virtual-time-budget=5000", f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*args, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=90)
    assert dom.returncode == 0, dom.stderr[-2000:]
    m = re.search(r'data-images-ok="(\d+)"', dom.stdout)
    assert m and int(m.group(1)) == 5, "embedded figures did not decode in the browser"
    assert int(re.search(r'data-tables="(\d+)"', dom.stdout).group(1)) >= 10
    shot = tmp_path / "shot.png"
    res = subprocess.run([*args, f"--screenshot={shot}", "--window-size=1280,2000", page.as_uri()],
                         capture_output=True, text=True, timeout=90)
    assert res.returncode == 0 and shot.is_file() and shot.stat().st_size > 10_000, res.stderr[-2000:]
