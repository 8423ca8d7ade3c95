"""What to explain, as one frozen value checked once: :class:`Request` (and its :class:`Options`, how maps are made).

Every surface (compute_cam, the explorer, the batch run, the Gallery, the metrics, the command line) hands what
the user said to :class:`camwidget.explain.Explainer`, which makes one Request of it with :meth:`Request.of`.
Every check of a request and every message about a bad one lives here, so a check added here protects every
surface. What can only be checked against the model (the layer's name, the output, a class's range) is checked
where the Explainer resolves the request for an input shape (:meth:`Explainer.resolve`) and, for classes, by
:func:`camwidget.targets.check_class_index`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from camwidget.engines import SCORES, MapGeometry
from camwidget.errors import CAMError
from camwidget.inputs.feed import Feed
from camwidget.methods import CAMMethod, get_method
from camwidget.targets import Class, check_target

GRADIENT_METHODS_HINT = "a gradient method ('gradcam', 'gradcam++', 'hirescam', 'xgradcam', 'layercam') or 'eigencam'"


@dataclasses.dataclass(frozen=True)
class Options:
    """How maps are made, apart from the model, the layer and the images.

    Attributes:
        method: a name from ``camwidget.METHODS`` (aliases allowed; :meth:`checked` gives the canonical one).
        score: "auto" (the logits before a final softmax or sigmoid) or "probability".
        eigen_smooth: the first principal component of the weighted activations instead of their sum.
        aug_smooth: the mean map over six test-time augmentations (flip x intensity).
        max_channels: Score-CAM and the other masking methods: at most this many channels, by mean activation.
        normalize: ReLU and each map over its max, else the raw signed maps.
    """

    method: str = "gradcam"
    score: str = "auto"
    eigen_smooth: bool = False
    aug_smooth: bool = False
    max_channels: int | None = None
    normalize: bool = True

    def checked(self) -> Options:
        """These options with the method's canonical name.

        Raises:
            CAMError: an unknown method or score, or max_channels not a positive int.
            TypeError: a flag that is not True or False.
        """
        if self.score not in SCORES:
            raise CAMError(f"score must be one of {', '.join(map(repr, SCORES))}, not {self.score!r}")
        mc = self.max_channels
        if mc is not None and (isinstance(mc, bool) or not isinstance(mc, (int, np.integer)) or mc < 1):
            raise CAMError(f"max_channels must be a positive int or None, not {mc!r}")
        for flag in ("eigen_smooth", "aug_smooth", "normalize"):
            if not isinstance(getattr(self, flag), (bool, np.bool_)):
                raise TypeError(f"{flag} must be True or False, not {getattr(self, flag)!r}")
        return dataclasses.replace(self, method=get_method(self.method).name)


@dataclasses.dataclass(frozen=True)
class Request:
    """What to explain, checked: everything but the model and the pictures.

    Attributes:
        layer: the layer's name or path (None: the default, the last spatial layer).
        output: the output's name or index for a model with several (None: the only one, or the first).
        target: what each map explains, one score per picture: a :class:`camwidget.targets.Class` (what
            ``class_index=`` says; ``Class()``, each picture's top class, when nothing is said) or any function of
            the output (see :mod:`camwidget.targets`).
        options: how the maps are made.
        grid: (rows, columns) of a token layer's patch grid, where it is not found from the token count.
        leading_tokens: tokens before a token layer's patch grid (class, distillation, register tokens).
        feed: for a model with several inputs, which one takes the pictures and the others' values.
    """

    layer: str | None = None
    output: str | int | None = None
    target: Any = Class()
    options: Options = Options()
    grid: tuple[int, int] | None = None
    leading_tokens: int | None = None
    feed: Feed | None = None

    @classmethod
    def of(
        cls,
        *,
        layer: str | None = None,
        output: str | int | None = None,
        target: Any = None,
        class_index: Any = None,
        options: Options | None = None,
        grid: Any = None,
        leading_tokens: Any = None,
        feed: Feed | None = None,
        **option_fields: Any,
    ) -> Request:
        """A checked request; ``option_fields`` (method=, score=, ...) given as not None override ``options``.

        ``class_index=c`` is the friendly spelling of ``target=Class(c)``; neither given: ``Class()``, each
        picture's top class.

        Raises:
            TypeError, CAMError: any field that cannot be right, with what would be.
        """
        if options is not None and not isinstance(options, Options):
            raise TypeError(f"options must be camwidget.explain.Options(...), not {type(options).__name__}")
        given = {name: value for name, value in option_fields.items() if value is not None}
        unknown = set(given) - {f.name for f in dataclasses.fields(Options)}
        if unknown:
            raise TypeError(f"unknown option(s) {', '.join(sorted(unknown))}")
        checked = dataclasses.replace(options or Options(), **given).checked()
        if target is not None and class_index is not None:
            raise CAMError("give class_index or target, not both (a class as a target: targets.Class(c))")
        target = Class.of(class_index) if target is None else check_target(target)
        if not isinstance(target, Class) and get_method(checked.method).class_only:  # it scores a class in another pass
            raise CAMError(
                f"method {checked.method!r} explains a class and cannot take target= yet; use {GRADIENT_METHODS_HINT}"
            )
        return cls(layer, output, target, checked, check_grid(grid), check_leading_tokens(leading_tokens), feed)

    @property
    def explains_class(self) -> bool:
        """Whether the maps explain a class (a :class:`Class` target), not a target function of the output."""
        return isinstance(self.target, Class)

    def with_options(self, **changes: Any) -> Request:
        """The same request made another way (checked)."""
        return Request.of(
            layer=self.layer,
            output=self.output,
            target=self.target,
            options=dataclasses.replace(self.options, **changes),
            grid=self.grid,
            leading_tokens=self.leading_tokens,
            feed=self.feed,
        )


def check_method_fits(method: CAMMethod, geometry: MapGeometry, path: str, shape: str) -> None:
    """A method that masks or traces the input as a picture (the registry's ``image_only``: Score-CAM and its
    kin, Guided Grad-CAM, FullGrad) works on image and token layers only.

    Raises:
        CAMError: the method masks pictures and the layer at `path` (output (N, `shape`)) is not a picture's map.
    """
    if method.image_only and geometry.kind not in ("image", "tokens"):
        raise CAMError(
            f"method {method.name!r} works on image models; layer {path!r} is a {geometry.kind} map "
            f"(N, {shape}); use {GRADIENT_METHODS_HINT}"
        )


def check_grid(grid: Any) -> tuple[int, int] | None:
    """grid= as given: None, or (rows, columns) of a token layer's patch grid.

    Raises:
        TypeError: anything but two positive ints.
    """
    if grid is None:
        return None
    if (
        not isinstance(grid, (tuple, list))
        or len(grid) != 2
        or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0 for d in grid)
    ):
        raise TypeError(f"grid must be two positive ints (rows, columns) of a token layer's patches, not {grid!r}")
    return int(grid[0]), int(grid[1])


def check_leading_tokens(leading_tokens: Any) -> int | None:
    """leading_tokens= as given: None, or how many tokens (class, distillation, registers) come before a token
    layer's patch grid.

    Raises:
        CAMError: anything but a whole number from 0.
    """
    if leading_tokens is None:
        return None
    whole = isinstance(leading_tokens, (int, np.integer)) and not isinstance(leading_tokens, (bool, np.bool_))
    if not whole or leading_tokens < 0:
        raise CAMError(
            f"leading_tokens must be an int of at least 0 (the tokens before a token layer's patch grid: class, "
            f"distillation, register tokens), not {leading_tokens!r}"
        )
    return int(leading_tokens)
