import importlib.util
import json
import pickle
from pathlib import Path

import pytest

from bench import data as D
from bench.api import Example
from tests.helpers import sentences, write_csv

SHARED_SMP = Path(__file__).resolve().parents[3] / "shared" / "data" / "smp2020-ewect"


def test_cards_list_without_loading():
    cards = D.load_cards()
    assert {"airline", "inews", "rt", "smp2020-ewect"} <= set(cards)
    assert D.default_dataset() == "airline"
    for c in cards.values():
        assert c.language in ("en", "zh") and c.labels and c.licence and c.citation


def test_airline_split_is_fixed_stratified_and_disjoint():
    s = D.load_dataset("airline")
    ids = [set(e.id for e in part) for part in (s.train, s.dev, s.test)]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])
    texts = [e.text.lower() for e in s.train + s.dev + s.test]
    assert len(texts) == len(set(" ".join(t.split()) for t in texts)), "duplicate texts across splits"
    n = len(s.train) + len(s.dev) + len(s.test)
    assert abs(len(s.test) / n - 0.2) < 0.01
    tr, te = D.label_counts(s.train), D.label_counts(s.test)
    for lab in tr:
        assert abs(tr[lab] / len(s.train) - te[lab] / len(s.test)) < 0.01
    again = D.load_dataset("airline")
    assert [e.id for e in again.test] == [e.id for e in s.test]


def test_views_are_nested_stratified_and_seeded():
    s = D.load_dataset("airline")
    v5 = D.make_view(s.train, D.ViewSpec(fraction=0.05), seed=3)
    v20 = D.make_view(s.train, D.ViewSpec(fraction=0.20), seed=3)
    assert {e.id for e in v5} <= {e.id for e in v20}
    assert abs(len(v5) - 0.05 * len(s.train)) <= len(D.label_counts(s.train))
    other = D.make_view(s.train, D.ViewSpec(fraction=0.05), seed=4)
    assert {e.id for e in v5} != {e.id for e in other}
    k5 = D.make_view(s.train, D.ViewSpec(shots=5), seed=3)
    k10 = D.make_view(s.train, D.ViewSpec(shots=10), seed=3)
    assert set(D.label_counts(k5).values()) == {5}
    assert {e.id for e in k5} <= {e.id for e in k10}


def test_view_names_round_trip():
    for name in ("5pct", "100pct", "2.5pct", "10shot"):
        assert D.ViewSpec.parse(name).name == name


def test_cap_is_stratified_and_fixed():
    s = D.load_dataset("airline")
    a, b = D.cap(s.dev, 300, "dev"), D.cap(s.dev, 300, "dev")
    assert [e.id for e in a] == [e.id for e in b]
    assert abs(len(a) - 300) <= 3


