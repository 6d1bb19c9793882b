import pytest

from bench.api import Example, derive
from bench.runner import CellSpec, plan_cells, policy_counts


def _ex(labels):
    return [Example(str(i), f"t{i}", lab) for i, lab in enumerate(labels)]


def test_ge_policy_is_n_per_original():
    assert policy_counts(_ex("aab"), "G/E", 4, 0) == [4, 4, 4]
    assert policy_counts(_ex("aab"), "-", 4, 0) == [0, 0, 0]


def test_bd_policy_fills_each_class_to_the_largest():
    ex = _ex("aaaaaaabbc")
    counts = policy_counts(ex, "B/D", 4, 0)
    by = {}
    for e, c in zip(ex, counts):
        by[e.label] = by.get(e.label, 0) + c + 1
    assert by == {"a": 7, "b": 7, "c": 7}
    assert sorted(counts[7:9]) == [2, 3]  # spread over the class's originals


def test_unknown_policy():
    with pytest.raises(ValueError, match="unknown policy"):
        policy_counts(_ex("ab"), "X/Y", 1, 0)


def test_derived_seeds_are_stable_and_independent():
    assert derive(0, "view", "airline") == derive(0, "view", "airline")
    assert derive(0, "view", "airline") != derive(1, "view", "airline")
    assert derive(0, "augment", "eda") != derive(0, "augment", "aeda")


def _cfg(**kw):
    from bench.config import RunConfig

    return RunConfig.from_preset("quick", datasets=("airline",), views=("5pct",), **kw)


def test_plan_puts_none_first_and_respects_method_policies():
    cells = plan_cells(_cfg(methods=("eda", "resample", "none"), policies=("G/E", "B/D"), seeds=(0, 1)))
    assert cells[0] == CellSpec("airline", "5pct", "none", "-", 0)
    assert CellSpec("airline", "5pct", "resample", "G/E", 0) not in cells
    assert CellSpec("airline", "5pct", "resample", "B/D", 1) in cells
    assert len(cells) == 2 * (1 + 1 + 2)
    assert cells[0].cell_id == "airline__5pct__none__-__s0"


def test_method_without_a_requested_policy_runs_its_own():
    cells = plan_cells(_cfg(methods=("resample", "eda"), policies=("G/E",), seeds=(0,)))
    assert [(c.method, c.policy) for c in cells] == [("resample", "B/D"), ("eda", "G/E")]


def test_min_steps_extends_the_budget_for_small_sets(tiny_bert_dir):
    from bench.classifier import ClassifierConfig, train_classifier

    train = [Example(str(i), f"the flight was {'good' if i % 2 else 'bad'} {i}", "pos" if i % 2 else "neg")
             for i in range(16)]
    cfg = ClassifierConfig(backbone=str(tiny_bert_dir), epochs=1, batch_size=8, min_steps=6, patience=99,
                           evals=3, max_length=16)
    res = train_classifier(train, train[:4], ["neg", "pos"], cfg, seed=0)
    assert res.steps == 6 and [h["step"] for h in res.history] == [2, 4, 6]


def test_parameterised_cells_share_the_base_seed_and_bracketed_params_win(tmp_path):
    from bench.config import RunConfig
    from bench.runner import make_augmenter

    s = RunConfig.from_preset("quick", out_dir=str(tmp_path), cache_dir=str(tmp_path / "c"),
                              method_params={"diffusioncls": {"step_group": 2, "lam": 0.25}})
    plain = make_augmenter(CellSpec("airline", "5pct", "diffusioncls", "G/E", 0), s)
    swept = make_augmenter(CellSpec("airline", "5pct", "diffusioncls[step_group=7]", "G/E", 0), s)
    assert plain.params["step_group"] == 2 and swept.params["step_group"] == 7
    assert swept.params["lam"] == 0.25  # --param for the base applies to its parameterised names
    assert swept.seed == plain.seed  # one diffusion LM and one set of mask draws for the whole sweep
    wo_nrt = make_augmenter(CellSpec("airline", "5pct", "diffusioncls-wo-nrt", "G/E", 0), s)
    assert wo_nrt.seed == plain.seed and wo_nrt.params["nrt_weight"] == 0.0  # an ablation is paired too
    g = make_augmenter(CellSpec("airline", "5pct", "genius", "G/E", 0), s)
    assert make_augmenter(CellSpec("airline", "5pct", "genius-f", "G/E", 0), s).seed == g.seed
    assert make_augmenter(CellSpec("airline", "5pct", "eda", "G/E", 0), s).seed != plain.seed
    assert make_augmenter(CellSpec("airline", "5pct", "diffusioncls", "G/E", 1), s).seed != plain.seed


def test_an_unreachable_hub_is_one_clear_error(monkeypatch):
    import bench.api.hub as C
    from methods.common.lm import ModelNotAvailable, locate

    monkeypatch.setattr(C, "_HUB_REACHABLE", {})
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "HF_HUB_OFFLINE" in C.hub_offline_reason()
    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # discard port: nothing listens
    assert "127.0.0.1" in C.hub_offline_reason() and "cannot be reached" in C.hub_offline_reason()
    with pytest.raises(ModelNotAvailable, match="cannot be reached"):
        locate("no-such-org/no-such-model")
    with pytest.raises(ModelNotAvailable, match="cannot be reached"):
        C.locate("no-such-org/no-such-model")


def test_a_methods_status_lines_reach_the_progress_bar_in_its_cells_stage(tmp_path):
    """Training in fit and sampling in augment both report through FitContext.progress."""
    from bench import progress
    from bench.config import RunConfig
    from bench.runner import open_cell

    cfg = RunConfig.from_preset("quick", out_dir=str(tmp_path), cache_dir=str(tmp_path / "c"))
    events = []
    progress.set_sink(events.append)
    progress.set_cell("airline__5pct__lambada__G-E__s0")
    try:
        say = open_cell(CellSpec("airline", "5pct", "lambada", "G/E", 0), cfg).fit_context().progress
        progress.stage("fit")
        say("lora epoch 1 step 10 loss 3.2")
        progress.stage("augment")
        say("sampled 'negative' 120/636")
    finally:
        progress.set_sink(None)
        progress.set_cell(None)
    assert [e.text() for e in events if e.detail] == ["fit: lora epoch 1 step 10 loss 3.2",
                                                      "augment: sampled 'negative' 120/636"]
