"""The house's layering: the ground floor (``hybridtrt.core``) stands alone, the runtime never
reaches into the compiler, and no two modules import each other, even inside a function."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx
import pytest

import hybridtrt

PACKAGE = Path(hybridtrt.__file__).parent


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every hybridtrt module ``path`` imports, at any depth, but not under TYPE_CHECKING."""
    tree = ast.parse(path.read_text(), str(path))
    typing_only = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and ast.unparse(node.test).endswith("TYPE_CHECKING") for n in ast.walk(node)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
    return {name for name in found if name.split(".")[0] == "hybridtrt"}


MODULES = {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}
IMPORTS = {name: {i for i in _imports(path) if i in MODULES and i != name}
           for name, path in MODULES.items()}


def _offenders(layer: str, forbidden: tuple[str, ...]) -> list[str]:
    return sorted(f"{name} imports {target}" for name, targets in IMPORTS.items()
                  if name == layer or name.startswith(layer + ".")
                  for target in targets if target.startswith(forbidden))


def test_the_modules_were_found():
    assert {"hybridtrt.core.graph", "hybridtrt.runtime.predictor", "hybridtrt.compiler.pipeline",
            "hybridtrt.trt.api"} <= set(MODULES)


@pytest.mark.parametrize("layer, forbidden", [
    ("hybridtrt.core", ("hybridtrt.compiler", "hybridtrt.runtime", "hybridtrt.online",
                        "hybridtrt.tools", "hybridtrt.serve", "hybridtrt.cli")),
    ("hybridtrt.runtime", ("hybridtrt.compiler", "hybridtrt.tools", "hybridtrt.serve")),
    ("hybridtrt.trt", ("hybridtrt.compiler", "hybridtrt.runtime", "hybridtrt.tools")),
    ("hybridtrt.converters", ("hybridtrt.compiler", "hybridtrt.runtime", "hybridtrt.tools")),
])
def test_a_layer_imports_nothing_from_the_layers_above_it(layer, forbidden):
    assert _offenders(layer, forbidden) == []


def test_no_import_circle():
    graph = nx.DiGraph((name, target) for name, targets in IMPORTS.items() for target in targets
                       if not name.endswith("__init__") and MODULES[name].name != "__init__.py")
    assert sorted(nx.simple_cycles(graph), key=len)[:3] == []


def test_no_module_over_500_lines_and_no_function_over_60() -> None:
    long_modules, long_functions = [], []
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text()
        if text.count("\n") > 500:
            long_modules.append(f"{_module(path)}: {text.count(chr(10))} lines")
        for node in ast.walk(ast.parse(text, str(path))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long_functions.append(f"{_module(path)}.{node.name}: {length} lines")
    assert long_modules == [] and long_functions == []
