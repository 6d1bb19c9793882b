"""End to end: the HTML report of a fake run, read as text (DOM-level checks) and drawn by headless Chromium.

The records are TEST FIXTURES (tests/report_fixtures.py), not results. The browser tests need Debian's
``chromium`` (``apt-get install chromium``); without it they are skipped, saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from report_fixtures import LABELS, WORDS, fake_record, write_fake_run  # noqa: E402

from bench.report import build_report  # noqa: E402

HOSTILE = "<img src=x onerror=alert(1)> & \"quoted\""
MANIFEST = {"command": "python -m bench run --methods none,eda --out RUN", "git": "abc123",
            "started": "2026-01-01T00:00:00", "finished": "2026-01-01T01:00:00", "cells": ["a", "b"],
            "config": {"preset": "quick", "seeds": [0, 1], "classifier": {"epochs": 4, "lr": 0.0001}},
            "versions": {"python": "3.11", "torch": "2.13"},
            "history": [{"command": "python -m bench run --methods none,eda --out RUN", "started": "2026-01-01",
                         "wall_seconds": 12.5, "cells": 2, "skipped": 0, "failed": 0}]}


def fake_train_data(dataset):
    """A tiny stand-in train split (texts, labels, {id: text}) so label consistency is measured."""
    import random

    rng = random.Random(dataset)
    texts = [" ".join(rng.choice(WORDS) for _ in range(8)) for _ in range(30)]
    return texts, [LABELS[i % 3] for i in range(30)], {f"{dataset}-{i}": t for i, t in enumerate(texts)}


@pytest.fixture(scope="module")
def report_html(tmp_path_factory) -> Path:
    run = write_fake_run(tmp_path_factory.mktemp("run"), seeds=(0, 1), datasets=("airline",))
    (run / "manifest.json").write_text(json.dumps(MANIFEST), encoding="utf-8")
    bad = fake_record("airline", "5pct", "genius", "G/E", 0, status="unavailable", reason=HOSTILE)
    (run / "records" / f"{bad['cell_id']}.json").write_text(json.dumps(bad), encoding="utf-8")
    build_report(run, n_boot=100, train_data=fake_train_data)
    return run / "report" / "report.html"


@pytest.fixture(scope="module")
def bare_html(tmp_path_factory) -> str:
    """A run without synthetic sets, k-shot views, manifest or figures: many parts have nothing to show."""
    run = write_fake_run(tmp_path_factory.mktemp("bare"), seeds=(0,), datasets=("rt",), with_synthetic=False)
    for f in (run / "records").glob("*shot*.json"):
        f.unlink()
    build_report(run, n_boot=50, train_data=None, figures=False)
    return (run / "report" / "report.html").read_text(encoding="utf-8")


class Outline(HTMLParser):
    """Headings (level, id, text) and, after each, whether any content came before the next heading."""

    CONTENT = {"table", "figure", "img", "p", "ul", "ol", "pre"}

    def __init__(self):
        super().__init__()
        self.items: list[dict] = []
        self._in_heading: dict | None = None

    def handle_starttag(self, tag, attrs):
        if re.fullmatch(r"h[1-6]", tag):
            self._in_heading = {"level": int(tag[1]), "id": dict(attrs).get("id"), "text": "", "content": False}
            self.items.append(self._in_heading)
        elif tag in self.CONTENT and self.items:
            self.items[-1]["content"] = True

    def handle_endtag(self, tag):
        if re.fullmatch(r"h[1-6]", tag):
            self._in_heading = None

    def handle_data(self, data):
        if self._in_heading is not None:
            self._in_heading["text"] += data


def outline(html: str) -> list[dict]:
    p = Outline()
    p.feed(html)
    return p.items


def empty_headings(html: str) -> list[str]:
    """Headings with no content of their own and no sub-heading with content under them."""
    items = outline(html)
    out = []
    for i, h in enumerate(items):
        if h["content"]:
            continue
        nxt = items[i + 1] if i + 1 < len(items) else None
        if nxt is None or nxt["level"] <= h["level"]:
            out.append(h["text"])
    return out


def section(html: str, anchor: str) -> str:
    m = re.search(rf'<h2 id="{anchor}">(.*?)(?=<h2 |<script>)', html, re.S)
    assert m, f"no section {anchor}"
    return m.group(1)


# ---------------------------------------------------------------- the HTML text


def test_tables_are_sortable_by_an_inline_script(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert html.count('<table class="sortable">') >= 10
    script = re.search(r"<script>(.*?)</script>", html, re.S).group(1)
    assert "table.sortable" in script and "addEventListener('click'" in script
    assert not re.search(r"""(src|href)=["'](https?:|//|file:)""", html), "external reference in the report"


