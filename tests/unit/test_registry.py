import subprocess
import sys

import pytest

from bench.registry import Registry, UnknownName
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
            assert key in cls.default_params, f"{entry.name}: registry param {key} unknown to {cls.__name__}"


def test_listing_imports_no_torch():
    code = ("import sys; from bench.cli import main; main(['ls', 'methods']); main(['ls', 'datasets']); "
            "main(['ls', 'presets']); main(['run', '--help']) if False else None; "
            "assert 'torch' not in sys.modules, 'torch imported'; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("ok")
