"""Rule-based methods: EDA, AEDA, resample (behaviour beyond the contract)."""

from bench.api import Example, FitContext
from methods.aeda import AEDA, PUNCT
from methods.eda import EDA
from methods.resample import Resample

EN = Example("a", "the flight attendant was very rude and the plane was late", "negative")
ZH = Example("z", "今天天气很好，我们去公园散步吧", "happy")


def _fit(aug, ex, lang):
    return aug.fit([ex], FitContext(lang, (ex.label,), 0))


def test_aeda_only_inserts_punctuation():
    aug = _fit(AEDA(seed=1), EN, "en")
    for s in aug.augment([EN], 5).synthetic:
        toks = s.text.split()
        assert [t for t in toks if t not in PUNCT["en"]] == EN.text.split()
        n = len(EN.text.split())
        assert 1 <= s.provenance["inserted"] <= max(1, n // 3)


def test_aeda_chinese_uses_full_width_marks():
    aug = _fit(AEDA(seed=1), ZH, "zh")
    for s in aug.augment([ZH], 3).synthetic:
        extra = "".join(c for c in s.text if c not in ZH.text or c in "。；？：！，")
        assert extra and all(c in PUNCT["zh"] for c in extra)
        assert " " not in s.text


def test_eda_synonym_replacement_uses_wordnet():
    aug = _fit(EDA(seed=0), EN, "en")
    import random

    out = aug.synonym_replacement(EN.text.split(), 2, random.Random(0))
    changed = [(a, b) for a, b in zip(EN.text.split(), out) if a != b]
    assert 1 <= len(changed) <= 2
    from methods.common.lexicons import english_synonyms

    for a, b in changed:
        assert b in english_synonyms(a)


def test_eda_chinese_synonyms_come_from_cilin():
    from methods.common.lexicons import chinese_synonyms

    assert "天气" in chinese_synonyms("气象") or chinese_synonyms("公园")
    aug = _fit(EDA(seed=2), ZH, "zh")
    res = aug.augment([ZH], 4)
    assert len(res.synthetic) == 4
    assert all(" " not in s.text for s in res.synthetic)
    assert {s.provenance["op"] for s in res.synthetic} == {"sr", "ri", "rs", "rd"}


def test_eda_operations_are_balanced_and_deletion_keeps_a_word():
    aug = _fit(EDA(seed=3), EN, "en")
    ops = [s.provenance["op"] for s in aug.augment([EN], 8).synthetic]
    assert sorted(ops) == sorted(["sr", "ri", "rs", "rd"] * 2)
    import random

    assert EDA.random_deletion(["one"], 0.9, random.Random(0)) == ["one"]
    assert len(EDA.random_deletion(["a", "b", "c"], 1.0, random.Random(0))) == 1


def test_resample_copies_exactly():
    res = Resample(seed=0).augment([EN], 3)
    assert [s.text for s in res.synthetic] == [EN.text] * 3
    assert res.stats["identical_to_parent"] == 3
