"""camwidget.engines.autodiff_types: the interface jax_autodiff and torch_autodiff share. Read from their source
(neither backend need be installed): both write every function the portable engine calls on its autodiff
module, and their gradient and tail passes take and give the shared types."""

from __future__ import annotations

import ast
import collections.abc
import pathlib
import typing

import camwidget.engines as engines
from camwidget.engines import autodiff_types

ENGINES = pathlib.Path(engines.__file__).parent


def functions(name: str) -> dict[str, ast.FunctionDef]:
    tree = ast.parse((ENGINES / f"{name}.py").read_text())
    return {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_the_types_are_callables():
    for name in ("ModelRef", "Forward", "EpsShapes", "Reduce", "Pass"):
        assert typing.get_origin(getattr(autodiff_types, name)) is collections.abc.Callable, name


def test_both_autodiff_modules_write_what_the_portable_engine_calls_with_the_shared_types():
    portable = ast.parse((ENGINES / "portable.py").read_text())
    called = {
        node.attr
        for node in ast.walk(portable)
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute) and node.value.attr == "_autodiff"
    }
    assert {"gradient_pass", "tail_pass", "inject", "dry_call"} <= called
    for module in ("jax_autodiff", "torch_autodiff"):
        written = functions(module)
        assert called <= set(written), (module, called - set(written))
        gradient = written["gradient_pass"]
        annotations = [ast.unparse(a.annotation) for a in gradient.args.args]
        assert annotations == ["ModelRef", "Forward", "EpsShapes", "Reduce | None"], module
        assert ast.unparse(gradient.returns) == "Pass", module
        imported = {
            a.name
            for node in ast.parse((ENGINES / f"{module}.py").read_text()).body
            if isinstance(node, ast.ImportFrom) and node.module == "camwidget.engines.autodiff_types"
            for a in node.names
        }
        assert {"ModelRef", "Forward", "EpsShapes", "Reduce", "Pass"} <= imported, module