def test_inews_and_rt_load():
    z = D.load_dataset("inews")
    assert (len(z.train), len(z.dev), len(z.test)) == (5355, 999, 999)
    assert set(D.label_counts(z.train)) == {"positive", "neutral", "negative"}
    rt = D.load_dataset("rt")
    assert set(D.label_counts(rt.train).values()) == {len(rt.train) // 2}


@pytest.mark.skipif(not SHARED_SMP.exists(), reason="shared SMP2020-EWECT data not present")
def test_smp2020_loader_on_shared_data():
    s = D.load_dataset("smp2020-ewect", {"smp2020-ewect": str(SHARED_SMP)})
    assert (len(s.train), len(s.dev), len(s.test)) == (8606, 2000, 3000)
    assert D.label_counts(s.train)["happy"] == 4423


def test_smp2020_needs_a_directory(monkeypatch, tmp_path):
    monkeypatch.delenv("SMP2020_EWECT_DIR", raising=False)
    with pytest.raises(D.DataError, match="needs its data directory"):
        D.load_dataset("smp2020-ewect")
    with pytest.raises(D.DataError, match="missing file .*virus_train.txt"):
        D.load_dataset("smp2020-ewect", {"smp2020-ewect": str(tmp_path)})


def _smp_dir(tmp_path, train, dev=None, test=None):
    default = [{"id": i, "content": f"text {i}", "label": lab} for i, lab in
               enumerate(["happy", "neutral", "angry", "sad", "fear", "surprise"])]
    for name, items in (("virus_train.txt", train), ("virus_eval_labeled.txt", dev or default),
                        ("virus_test_labeled.txt", test or default)):
        (tmp_path / name).write_text(json.dumps(items, ensure_ascii=False), encoding="utf-8")
    return {"smp2020-ewect": str(tmp_path)}


@pytest.mark.parametrize("bad, message", [
    ({"id": 1, "content": "", "label": "happy"}, "empty text"),
    ({"id": 1, "content": None, "label": "happy"}, "non-text"),
    ({"id": 1, "content": 42, "label": "happy"}, "non-text"),
    ({"id": 1, "content": "ok", "label": None}, "no label"),
    ({"id": 1, "content": "ok", "label": "bored"}, "unknown label 'bored'"),
])
def test_bad_rows_are_named(tmp_path, bad, message):
    good = [{"id": 0, "content": "fine", "label": "happy"}]
    with pytest.raises(D.DataError, match=message) as err:
        D.load_dataset("smp2020-ewect", _smp_dir(tmp_path, good + [bad]))
    assert "item 2" in str(err.value) and "virus_train.txt" in str(err.value)  # 1-based: the second object


def test_label_sets_must_agree_between_splits(tmp_path):
    train = [{"id": 0, "content": "a", "label": "happy"}]
    with pytest.raises(D.DataError, match="label sets differ"):
        D.load_dataset("smp2020-ewect", _smp_dir(tmp_path, train))


def test_empty_and_missing_user_files(tmp_path):
    with pytest.raises(D.DataError, match="does not exist"):
        D.load_dataset(f"csv:{tmp_path / 'nope.csv'}")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(D.DataError, match="is empty"):
        D.load_dataset(f"csv:{empty}")


def test_user_csv_with_named_columns(tmp_path):
    rows = sentences(10)
    p = write_csv(tmp_path / "d.csv", rows, header=("review", "stars"))
    with pytest.raises(D.DataError, match="no column 'text'"):
        D.load_dataset(f"csv:{p}")
    s = D.load_dataset(f"csv:{p}:review:stars")
    assert len(s.train) + len(s.dev) + len(s.test) == 30
    assert s.card.language == "en"


def test_class_too_small_for_a_split(tmp_path):
    rows = sentences(10) + [("a lonely sentence of its own", "sarcastic")]
    p = write_csv(tmp_path / "d.csv", rows)
    with pytest.raises(D.DataError, match="class 'sarcastic' has 1 example"):
        D.load_dataset(f"csv:{p}")


def test_view_larger_than_class_is_an_error():
    train = [Example(str(i), f"t{i}", "a" if i < 8 else "b") for i in range(10)]
    with pytest.raises(D.DataError, match="class 'b' has 2 train example"):
        D.make_view(train, D.ViewSpec(shots=5), 0)


def test_unsafe_pickle_is_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    p = tmp_path / "x.pkl"
    p.write_bytes(pickle.dumps(([Evil()], [], [])))
    with pytest.raises(D.DataError, match="refusing to unpickle"):
        D.safe_pickle_load(p)


def test_datasets_folder_does_not_shadow_huggingface_datasets():
    """datasets/ holds cards only; it must never be an importable regular package."""
    root = Path(D.__file__).resolve().parent.parent
    assert not (root / "datasets" / "__init__.py").exists()
    spec = importlib.util.find_spec("datasets")
    if spec is not None and spec.origin is None:  # a namespace package: our folder, no HF datasets installed
        from transformers.utils import is_datasets_available

        assert not is_datasets_available(), "transformers believes our datasets/ folder is HF datasets"
