"""One self-contained HTML report per run (figures embedded as base64 PNG) and the same in Markdown.

Plain string templates, no template engine; every value from a record is HTML-escaped. The page works
offline: its only script (sortable tables) and style are inline. A part with no data in the run gets no
heading of its own: it is listed once under "Not in this run", with the reason.
"""

from __future__ import annotations

import base64
import html as _html
import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from bench.report import tables as T

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1240px;margin:2em auto;padding:0 1em;
color:#222;line-height:1.45;font-size:15px}
h1{border-bottom:2px solid #444}h2{border-bottom:1px solid #bbb;margin-top:2.2em}h3{margin:1.4em 0 .4em}
h4{margin:1em 0 .3em;font-size:1em}
.scroll{overflow-x:auto;max-width:100%}
table{border-collapse:collapse;margin:.4em 0 1.2em;font-size:.85em}
th,td{border:1px solid #ccc;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef0f3;position:relative}tbody tr:nth-child(even) td{background:#f8f9fa}
table.sortable th{cursor:pointer;user-select:none;padding-right:1.3em}
table.sortable th:hover,table.sortable th:focus{background:#dde3ea;outline:none}
table.sortable th::after{content:"\\2195";position:absolute;right:.35em;color:#999;font-size:.85em}
table.sortable th[aria-sort=ascending]::after{content:"\\25B2";color:#333}
table.sortable th[aria-sort=descending]::after{content:"\\25BC";color:#333}
td.num{white-space:nowrap;font-variant-numeric:tabular-nums}
td.unavailable{color:#8a6d00}td.failed{color:#b00020;font-weight:bold}
table.kv th{width:14em;cursor:auto;background:#f3f3f3;font-weight:600}
.note{color:#555;font-size:.85em}.skipped{color:#8a6d00}
img{max-width:100%;height:auto;border:1px solid #ddd}figure{margin:1em 0}
figcaption{max-width:62em;margin-top:.3em}
code,pre{background:#f6f6f6;font-size:.85em}pre{padding:.5em;overflow-x:auto;white-space:pre-wrap}
nav{margin:.5em 0 1em;line-height:1.9}nav a{margin-right:1em;white-space:nowrap}
"""

# Click (or Enter/Space on) a column head to sort that table's rows; again to reverse. Numbers compare as
# numbers (the leading number of "45.21 ± 0.39"); in a column of numbers, cells without one ("-", "failed",
# "unavailable: ...") stay last both ways; ties keep their order.
SORT_JS = """
(function(){
function key(td){var t=(td?td.textContent:'').trim(),u=t.replace(/\\u2212/g,'-');
var m=u.match(/^[<>\\u2264\\u2265]?\\s*([+-]?(?:\\d+\\.?\\d*|\\.\\d+)(?:e[+-]?\\d+)?)/i);
return {n:m?parseFloat(m[1]):NaN,s:t.toLowerCase(),e:(t===''||t==='-'||t==='NA'||t==='[-]')};}
function text(a,b){return a.s<b.s?-1:(a.s>b.s?1:0);}
function sortBy(th){var table=th.closest('table'),body=table.tBodies[0],i=th.cellIndex;
var dir=th.getAttribute('aria-sort')==='ascending'?-1:1;
Array.prototype.forEach.call(th.parentNode.cells,function(c){c.removeAttribute('aria-sort');});
th.setAttribute('aria-sort',dir>0?'ascending':'descending');
var rows=Array.prototype.map.call(body.rows,function(r,k){return {r:r,k:key(r.cells[i]),o:k};});
var numeric=rows.some(function(x){return !isNaN(x.k.n);});
rows.forEach(function(x){x.last=x.k.e||(numeric&&isNaN(x.k.n));});
rows.sort(function(a,b){if(a.last!==b.last)return a.last?1:-1;if(a.last)return text(a.k,b.k)||a.o-b.o;
return dir*(numeric?a.k.n-b.k.n:text(a.k,b.k))||a.o-b.o;})
.forEach(function(x){body.appendChild(x.r);});}
Array.prototype.forEach.call(document.querySelectorAll('table.sortable thead th'),function(th){
th.tabIndex=0;th.title='Sort by this column';th.addEventListener('click',function(){sortBy(th);});
th.addEventListener('keydown',function(e){if(e.key==='Enter'||e.key===' '){e.preventDefault();sortBy(th);}});});
})();
"""

# a number-like cell ("45.21 ± 0.39", "+1.04 [+0.50, +1.57]", "46.25 ± 0.28 (n=3, Δ +1.04)", "<0.001")
_NUMERIC = re.compile(r"^[\s\d.,:;+\-−±\[\]()<>=%≤≥nΔ]*\d[\s\d.,:;+\-−±\[\]()<>=%≤≥nΔ]*$")


def esc(x: Any) -> str:
    return _html.escape("" if x is None else str(x), quote=True)


def _cell_class(v: str) -> str:
    v = str(v)
    if v.startswith("unavailable"):
        return ' class="unavailable"'
    if v.startswith("failed"):
        return ' class="failed"'
    if _NUMERIC.match(v):  # never wrap "mean ± std" or an interval in the middle
        return ' class="num"'
    return ""


def human(x: Any) -> str:
    """A view id as words (``5pct`` -> ``5% of train``), anything else as it is."""
    from bench.report.figures import view_label

    return view_label(x) if isinstance(x, str) and re.fullmatch(r"\d+(\.\d+)?(pct|shot)", x) else str(x)


def frame_html(frame: pd.DataFrame, sortable: bool = True) -> str:
    head = "".join(f"<th>{esc(human(c))}</th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(f"<td{_cell_class(v)}>{esc(v)}</td>" for v in row) + "</tr>"
                   for row in frame.itertuples(index=False))
    cls = ' class="sortable"' if sortable and len(frame) > 1 else ""
    return f'<div class="scroll"><table{cls}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'


def kv_html(pairs: list[tuple[str, Any]], caption: str | None = None) -> str:
    """A two-column key / value table (provenance), never raw JSON."""
    cap = f"<caption>{esc(caption)}</caption>" if caption else ""
    rows = "".join(f"<tr><th scope=\"row\">{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in pairs)
    return f'<div class="scroll"><table class="kv">{cap}<tbody>{rows}</tbody></table></div>'


def flatten(obj: Any, prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as dotted keys, lists joined by commas: ``{"classifier": {"lr": 1e-4}}`` ->
    ``[("classifier.lr", "0.0001")]``; an empty dict or list is "-"."""
    if isinstance(obj, dict) and obj:
        return [kv for k, v in obj.items() for kv in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    if isinstance(obj, (list, tuple)):
        if obj and all(not isinstance(v, (dict, list, tuple)) for v in obj):
            return [(prefix, ", ".join(str(v) for v in obj))]
        if obj:
            return [kv for i, v in enumerate(obj) for kv in flatten(v, f"{prefix}[{i}]")]
    if obj is None or obj == {} or obj == [] or obj == ():
        return [(prefix, "-")]
    return [(prefix, str(obj))]


def _section_title(key) -> str:
    return ", ".join(human(k) for k in key)


def table_html(table: T.Table, level: int = 2, heading: bool = True) -> str:
    """A non-empty table: heading, one sortable sub-table per section, notes (callers list empty ones)."""
    out = [f'<h{level} id="{esc(table.name)}">{esc(table.title)}</h{level}>'] if heading else []
    for key, frame in T._sections(table):
        if key is not None:
            out.append(f"<h{level + 1}>{esc(_section_title(key))}</h{level + 1}>")
        out.append(frame_html(frame))
    if table.notes:
        out.append('<ul class="note">' + "".join(f"<li>{esc(n)}</li>" for n in table.notes) + "</ul>")
    return "\n".join(out)


def figure_html(fig) -> str:
    """A drawn figure with its caption (callers list skipped ones under "Not in this run")."""
    b64 = base64.b64encode(Path(fig.path_png).read_bytes()).decode("ascii")
    return (f'<h3 id="{esc(fig.name)}">{esc(fig.title)}</h3>\n'
            f'<figure><img alt="{esc(fig.title)}" src="data:image/png;base64,{b64}">'
            f'<figcaption class="note">{esc(fig.note or "")}</figcaption></figure>')


def _drawn(fig) -> bool:
    return bool(fig.path_png) and Path(fig.path_png).is_file()


def _short(title: str) -> str:
    """Navigation text: "Table 2" of "Table 2: ...", "Aggregate over data sets" of "Aggregate over data sets (...)"."""
    return title.split(":")[0] if ":" in title else title.split(" (")[0]


# ---------------------------------------------------------------- environment, substitutes, status


def environment(df: pd.DataFrame) -> dict[str, Any]:
    """Versions (every distinct value seen per package), backbones, git commits, deduplicated substitutes."""
    versions: dict[str, Counter] = {}
    for v in df["versions"]:
        for k, val in (v or {}).items():
            versions.setdefault(str(k), Counter())[str(val)] += 1
    subs: Counter = Counter()
    for lst in df["substitutes"]:
        for s in lst or []:
            if isinstance(s, dict):
                subs[(str(s.get("role")), str(s.get("paper")), str(s.get("used")))] += 1
            else:
                subs[("?", "?", str(s))] += 1
    return {
        "versions": {k: dict(c) for k, c in sorted(versions.items())},
        "backbones": dict(Counter(str(b) for b in df["backbone"].dropna())),
        "git": sorted({str(g) for g in df["git"].dropna()}),
        "substitutes": [{"role": r, "paper": p, "used": u, "records": n} for (r, p, u), n in sorted(subs.items())],
    }


def _status_frame(df: pd.DataFrame) -> pd.DataFrame:
    bad = df[df["status"] != "ok"]
    return pd.DataFrame({"cell": bad["cell_id"], "status": bad["status"],
                         "reason": bad["reason"].fillna("").astype(str).str.slice(0, 300)})


def _manifest(run_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


# ---------------------------------------------------------------- HTML


def _provenance_run(man: dict[str, Any]) -> list[str]:
    """The manifest as tables: the run's facts, its commands, its configuration (dotted keys)."""
    facts = [("command", man.get("command")), ("started", man.get("started")),
             ("finished", man.get("finished") or "not recorded (still running, or stopped)"),
             ("wall seconds", man.get("wall_seconds")), ("git commit", man.get("git")),
             ("planned cells", len(man.get("cells") or []) or None)]
    if man.get("rebuilt_from_records"):
        facts.append(("manifest", "rebuilt from the records (the original could not be read)"))
    out = ["<h3>Run</h3>", kv_html([(k, v) for k, v in facts if v not in (None, "")])]
    hist = [h for h in man.get("history") or [] if isinstance(h, dict) and h.get("command")]
    if hist:
        rows = pd.DataFrame([{"command": h.get("command"), "started": h.get("started", ""),
                              "wall seconds": h.get("wall_seconds", ""), "cells": h.get("cells", ""),
                              "skipped": h.get("skipped", ""), "failed": h.get("failed", "")} for h in hist])
        out += ["<h3>Commands that made this run directory (in order)</h3>", frame_html(rows, sortable=False)]
    if isinstance(man.get("config"), dict) and man["config"]:
        out += ["<h3>Configuration</h3>", kv_html(flatten(man["config"]))]
    return out


def _versions_frame(env: dict[str, Any], man: dict[str, Any] | None) -> pd.DataFrame:
    listed = (man or {}).get("versions") or {}
    names = sorted(set(env["versions"]) | set(listed))
    return pd.DataFrame([{"package": k,
                          "in the records (number of records)": ", ".join(f"{v} ({n})" for v, n in env["versions"].get(k, {}).items())
                          or "-", "in the manifest": listed.get(k, "-") if listed else "-"} for k in names])


def provenance_html(df: pd.DataFrame, man: dict[str, Any] | None) -> str:
    """Manifest, configuration, versions, backbones and offline substitutes, each as a readable table."""
    env = environment(df)
    out = ['<h2 id="provenance">Provenance</h2>']
    out += _provenance_run(man) if man else [
        '<p class="note">No readable manifest.json in the run directory: what follows comes from the records.</p>']
    if env["versions"] or (man or {}).get("versions"):
        out += ["<h3>Versions</h3>", frame_html(_versions_frame(env, man))]
    if env["backbones"] or env["git"]:
        rows = [("classifier backbone (records)", ", ".join(f"{b} ({n})" for b, n in env["backbones"].items()) or "-"),
                ("git commits in the records", ", ".join(env["git"]) or "-")]
        out += ["<h3>Backbone and code</h3>", kv_html(rows)]
    out.append("<h3>Offline substitutes used</h3>")
    out.append(frame_html(pd.DataFrame(env["substitutes"])) if env["substitutes"] else
               '<p class="note">None recorded.</p>')
    return "\n".join(out)


def _provenance_text(prov: dict[str, Any], limit: int = 80) -> str:
    """A pseudo sample's provenance as ``key = value; ...`` (parent text left out: it has its own column)."""
    pairs = [(k, v) for k, v in flatten({k: v for k, v in prov.items() if k != "parent_text"}) if k]
    return "; ".join(f"{k} = {v if len(v) <= limit else v[:limit] + ' …'}" for k, v in pairs) or "-"


def examples_html(div, table1) -> str | None:
    """Table 1 and a few pseudo samples per method; None when the run has neither."""
    from bench.report.figures import line_label

    out = []
    if table1 is not None and not table1.empty:
        out.append("<h3>Table 1: DiffusionCLS pseudo samples (original, masked at step t of T, generated)</h3>")
        out.append(frame_html(table1[["dataset", "label", "step", "original", "masked", "generated", "changed"]]))
    for ex in (div.examples if div is not None else []):
        out.append(f"<h3>{esc(ex['dataset'])}, {esc(human(ex['view']))}, {esc(line_label(ex['method'], ex['policy']))}"
                   f", seed {esc(ex['seed'])}</h3>")
        rows = pd.DataFrame([{"label": s["label"], "text": s["text"], "parent": s["parent"] or "NA",
                              "provenance": _provenance_text(s["provenance"])} for s in ex["samples"]])
        out.append(frame_html(rows))
    return '<h2 id="examples">Example pseudo samples</h2>\n' + "\n".join(out) if out else None


def diversity_html(div) -> str | None:
    """The diversity table (and why some measures are NA); None when nothing was measured."""
    if div is None or div.table.empty:
        return None
    out = [f'<h2 id="diversity">{esc(div.table.title)}</h2>', table_html(div.table, level=2, heading=False)]
    if div.skipped:
        out.append('<ul class="skipped">' + "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in div.skipped.items())
                   + "</ul>")
    return "\n".join(out)


def _not_in_run(tables, figs, div, table1, result) -> list[tuple[str, str]]:
    """(part, why) for every part of the report this run has no data for, each once."""
    out = [(t.title, "no records for this table in this run") for t in tables if t.empty]
    out += [(f.title, f.note or "skipped") for f in figs if not _drawn(f)]
    skipped = dict(result.get("skipped", {}))
    if div is None or div.table.empty:
        why = skipped.get("diversity") or "; ".join(v if k == "diversity" else f"{k}: {v}"
                                                    for k, v in (div.skipped if div else {}).items())
        out.append(("Diversity and label consistency", why or "no synthetic sets measured"))
    if table1 is not None and table1.empty:
        out.append(("Table 1: DiffusionCLS pseudo samples", "no diffusioncls pseudo samples with a masked text in their provenance"))
    if not (div is not None and div.examples) and (table1 is None or table1.empty):
        out.append(("Example pseudo samples", "no ok record with a readable synthetic set"))
    covered = {"diversity", "html"} | {f"figure:{f.name}" for f in figs}
    out += [(k, v) for k, v in skipped.items() if k not in covered and not k.startswith("diversity:")]
    return out


def _missing_html(missing: list[tuple[str, str]]) -> str:
    return ('<h2 id="not-in-run">Not in this run</h2>\n<ul class="skipped">'
            + "".join(f"<li><b>{esc(part)}</b>: {esc(why)}</li>" for part, why in missing) + "</ul>")


def _head(df, run_dir: Path, result, nav: list[tuple[str, str]]) -> list[str]:
    out = [f"<h1>Benchmark report: {esc(run_dir.name)}</h1>",
           "<nav>" + "".join(f'<a href="#{esc(a)}">{esc(text)}</a>' for a, text in nav) + "</nav>",
           f"<p>{len(df)} records: "
           + ", ".join(f"{esc(k)} {esc(v)}" for k, v in result.get("status_counts", {}).items())
           + ". Failed records are excluded from every statistic; unavailable cells show their reason. "
             "Click a column head to sort a table.</p>"]
    if result.get("load_errors"):
        out.append('<p class="skipped">Unreadable record files (ignored): '
                   + esc("; ".join(f"{f}: {e}" for f, e in result["load_errors"])) + "</p>")
    return out


def render_html(df, tables, figs, div, run_dir, out_dir, result, table1=None) -> str:
    run_dir = Path(run_dir)
    sections: list[tuple[str, str, str]] = [(t.name, _short(t.title), table_html(t)) for t in tables if not t.empty]
    drawn = [f for f in figs if _drawn(f)]
    if drawn:
        sections.append(("figures", "Figures", '<h2 id="figures">Figures</h2>\n'
                         + "\n".join(figure_html(f) for f in drawn)))
    for anchor, text, body in (("diversity", "Diversity", diversity_html(div)),
                               ("examples", "Examples", examples_html(div, table1))):
        if body:
            sections.append((anchor, text, body))
    st = _status_frame(df)
    if len(st):
        sections.append(("not-ok", "Cells not ok", '<h2 id="not-ok">Cells that are not ok</h2>\n' + frame_html(st)))
    sections.append(("provenance", "Provenance", provenance_html(df, _manifest(run_dir))))
    missing = _not_in_run(tables, figs, div, table1, result)
    if missing:
        sections.append(("not-in-run", "Not in this run", _missing_html(missing)))
    parts = _head(df, run_dir, result, [(a, t) for a, t, _ in sections]) + [body for _, _, body in sections]
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Report {esc(run_dir.name)}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(parts) + f"\n<script>{SORT_JS}</script>\n</body></html>\n")


# ---------------------------------------------------------------- Markdown


def render_markdown(df, tables, figs, div, run_dir, out_dir, result, table1=None) -> str:
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    env = environment(df)
    lines = [f"# Benchmark report: {run_dir.name}", "",
             f"{len(df)} records: " + ", ".join(f"{k} {v}" for k, v in result.get("status_counts", {}).items())
             + ". Failed records are excluded from every statistic.", ""]
    if result.get("load_errors"):
        lines += ["Unreadable record files (ignored): " + "; ".join(f"{f}: {e}" for f, e in result["load_errors"]), ""]
    for t in tables:
        lines.append(T.to_markdown(t))
    lines += ["## Figures", ""]
    for f in figs:
        if f.path_png:
            rel = Path(f.path_png).relative_to(out_dir) if Path(f.path_png).is_relative_to(out_dir) else f.path_png
            lines += [f"### {f.title}", "", f"![{f.title}]({rel})", "", f.note or "", ""]
        else:
            lines += [f"### {f.title}", "", f"_{f.note}_", ""]
    if div is not None:
        lines.append(T.to_markdown(div.table))
    if table1 is not None and not table1.empty:
        lines.append((Path(out_dir) / "table1.md").read_text(encoding="utf-8"))
    lm = result.get("tables", {}).get("table1_lm")
    if lm and Path(lm).is_file():
        lines.append(Path(lm).read_text(encoding="utf-8"))
    lines += ["## Environment", ""]
    for k, c in env["versions"].items():
        lines.append(f"- {k}: " + ", ".join(f"{v} ({n} records)" for v, n in c.items()))
    lines += ["", "Backbone(s): " + (", ".join(f"{b} ({n})" for b, n in env["backbones"].items()) or "NA"), "",
              "### Offline substitutes used", ""]
    if env["substitutes"]:
        lines.append(T._md_grid(pd.DataFrame(env["substitutes"])))
    else:
        lines.append("None recorded.")
    lines.append("")
    if result.get("skipped"):
        lines += ["### Parts skipped", ""] + [f"- {k}: {v}" for k, v in result["skipped"].items()] + [""]
    return "\n".join(lines)