def test_no_heading_without_content_and_missing_parts_listed_once(report_html, bare_html):
    for html in (report_html.read_text(encoding="utf-8"), bare_html):
        assert empty_headings(html) == []
        ids = [h["id"] for h in outline(html) if h["id"]]
        assert len(ids) == len(set(ids)), "duplicate anchors"
    missing = section(bare_html, "not-in-run")
    for part in ("Table 3: k-shot accuracy", "Diversity and label consistency", "Example pseudo samples",
                 "Diversity-consistency map"):
        assert missing.count(part) == 1, part
    headings = {h["text"] for h in outline(bare_html)}
    assert not headings & {"Table 3: k-shot accuracy", "Figures", "Diversity and label consistency",
                           "Example pseudo samples"}
    assert 'href="#diversity"' not in bare_html and 'href="#not-in-run"' in bare_html


def test_provenance_is_tables_not_json(report_html):
    prov = section(report_html.read_text(encoding="utf-8"), "provenance")
    assert '<table class="kv">' in prov
    for row in ("<th scope=\"row\">classifier.epochs</th><td>4</td>", "<th scope=\"row\">seeds</th><td>0, 1</td>",
                "<th scope=\"row\">git commit</th><td>abc123</td>"):
        assert row in prov, row
    assert "Offline substitutes used" in prov and "bert-base-uncased" in prov
    assert "{&quot;" not in prov and '{"' not in prov, "raw JSON in the provenance"
    examples = section(report_html.read_text(encoding="utf-8"), "examples")
    assert "<td>t = " in examples and "{&quot;t" not in examples


def test_mean_std_cells_do_not_wrap_and_values_are_escaped(report_html):
    html = report_html.read_text(encoding="utf-8")
    assert re.search(r"td\.num\{white-space:nowrap", html)
    cells = re.findall(r"<td([^>]*)>([^<]*±[^<]*)</td>", html)
    assert cells and all('class="num"' in attrs for attrs, _ in cells)
    assert HOSTILE not in html and "&lt;img src=x onerror=alert(1)&gt; &amp; &quot;quoted&quot;" in html


# ---------------------------------------------------------------- in a browser


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


needs_chromium = pytest.mark.skipif(_chromium() is None,
                                    reason="headless chromium not on PATH (Debian: apt-get install chromium)")


def _browser(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [_chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@needs_chromium
def test_screenshot_is_not_blank(report_html, tmp_path):
    shot = tmp_path / "shot.png"
    res = _browser(tmp_path, f"--screenshot={shot}", "--window-size=1280,2000", report_html.as_uri())
    assert res.returncode == 0 and shot.is_file(), res.stderr[-2000:]
    try:
        from PIL import Image
    except ImportError:
        assert shot.stat().st_size > 30_000
        return
    img = Image.open(shot).convert("RGB")
    assert img.size == (1280, 2000)
    colours = img.getcolors(maxcolors=1 << 20)
    ink = sum(n for n, c in colours if min(c) < 235) / (img.size[0] * img.size[1])
    assert len(colours) > 50 and ink > 0.02, f"{len(colours)} colours, {ink:.1%} non-white: blank page?"


SORT_PROBE = """<script>window.addEventListener('load',function(){
var th=[].filter.call(document.querySelectorAll('table.sortable thead th'),
  function(h){return h.textContent.trim()==='macro-F1';})[0];
var i=th.cellIndex,t=th.closest('table');
function col(){return [].map.call(t.tBodies[0].rows,function(r){return r.cells[i].textContent.trim();}).join('|');}
var before=col();th.click();var up=col();var aria=th.getAttribute('aria-sort');th.click();var down=col();
document.body.setAttribute('data-before',before);document.body.setAttribute('data-up',up);
document.body.setAttribute('data-down',down);document.body.setAttribute('data-aria',aria);});</script>"""


def _numbers(cells: list[str]) -> list[float]:
    return [float(m.group(1)) for c in cells if (m := re.match(r"([+-]?\d+(?:\.\d+)?)", c))]


@needs_chromium
def test_clicking_a_column_head_sorts_its_table(report_html, tmp_path):
    page = tmp_path / "probe.html"
    page.write_text(report_html.read_text(encoding="utf-8").replace("</body>", SORT_PROBE + "</body>"),
                    encoding="utf-8")
    res = _browser(tmp_path, "--virtual-time-budget=5000", "--dump-dom", page.as_uri())
    assert res.returncode == 0, res.stderr[-2000:]
    got = {k: re.search(rf'data-{k}="([^"]*)"', res.stdout) for k in ("before", "up", "down", "aria")}
    assert all(got.values()), "the probe did not run"
    before, up, down = (got[k].group(1).split("|") for k in ("before", "up", "down"))
    assert got["aria"].group(1) == "ascending"
    assert sorted(before) == sorted(up) == sorted(down) and len(_numbers(up)) >= 3
    assert _numbers(up) == sorted(_numbers(up)) and _numbers(down) == sorted(_numbers(down), reverse=True)
    assert up != before or _numbers(before) == sorted(_numbers(before))
    words = [c for c in up if not _numbers([c])]  # "-", "failed", "unavailable: ...": last both ways
    assert words and up[-len(words):] == down[-len(words):] == words
