"""The layers point one way: bench.api (bottom) <- methods <- the harness (bench.*) <- reports.

Checked on the source (every import statement, function-level ones included), so a lazy import
that crosses a layer is caught as well as a top-level one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _imports(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append(node.module)
    return out


def _modules(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


def _ours(name: str) -> bool:
    return name == "bench" or name.startswith(("bench.", "methods"))


def _package_of(path: Path) -> str:
    """methods/diffusioncls/generate.py -> methods.diffusioncls; methods/eda.py -> methods.eda."""
    rel = path.relative_to(ROOT).with_suffix("")
    parts = rel.parts
    return ".".join(parts[:2]) if len(parts) > 2 else ".".join(parts)


def test_the_bottom_layer_imports_nothing_above_it():
    bad = [(p.relative_to(ROOT), m) for p in _modules("bench/api") for m in _imports(p)
           if _ours(m) and not m.startswith("bench.api")]
    assert not bad, f"bench/api must import only bench.api: {bad}"


def test_methods_import_only_the_bottom_layer_and_never_each_other():
    bad = []
    for p in _modules("methods"):
        own = _package_of(p)
        for m in _imports(p):
            if not _ours(m):
                continue
            if m.startswith("bench"):
                ok = m.startswith("bench.api")
            elif p.parent.name == "common" or p.name == "__init__.py" and p.parent.name == "methods":
                ok = m.startswith("methods.common")
            else:  # a method module: its own package and the shared toolkits
                ok = m.startswith(("methods.common", own))
            if not ok:
                bad.append((str(p.relative_to(ROOT)), m))
    assert not bad, f"methods may import bench.api, methods.common and their own package only: {bad}"


@pytest.mark.parametrize("folder", ["bench/api", "methods"])
def test_no_layer_reaches_into_the_reports(folder):
    bad = [(p.relative_to(ROOT), m) for p in _modules(folder) for m in _imports(p) if m.startswith("bench.report")]
    assert not bad


def test_the_check_would_catch_a_violation(tmp_path):
    """The import scan sees function-level imports (the usual way a layer is crossed)."""
    f = tmp_path / "m.py"
    f.write_text("def f():\n    from bench.runner import run_cell\n    import methods.eda\n")
    assert _imports(f) == ["bench.runner", "methods.eda"]
