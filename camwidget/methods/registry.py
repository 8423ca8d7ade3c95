"""The one registry of CAM methods (:data:`METHODS`, what the explorer's Method dropdown lists) and what a
method is given.

Each method maps :class:`MethodInputs` (the engine's capture of A = activations (N, h, w, K) and
G = dy_c/dA, plus the model, for the methods that run it again) to either the per-channel terms
T (N, h, w, K), whose sum over k is the map, or a map (N, h, w) directly. Per-channel terms are what
eigen-smoothing projects. Maps are raw and signed; :func:`camwidget.methods.scaling.normalize_maps` applies
the ReLU and the scaling.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from camwidget.engines import CAMEngine, LayerCapture, LayerInfo, MapsCapture, ModelLayout
from camwidget.errors import CAMError, closest, quoted
from camwidget.inputs.feed import Feed

EPS = 1e-7


@dataclass
class MethodInputs:
    capture: LayerCapture
    images: np.ndarray  # (N, H, W, C) model input
    engine: CAMEngine
    layer: LayerInfo
    layout: ModelLayout
    output: int
    score: str
    max_channels: int | None = None  # Score-CAM: use at most this many channels
    feed: Feed | None = None  # a model's other inputs, where it has several


@dataclass
class PassInputs:
    """What a method that makes its maps in one pass of its own (FullGrad) is given in place of a capture."""

    images: np.ndarray  # (N, H, W, C) model input
    classes: np.ndarray  # (N,) int32, -1 for each image's top class
    engine: CAMEngine
    layout: ModelLayout
    output: int
    score: str
    feed: Feed | None = None


Formula = Callable[[Any, Any, Any], Any]  # (A, G, xp) -> per-channel terms T, xp: numpy or keras.ops


@dataclass(frozen=True)
class Option:
    """One setting of a method (Finer-CAM's gamma, KPCA-CAM's kernel, SS-CAM's samples ...).

    ``check(value)`` returns the value as the method uses it, or raises a CAMError (a ValueError) that names
    the option and its valid range; ``valid`` says that range in words, for messages and help."""

    default: Any
    check: Callable[[Any], Any]
    valid: str


@dataclass(frozen=True)
class CAMMethod:
    name: str  # what compute_cam(method=...) takes: the registered name, or "name(option=value, ...)"
    label: str  # what the dropdown shows
    compute: Callable[[MethodInputs], np.ndarray]
    per_channel: bool  # compute returns terms (N, h, w, K); else a map (N, h, w)
    input_resolution: bool = False  # the map is at the model input's resolution, not the layer's
    formula: Formula | None = None  # the gradient methods: T from (A, G) alone, in numpy or keras.ops, so that
    # the backend can compute the maps inside its own pass and hand back only them (compute_cam on a GPU)
    family: str = ""  # gradient, perturbation, activation, contrastive, model-based, baseline: the dropdown's groups
    cost: str = "1 pass"  # what one map costs, in forward passes of the model: the dropdown's tooltip
    options: Mapping[str, Option] = field(default_factory=dict)  # the settings it takes, with their defaults
    settings: tuple[tuple[str, Any], ...] = ()  # the settings it was configured with (defaults left out)
    class_only: bool = False  # it reruns the model for a class's score: it cannot explain a target= yet
    image_only: bool = False  # it masks or traces the input as a picture: image (and token) layers only
    # a method whose maps come from one pass of its own over the images, whatever the layer (FullGrad): the
    # explainer calls it in place of capturing the layer, so that pass is the only one
    own_pass: Callable[[PassInputs], MapsCapture] | None = None


METHODS: dict[str, CAMMethod] = {}


def register(
    name: str,
    label: str,
    per_channel: bool = True,
    input_resolution: bool = False,
    cost: str = "1 pass",
    options: Mapping[str, Option] | None = None,
    class_only: bool = False,
    image_only: bool = False,
    own_pass: Callable[[PassInputs], MapsCapture] | None = None,
):
    """Register a method computed by ``fn(inputs, **settings)``: `options` names each setting it takes, with its
    default and check; `cost` says what a map costs in forward passes (the explorer's tooltip reads it);
    `own_pass` makes its maps from the images alone (see :attr:`CAMMethod.own_pass`)."""

    def add(fn: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
        given = dict(options or {})
        compute = functools.partial(fn, **{k: o.default for k, o in given.items()}) if given else fn
        if given:
            functools.update_wrapper(compute, fn)
        METHODS[name] = CAMMethod(
            name,
            label,
            compute,
            per_channel,
            input_resolution,
            cost=cost,
            options=given,
            class_only=class_only,
            image_only=image_only,
            own_pass=own_pass,
        )
        return fn

    return add


class _HostNumPy:
    """NumPy as the formulas read it on the host: sums and means accumulate in float64 and keep the arrays'
    dtype, so float32 A and G need no float64 copies."""

    maximum = staticmethod(np.maximum)
    where = staticmethod(np.where)

    @staticmethod
    def mean(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        return np.mean(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(x.dtype)

    @staticmethod
    def sum(x: np.ndarray, axis: Any = None, keepdims: bool = False) -> np.ndarray:
        return np.sum(x, axis=axis, keepdims=keepdims, dtype=np.float64).astype(x.dtype)


def register_formula(name: str, label: str, float64: bool = False):
    """A gradient method given by its formula T(A, G, xp); on the host it runs in NumPy on float32 A and G
    (reductions in float64), or on float64 copies where the formula divides or cubes (`float64`). The copies
    cost about 10x on a shallow layer, where the explorer's method and class switches run the formula."""

    def add(formula: Formula) -> Formula:
        def compute(inputs: MethodInputs) -> np.ndarray:
            a, g = inputs.capture.activations, inputs.capture.gradients
            if float64:
                return formula(a.astype(np.float64), g.astype(np.float64), np).astype(np.float32)
            return formula(a, g, _HostNumPy).astype(np.float32, copy=False)

        compute.__doc__ = formula.__doc__
        METHODS[name] = CAMMethod(name, label, compute, per_channel=True, formula=formula, cost="1 pass")
        return formula

    return add


def get_method(name: str) -> CAMMethod:
    """The method a name stands for: a registered name ("finer-cam"), or one with settings,
    "finer-cam(gamma=0.5, top=2)" (each value a Python literal), as :func:`method_name` writes it.

    Raises:
        TypeError: `name` is not a string.
        CAMError: the method is not known, or a setting is not one it takes or is out of its range.
    """
    if not isinstance(name, str):
        raise TypeError(f"method must be a method name such as 'gradcam', not {type(name).__name__}")
    base, opening, rest = name.strip().partition("(")
    method = METHODS.get(base.strip().lower())
    if method is None:
        hint = closest(base.strip().lower(), METHODS)
        raise CAMError(
            f"method {name!r} is not known"
            + (f"; did you mean {quoted(hint)}?" if hint else "")
            + f" Available: {quoted(METHODS, limit=40)}"
        )
    if not opening:
        return method
    return configured(method, _parse_settings(name, rest))


def method_name(method: str, options: Mapping[str, Any] | None = None) -> str:
    """The name that stands for `method` with `options`: "finer-cam(gamma=0.5)", settings in a fixed order and
    defaults left out, so equal settings give equal names (the explorer's and the batch's caches key on it).

    Raises:
        CAMError: as :func:`get_method`.
    """
    found = get_method(method)
    if not options:
        return found.name
    if not isinstance(options, Mapping):
        raise TypeError(f"method_options must be a dict of the method's settings, not {type(options).__name__}")
    return configured(found, {**dict(found.settings), **options}).name


def configured(method: CAMMethod, settings: Mapping[str, Any]) -> CAMMethod:
    """`method` with `settings` checked (each by its :class:`Option`) and bound to its compute function."""
    base = method.name.partition("(")[0]
    unknown = [k for k in settings if k not in method.options]
    if unknown:
        takes = f"it takes {quoted(method.options)}" if method.options else "it takes none"
        raise CAMError(f"method {base!r} has no setting {unknown[0]!r}; {takes}")
    values = {k: method.options[k].check(v) for k, v in settings.items()}
    changed = tuple((k, values[k]) for k in method.options if k in values and values[k] != method.options[k].default)
    if not changed:
        return METHODS[base]
    name = base + "(" + ", ".join(f"{k}={v!r}" for k, v in changed) + ")"
    fn = METHODS[base].compute
    compute = functools.partial(fn.func, **{**fn.keywords, **values}) if isinstance(fn, functools.partial) else fn
    return dataclasses.replace(METHODS[base], name=name, compute=compute, settings=changed)


def _parse_settings(name: str, rest: str) -> dict[str, Any]:
    """ "gamma=0.5, top=2)" -> {"gamma": 0.5, "top": 2}; a CAMError that shows the form otherwise."""
    form = "method(option=value, ...), each value a number, a string or a tuple"
    try:
        call = ast.parse("f(" + rest, mode="eval").body
        if not isinstance(call, ast.Call) or call.args:
            raise ValueError
        return {str(k.arg): ast.literal_eval(k.value) for k in call.keywords if k.arg is not None}
    except (SyntaxError, ValueError):
        raise CAMError(f"method {name!r} cannot be read; write its settings as {form}") from None


# -- checks the options share: each names the option and its valid range --------------------------------------


def number_in(option: str, low: float, high: float, *, low_open: bool = False, whole: bool = False):
    """A check of a number in [low, high] ((low, high] with low_open; an int with whole)."""
    kind = "an int" if whole else "a number"
    valid = f"{kind} {'>' if low_open else '>='} {low:g}" + ("" if high == float("inf") else f" and <= {high:g}")

    def check(value: Any) -> Any:
        ok_type = isinstance(value, (int, np.integer)) if whole else isinstance(value, (int, float, np.number))
        if isinstance(value, (bool, np.bool_)) or not ok_type:
            raise CAMError(f"{option} must be {valid}, not {value!r}")
        if not (value > low if low_open else value >= low) or not value <= high or value != value:
            raise CAMError(f"{option} must be {valid}, not {value!r}")
        return int(value) if whole else float(value)

    return Option(None, check, valid)


def option(default: Any, check: Option) -> Option:
    """`check` (from :func:`number_in` or :func:`one_of`) with its default."""
    return dataclasses.replace(check, default=default)


def one_of(option_name: str, choices: tuple[Any, ...]) -> Option:
    """A check of a value among `choices`."""
    valid = "one of " + ", ".join(repr(c) for c in choices)

    def check(value: Any) -> Any:
        if value not in choices or isinstance(value, bool):
            raise CAMError(f"{option_name} must be {valid}, not {value!r}")
        return value

    return Option(None, check, valid)
