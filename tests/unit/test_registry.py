import subprocess
import sys

import pytest

from bench.api.registry import Registry, UnknownName
from methods import METHODS


def test_unknown_name_suggests_close_match():
    with pytest.raises(UnknownName, match="did you mean 'eda'"):
        METHODS.get("edaa")


def test_resolve_all_and_list():
    everything = METHODS.names()
    variants = [e.name for e in METHODS if "variant" in e.tags]
    assert METHODS.resolve("all") == [n for n in everything if n not in variants]
    assert METHODS.resolve("none,all")[0] == "none"
    r = Registry("thing")
    r.register("a", "x:a")
    r.register("a-v", "x:a", tags=("variant", "ablations"))
    assert r.resolve("all") == ["a"]
    assert r.resolve("a,ablations") == ["a", "a-v"]
    assert METHODS.resolve("none, eda") == ["none", "eda"]
    with pytest.raises(UnknownName):
        METHODS.resolve("none,nope")


def test_double_registration_is_an_error():
    r = Registry("thing")
    r.register("a", "x:y")
    with pytest.raises(ValueError):
        r.register("a", "x:z")


def test_every_registered_method_loads_and_declares_metadata():
    for entry in METHODS:
        cls = entry.load()
        assert cls.meta.version
        assert cls.meta.policies
        for key in entry.params:
            assert key in cls.default_params(), f"{entry.name}: registry param {key} unknown to {cls.__name__}"


def test_listing_imports_no_torch():
    code = ("import sys; from bench.cli import main; main(['ls', 'methods']); main(['ls', 'datasets']); "
            "main(['ls', 'presets']); main(['run', '--help']) if False else None; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")


def test_parameterised_name_is_its_base_with_the_bracketed_parameters():
    e = METHODS.get("diffusioncls[step_group=3]")
    assert e.base == "diffusioncls" and e.overrides == {"step_group": 3}
    assert e.params["step_group"] == 3 and "variant" in e.tags
    assert e.load() is METHODS.get("diffusioncls").load()
    e2 = METHODS.get("diffusioncls-wo-lap[lam=0;decoding=iterative]")
    assert e2.base == "diffusioncls-wo-lap"
    assert e2.params == {"label_prompt": False, "lam": 0, "decoding": "iterative"}
    assert METHODS.resolve("none,diffusioncls[step_group=2]") == ["none", "diffusioncls[step_group=2]"]
    with pytest.raises(UnknownName, match="did you mean"):
        METHODS.get("diffusionclss[step_group=3]")
    with pytest.raises(UnknownName, match="KEY=VALUE"):
        METHODS.get("diffusioncls[step_group]")


def test_sweep_names_keep_the_default_value_plain_and_check_the_parameter():
    from bench.cli import sweep_names

    assert sweep_names("diffusioncls.step_group=1,4,8") == [
        "diffusioncls[step_group=1]", "diffusioncls", "diffusioncls[step_group=8]"]
    assert sweep_names("diffusioncls.decoding=greedy,iterative") == ["diffusioncls", "diffusioncls[decoding=iterative]"]
    with pytest.raises(ValueError, match="no parameter 'stepgroup'"):
        sweep_names("diffusioncls.stepgroup=1")
    with pytest.raises(ValueError, match="expected METHOD.KEY"):
        sweep_names("diffusioncls=1")


def test_sweep_dry_run_plans_one_cell_per_value(capsys):
    from bench.cli import main

    assert main(["run", "--sweep", "diffusioncls.step_group=1,4", "--seeds", "0", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [x.split()[0] for x in lines[:2]] == ["airline__5pct__diffusioncls[step_group=1]__G-E__s0",
                                                 "airline__5pct__diffusioncls__G-E__s0"]


def test_classifier_flags_override_the_preset():
    from bench.cli import build_parser, config_from_args

    args = build_parser().parse_args(["run", "--patience", "100", "--max-length", "64", "--dry-run"])
    cfg = config_from_args(args)
    assert cfg.classifier["patience"] == 100 and cfg.classifier["max_length"] == 64
    assert config_from_args(build_parser().parse_args(["run", "--dry-run"])).classifier["patience"] == 4


@pytest.mark.parametrize("name", ["smoke", "quick", "fewshot", "paper"])
def test_every_preset_names_only_registered_methods(name):
    """A typo in a preset's method list would only surface when its grid starts."""
    from bench.config import PRESETS

    resolved = METHODS.resolve(PRESETS[name].methods)
    assert resolved and all(m in METHODS for m in resolved)


def test_fewshot_preset_runs_table3s_methods():
    from bench.config import PRESETS

    methods = set(METHODS.resolve(PRESETS["fewshot"].methods))
    assert {"none", "eda", "aeda", "backtranslation", "nlpaug-glove", "genius-f", "diffusioncls",
            "diffusioncls-ref", "diffusioncls-wo-nrt"} <= methods
