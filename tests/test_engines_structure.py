"""camwidget.engines as a package: the engines are siblings under one abstract base, the factory is its face,
and its modules import nothing above them."""

import ast
import pathlib

import models

import camwidget.engines as engines
from camwidget.engines.base import Engine

ENGINES = pathlib.Path(engines.__file__).parent
# What engines/ may import from camwidget (DESIGN.md's layering: nothing from explain, methods, api, explorer...).
ALLOWED = ("camwidget.engines", "camwidget.errors", "camwidget.limits", "camwidget.progress", "camwidget.cache")
ALLOWED += ("camwidget.keras_private", "camwidget.tensorflow_lazy", "camwidget.targets", "camwidget.inputs")


def test_the_engines_are_siblings_and_none_inherits_builders_it_never_uses():
    assert issubclass(engines.TensorFlowEngine, Engine) and issubclass(engines.PortableEngine, Engine)
    assert not issubclass(engines.PortableEngine, engines.TensorFlowEngine)
    assert not issubclass(engines.TensorFlowEngine, engines.PortableEngine)
    for builder in ("_build_capture", "_build_guided", "_build_perturbed", "_trace"):
        assert not hasattr(engines.PortableEngine, builder) or builder in vars(engines.PortableEngine)
    assert engines.CAMEngine is Engine  # the name the methods and metrics type an engine with: any engine


def test_engine_for_makes_the_tensorflow_engine_once_per_model():
    model = models.small_cnn(name="factory")
    engine = engines.engine_for(model)
    assert type(engine) is engines.TensorFlowEngine and engines.engine_for(model) is engine


def _imports(path: pathlib.Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names += [node.module] + [f"{node.module}.{a.name}" for a in node.names if node.module == "camwidget"]
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return [n for n in names if n.startswith("camwidget")]


def test_engines_import_nothing_from_above_them():
    wrong = {
        f"{path.name}: {name}"
        for path in ENGINES.glob("*.py")
        for name in _imports(path)
        if name != "camwidget" and not name.startswith(ALLOWED)
    }
    assert not wrong


def test_only_keras_private_touches_keras_private_api():
    """No attribute with a leading underscore on an object not our own, and no keras.src import, in engines/
    or the demo's loading: those are camwidget.keras_private's, each probed with a fallback."""
    found = []
    for path in [*ENGINES.glob("*.py"), ENGINES.parent / "demo" / "loading.py"]:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__"):
                if not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
                    found.append(f"{path.name}:{node.lineno} {ast.unparse(node)}")
            if isinstance(node, ast.ImportFrom) and "keras.src" in (node.module or ""):
                found.append(f"{path.name}:{node.lineno} {node.module}")
    assert not found
