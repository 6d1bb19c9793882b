"""The reporting layer: records -> one long DataFrame -> tables, figures, diversity, one HTML report.

``build_report(run_dir)`` is what ``python -m bench report DIR`` calls. Reports only read records
(``RUN/records/*.json``) and the synthetic JSONL files the records point to; everything is written to
``RUN/report/`` unless ``out_dir`` says otherwise.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_report", "copy_run_files"]

RUN_FILES = ("records", "predictions", "manifest.json")


def copy_run_files(run_dir: str | Path, out_dir: str | Path) -> list[str]:
    """Copy a run's records, predictions and manifest, and the pseudo-sample files its records name,
    beside its report.

    A reference report is only reproducible (and a grid only resumable in a later session, whose run
    directories are gone) if these travel with it: Table 1, the diversity table and Figure 7 read the
    pseudo samples. Each synthetic file keeps its path relative to the run (``cache/synthetic/...``),
    so the copied records resolve inside ``out_dir``. Existing copies of records and predictions are
    replaced, so a report of a grid that grew since holds all of its records. The predictions and
    pseudo samples of a data set that is not redistributable (its card says so) are withheld: they
    carry its test labels and texts; the list returned names what was withheld.
    """
    import shutil

    run_dir, out_dir = Path(run_dir).resolve(), Path(out_dir).resolve()
    if run_dir == out_dir:
        return []
    datasets, synthetic = _record_files(run_dir)
    from bench.data import withheld_datasets

    withheld = withheld_datasets(set(datasets.values()))
    keep = {cell for cell, ds in datasets.items() if ds not in withheld}
    copied = []
    for name in RUN_FILES:
        src, dst = run_dir / name, out_dir / name
        if not src.exists():
            continue
        if dst.is_dir():
            shutil.rmtree(dst)
        if name == "predictions":
            shutil.copytree(src, dst, ignore=lambda d, names: [n for n in names if _cell_of(n) in datasets
                                                                and _cell_of(n) not in keep])
        elif src.is_dir():
            shutil.copytree(src, dst)
        else:
            shutil.copy2(src, dst)
        copied.append(name)
    n = 0
    for cell, rel in synthetic.items():
        if cell in keep:
            _copy_compressed(run_dir / rel, out_dir / rel)
            n += 1
    if n:
        copied.append(f"{n} synthetic files")
    copied += [f"withheld predictions and pseudo samples: {why}" for why in withheld.values()]
    return copied


def _cell_of(file_name: str) -> str:
    """The cell id a predictions file (``<cell_id>.json``) belongs to."""
    return file_name.removesuffix(".json")


def _record_files(run_dir: Path) -> tuple[dict[str, str], dict[str, str]]:
    """({cell id: data set}, {cell id: synthetic path}) of the run's readable records; a synthetic path
    is kept when it is relative and the file exists."""
    from bench.records import RecordError, read_record
    from bench.report.load import compressed_or_plain

    datasets, synthetic = {}, {}
    for rec_file in sorted((run_dir / "records").glob("*.json")):
        try:
            rec = read_record(rec_file)
        except RecordError:
            continue  # the report lists unreadable records; nothing to copy from them
        datasets[rec.cell_id] = rec.dataset
        rel = rec.synthetic_path
        if rel and not Path(rel).is_absolute() and compressed_or_plain(run_dir / rel).is_file():
            synthetic[rec.cell_id] = rel
    return datasets, synthetic


def _copy_compressed(src: Path, dst: Path) -> None:
    """``dst`` + ``.gz``, gzip-compressed without a timestamp (so an unchanged file commits unchanged),
    and no plain copy beside it. Pseudo samples are most of a reference report's bytes (a Chinese
    grid's run to tens of MB), and compress several-fold; the report's readers open either form."""
    import gzip
    import io

    from bench.api.io import atomic_write_bytes
    from bench.report.load import compressed_or_plain

    src = compressed_or_plain(src)
    data = src.read_bytes()
    if src.suffix != ".gz":
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as fout:
            fout.write(data)
        data = buf.getvalue()
    atomic_write_bytes(dst.with_name(dst.name + ".gz"), data)  # whole or absent, as every other cache file
    dst.unlink(missing_ok=True)


def _write_results(run_dir: Path, out: Path, metrics: Sequence[str], result: dict[str, Any]) -> list[str]:
    """The results frame as CSV (and Parquet when pyarrow is installed); extra metrics from predictions."""
    from bench import results

    frame = results.load(run_dir)
    files = []
    for m in metrics:
        frame = results.add_metric(frame, run_dir, m)
    if metrics:
        keys = ["dataset", "view", "method", "policy"]
        cols = [f"metric.{m}" for m in metrics]
        from bench.report.tables import _md_grid

        summary = frame[frame["status"] == "ok"].groupby(keys)[cols].agg(["mean", "std", "count"]).round(4)
        summary.columns = [f"{a} {b}" for a, b in summary.columns]
        (out / "metrics.md").write_text("## Metrics from the saved test predictions\n\n"
                                        + _md_grid(summary.reset_index()) + "\n", encoding="utf-8")
        files.append("metrics.md")
    frame.to_csv(out / "records.csv", index=False)
    files.append("records.csv")
    try:
        frame.to_parquet(out / "records.parquet", index=False)
        files.append("records.parquet")
    except ImportError as err:  # pyarrow is the [report] extra
        result["skipped"]["records.parquet"] = f"no Parquet engine ({err}); pip install 'lowres-aug-bench[report]'"
    return files


def _without_withheld(df, result: dict[str, Any]):
    """The records whose texts a report may quote: those of a data set that is not redistributable are
    dropped (its scores stay in the tables), and ``result["skipped"]`` says why."""
    from bench.data import withheld_datasets

    withheld = withheld_datasets(df["dataset"].dropna().unique()) if "dataset" in df.columns else {}
    for ds, why in withheld.items():
        result["skipped"][f"examples:{ds}"] = f"example texts withheld: {why}"
    return df[~df["dataset"].isin(withheld)] if withheld else df


def build_report(
    run_dir: str | Path,
    out_dir: str | Path | None = None,
    *,
    n_boot: int = 2000,
    seed: int = 0,
    figures: bool = True,
    diversity: bool = True,
    html: bool = True,
    embed: Callable[[Sequence[str]], Any] | None = None,
    classifier: Callable[[Sequence[str]], Sequence[str]] | None = None,
    parents: Mapping[str, str] | None = None,
    train_data: Callable[[str], tuple[list[str], list[str], dict[str, str]] | None] | str | None = "auto",
    metrics: Sequence[str] = (),
) -> dict[str, Any]:
    """Write the report of one run directory and return what was written.

    Writes to ``out_dir`` (default ``RUN/report/``):

    - ``table2.{md,csv,tex}``, ``table9.*``, ``table3.*`` (accuracy, the paper's), ``table3_f1.*``
      (macro-F1), ``table4.*``, ``aggregate.*`` (a table with no
      records renders a one-line note; its CSV is empty); ``table1.{md,csv}`` (DiffusionCLS examples:
      original, masked, generated); ``table1_lm.{md,csv}`` and ``table1_lm_acceptance.csv`` (the LM
      baselines' acceptance rates and pseudo samples);
    - ``records.csv`` and ``records.parquet``: :func:`bench.results.load` (one row per cell, every record
      field flattened), with a ``metric.<name>`` column per ``metrics`` entry computed from the saved test
      predictions, and ``metrics.md`` summarising those;
    - ``figures/*.png`` and ``*.pdf`` (Figure 2 schedule, 5, 6, 7, diversity-consistency map);
    - ``diversity.{md,csv}``; ``report.md`` (all Markdown pieces) and ``report.html`` (self-contained).

    ``embed`` (texts -> 2-D array) replaces the TF-IDF+SVD representation of Figure 7; ``classifier``
    (texts -> labels) replaces the reference classifier of label consistency; ``parents`` (id -> text)
    supplies parent texts for edit distances; ``train_data(dataset) -> (texts, labels, {id: text})`` supplies
    each data set's full train split (``"auto"``: ``bench.data.load_dataset``; ``None``: do not load).
    Nothing fails the whole report: a part that cannot be drawn is skipped and listed in ``skipped``.

    Returns ``{"out_dir", "files" (names relative to out_dir), "tables" {name: md path}, "figures"
    {name: png path}, "skipped" {part: reason}, "n_records", "status_counts", "load_errors"}``.
    """
    from bench.report import tables as T
    from bench.report.load import load_records

    run_dir = Path(run_dir)
    if not (run_dir / "records").is_dir():
        raise FileNotFoundError(f"{run_dir} has no records/ directory: not a run directory")
    out = Path(out_dir) if out_dir is not None else run_dir / "report"
    out.mkdir(parents=True, exist_ok=True)

    df = load_records(run_dir)
    result: dict[str, Any] = {
        "out_dir": str(out), "files": [], "tables": {}, "figures": {}, "skipped": {},
        "n_records": int(len(df)), "status_counts": {str(k): int(v) for k, v in df["status"].value_counts().items()},
        "load_errors": list(df.attrs.get("load_errors", [])),
    }
    result["files"] += _write_results(run_dir, out, metrics, result)

    tables = T.all_tables(df, n_boot=n_boot, seed=seed)
    for t in tables:
        result["files"] += T.write_table(t, out)
        result["tables"][t.name] = str(out / f"{t.name}.md")

    from bench.report.diversity import TrainData

    td = TrainData(train_data, run_dir)
    parents_for = parents if parents is not None else td.parents

    shareable = _without_withheld(df, result)
    div = None
    if diversity:
        try:
            from bench.report import diversity as D

            div = D.diversity_report(df, run_dir, out, classifier=classifier, parents=parents, train_data=td,
                                     seed=seed)
            div.examples = [e for e in div.examples if e["dataset"] in set(shareable["dataset"])]
            result["files"] += div.files
            for k, v in div.skipped.items():
                result["skipped"][f"diversity:{k}"] = v
        except Exception as e:
            result["skipped"]["diversity"] = f"{type(e).__name__}: {e}"
            result["diversity_traceback"] = traceback.format_exc()

    parents_of = parents_for if callable(parents_for) else (lambda ds: parents_for)
    t1 = None
    try:
        from bench.report.examples import table1_examples, write_table1

        t1 = table1_examples(shareable, parents=parents_of)
        result["files"] += write_table1(t1, out)
        result["tables"]["table1"] = str(out / "table1.md")
    except Exception as e:
        result["skipped"]["table1"] = f"{type(e).__name__}: {e}"
    try:
        from bench.report.examples import lm_acceptance, lm_examples, write_table1_lm

        lm, accepted = lm_examples(shareable, parents=parents_of), lm_acceptance(df)
        result["files"] += write_table1_lm(accepted, lm, out)
        if not accepted.empty:  # report.md shows it only for a run with LM baselines
            result["tables"]["table1_lm"] = str(out / "table1_lm.md")
    except Exception as e:
        result["skipped"]["table1_lm"] = f"{type(e).__name__}: {e}"

    figs: list = []
    if figures:
        try:
            from bench.report import figures as F

            figs = F.all_figures(df, run_dir, out / "figures", embed=embed, parents=parents_for, seed=seed)
            for f in figs:
                if f.path_png:
                    result["figures"][f.name] = f.path_png
                    result["files"] += [str(Path(p).relative_to(out)) for p in (f.path_png, f.path_pdf) if p]
                else:
                    result["skipped"][f"figure:{f.name}"] = f.note
        except Exception as e:  # a broken figure must not cost the tables
            result["skipped"]["figures"] = f"{type(e).__name__}: {e}"
            result["figures_traceback"] = traceback.format_exc()
    if div is not None and div.figure is not None:
        figs.append(div.figure)
        if div.figure.path_png:
            result["figures"][div.figure.name] = div.figure.path_png
        else:
            result["skipped"][f"figure:{div.figure.name}"] = div.figure.note

    try:
        from bench.report import html as H

        md = H.render_markdown(df, tables, figs, div, run_dir, out, result, table1=t1)
        (out / "report.md").write_text(md, encoding="utf-8")
        result["files"].append("report.md")
        if html:
            (out / "report.html").write_text(H.render_html(df, tables, figs, div, run_dir, out, result, table1=t1),
                                             encoding="utf-8")
            result["files"].append("report.html")
    except Exception as e:
        result["skipped"]["html"] = f"{type(e).__name__}: {e}"
        result["html_traceback"] = traceback.format_exc()
    return result
