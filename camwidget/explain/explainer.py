"""The one path from a model and images to maps: :class:`Explainer` (see :mod:`camwidget.explain`).

An Explainer holds its model strongly (until :meth:`Explainer.close`), resolves the layer, output and score once
per input shape, and before every computation looks at the model as it is now (:meth:`CAMEngine.sync`): a
model changed by ``fit``, ``set_weights``, ``load_weights`` or an edit of a layer is never explained from
stale traced passes or cached values. The capture -> method -> normalise sequence exists here only:
:meth:`Explainer.maps_from` is what both compute_cam and the explorer's session call.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np

from camwidget import progress
from camwidget.engines import (
    CAMEngine,
    Capture,
    LayerCapture,
    LayerInfo,
    MapGeometry,
    ModelChanged,
    ModelLayout,
    engine_for,
    num_classes,
)
from camwidget.errors import CAMError
from camwidget.explain.request import Options, Request, check_method_fits
from camwidget.inputs.feed import Feed
from camwidget.inputs.images import model_batch
from camwidget.methods import CAMMethod, MethodInputs, PassInputs, finite, get_method, method_maps, normalize_maps
from camwidget.methods.grid import as_grid, from_grid
from camwidget.targets import Class

# Test-time augmentations for aug_smooth: horizontal flip x intensity factors, as pytorch-grad-cam's
# ttach.Compose([HorizontalFlip(), Multiply([0.9, 1, 1.1])]).
AUGMENTATIONS = tuple((flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1))

# How often a computation is repeated when the model's weights changed while it ran (another thread training).
_CONSISTENCY_TRIES = 3


class Explainer:
    """Maps of one model at one layer and output, by one method: the core that compute_cam and the explorer
    share. Holds the model strongly; :meth:`close` lets it go.

    How maps are made: ``options=Options(...)``, or compute_cam's keywords (method, score, eigen_smooth,
    aug_smooth, max_channels, normalize), which take precedence over the same fields of ``options``:

    >>> explainer = Explainer(model, method="hirescam", score="probability")
    >>> explainer.options.method, explainer.options.score, explainer.options.normalize
    ('hirescam', 'probability', True)
    >>> same = cw.compute_cam(model, images, class_index=0, method="hirescam", score="probability")
    >>> bool(np.allclose(explainer.explain(images, class_index=0), same, atol=1e-6))
    True

    Args:
        model: any Keras 3 model; held strongly until :meth:`close`.
        layer, output, target, class_index, grid, feed, leading_tokens: what to explain, as compute_cam takes
            them (class_index=c is target=Class(c), the class :meth:`explain` explains unless told another; feed:
            :func:`camwidget.inputs.feed.make_feed` of its input= and other_inputs=).
        options: how the maps are made (:class:`Options`).
        method, score, eigen_smooth, aug_smooth, max_channels, normalize: compute_cam's keywords; each given
            (not None) overrides the same field of `options`.
        request: a checked :class:`Request` instead of all the above.

    Raises:
        CAMError, TypeError: any field that cannot be right (:meth:`Request.of` checks them once).
    """

    def __init__(
        self,
        model: keras.Model,
        *,
        layer: str | None = None,
        output: str | int | None = None,
        options: Options | None = None,
        target: Any = None,
        class_index: Any = None,
        grid: tuple[int, int] | None = None,
        feed: Feed | None = None,
        leading_tokens: int | None = None,
        method: str | None = None,
        score: str | None = None,
        eigen_smooth: bool | None = None,
        aug_smooth: bool | None = None,
        max_channels: int | None = None,
        normalize: bool | None = None,
        request: Request | None = None,
    ) -> None:
        self.engine: CAMEngine = engine_for(model)
        self.request = request or Request.of(
            layer=layer,
            output=output,
            target=target,
            class_index=class_index,
            options=options,
            grid=grid,
            leading_tokens=leading_tokens,
            feed=feed,
            method=method,
            score=score,
            eigen_smooth=eigen_smooth,
            aug_smooth=aug_smooth,
            max_channels=max_channels,
            normalize=normalize,
        )
        self._token_layout: tuple[Any, Any] = (None, None)  # (the engine's layout, it read with grid / leading)
        self._flipped_target: Any = None  # aug_smooth's flipped copies: the target flipped with them, made once
        self._model: keras.Model | None = model
        self.cam_method: CAMMethod = get_method(self.options.method)

    # The request's fields, read where the maps are made.
    options = property(lambda self: self.request.options)
    explains_class = property(lambda self: self.request.explains_class)
    feed = property(lambda self: self.request.feed)
    grid = property(lambda self: self.request.grid)
    leading_tokens = property(lambda self: self.request.leading_tokens)
    layer_name = property(lambda self: self.request.layer)
    output_spec = property(lambda self: self.request.output)

    @property
    def model(self) -> keras.Model:
        if self._model is None:
            raise CAMError("this explainer was closed; make a new one for the model")
        return self._model

    def forget(self) -> None:
        """Forget everything traced and read for the model, as if it had changed in every way."""
        self.engine.forget()

    def close(self) -> None:
        """Let the model go, and everything traced for it."""
        if self._model is not None:
            self.engine.forget()
        self._model = None

    def with_options(self, **changes: Any) -> Explainer:
        """The same model, layer and output with other options (checked); shares the compiled passes."""
        return Explainer(self.model, request=self.request.with_options(**changes))

    # -- resolved once per input shape ---------------------------------------------------------------------

    def sync(self) -> tuple[int, int]:
        """The model as it is now: see :meth:`CAMEngine.sync`."""
        self.model  # noqa: B018  (raises if closed)
        return self.engine.sync()

    def layout(self, image_shape: Sequence[int] | None) -> ModelLayout:
        """The model's layout at this input shape; with grid= or leading_tokens=, its token layers read so."""
        layout = self.engine.layout(image_shape, self.feed)
        if self.grid is None and self.leading_tokens is None:
            return layout
        base, derived = self._token_layout
        if base is not layout:  # made once per layout the engine holds
            derived = layout.with_token_grid(self.grid, self.leading_tokens)
            self._token_layout = (layout, derived)
        return derived

    def expected_input_shape(self) -> tuple[int | None, ...] | None:
        """One item of the images' input, (H, W, C) for an image model; None entries where any size goes."""
        return self.engine.expected_input_shape(self.feed)

    def resolve(self, layout: ModelLayout, layer: str | None = None) -> tuple[LayerInfo, int, int]:
        """(the layer, the output index, its number of classes) for this layout; errors name the fix."""
        info = layout.resolve(self.layer_name if layer is None else layer, self.grid, self.leading_tokens)
        output = self.engine.output_index(layout, self.output_spec)
        return info, output, num_classes(layout, output)

    @property
    def target(self) -> Any:
        """The target function the engines differentiate, or None for a :class:`Class` (the engines score a class
        from the class vector :meth:`classes` gives them, one compiled pass for every class)."""
        return None if self.explains_class else self.request.target

    def classes(self, class_index: Any, n_images: int, n_classes: int) -> np.ndarray:
        """The int32 (N,) class vector of a pass (-1: each picture's top class): `class_index` where given (the
        explorer's class switch), else the request's :class:`Class`; zeros for a target function.

        Raises:
            TypeError, CAMError: a class that cannot be right (:meth:`Class.vector`, the one check).
        """
        if not self.explains_class:
            return np.zeros(n_images, np.int32)
        chosen = self.request.target if class_index is None else Class.of(class_index)
        return chosen.vector(n_images, n_classes)

    def output_and_classes(self, layout: ModelLayout) -> tuple[int, int]:
        """(the output's index, how many classes it scores) for this layout; with a target, its one score is
        the only "class"."""
        if not self.explains_class:
            return self.engine.output_index(layout, self.output_spec, classes=False), 1
        _, output, n_classes = self.resolve(layout)
        return output, n_classes

    # -- the one capture -> method -> normalise path -------------------------------------------------------

    def capture(
        self,
        batch: np.ndarray,
        infos: Sequence[LayerInfo],
        classes: np.ndarray,
        output: int,
        target: Any = None,
        score: str | None = None,
    ) -> Capture:
        """One pass's activations, gradients and scores at each layer of `infos`; the target's values checked.

        Args:
            batch: (N, ...) in the model's input space.
            infos: the layers to capture.
            classes: int32 (N,), -1 for each picture's top class.
            output: the output's index.
            target: default this explainer's (a flipped copy's for aug_smooth).
            score: default this explainer's option ("auto" or "probability").
        """
        target = self.target if target is None else target
        score = self.options.score if score is None else score
        capture = self.engine.capture(batch, infos, classes, output, score, target, self.feed)
        self._check_target_scores(capture.scores)
        return capture

    def tail_capture(
        self,
        activations: np.ndarray,
        info: LayerInfo,
        class_index: int,
        output: int,
        image_shape: tuple[int, ...],
        score: str | None = None,
    ) -> LayerCapture | None:
        """The class-switch tail pass: one picture's capture at `info` for another class, from the layer's
        kept activations, running only the layers after it (:meth:`CAMEngine.recapture`).

        Returns:
            The capture, or None where a tail pass cannot stand for the whole one (a target, whose score may
            read any layer; a layer the engine cannot cut at): then capture with :meth:`capture`.
        """
        if not self.explains_class:
            return None
        score = self.options.score if score is None else score
        classes = np.array([class_index], np.int32)
        return self.engine.recapture(activations, info, classes, output, score, self.feed, image_shape)

    def target_for(self, flipped: bool) -> Any:
        """The target for a copy of the images flipped left-right (aug_smooth): a target that depends on where in
        the output it reads (a Region's mask) flipped with them, by its own ``flipped()``; any other as it is."""
        if not flipped or self.target is None or not callable(getattr(self.target, "flipped", None)):
            return self.target
        if self._flipped_target is None:  # one object, so its compiled passes are traced once
            self._flipped_target = self.target.flipped()
        return self._flipped_target

    def _check_target_scores(self, scores: np.ndarray) -> None:
        """A target's values (N, 1) must be finite."""
        if self.target is not None and not np.all(np.isfinite(scores)):
            bad = [int(i) for i in np.flatnonzero(~np.isfinite(scores[:, 0]))]
            raise CAMError(
                f"target {self.target!r} returned {scores[bad[0], 0]} for image {bad[0]}"
                f"{f' (and {len(bad) - 1} more)' if len(bad) > 1 else ''}; it must give a finite score per image"
            )

    def fused(self, info: LayerInfo) -> bool:
        """Whether the maps are made inside the pass (JAX, torch: ``PortableEngine.capture_maps``): a gradient
        method given by its formula, summed over channels (not eigen-smoothed), on an image layer."""
        geometry = info.geometry
        return (
            self.engine.maps_in_pass
            and self.cam_method.formula is not None
            and not self.options.eigen_smooth
            and geometry is not None
            and geometry.kind == "image"
        )

    def maps_from(
        self,
        capture: LayerCapture,
        batch: np.ndarray,
        info: LayerInfo,
        layout: ModelLayout,
        output: int,
        max_channels: int | None = None,
    ) -> np.ndarray:
        """Raw maps (N, *grid) of this explainer's method from one layer's capture (signed, before ReLU):
        (N, h, w) for images and tokens, (N, L) for signals, (N, D, H, W) for volumes."""
        geometry = self.geometry(info)
        check_method_fits(self.cam_method, geometry, info.path, info.describe_shape())
        inputs = MethodInputs(
            as_grid(capture, geometry),
            batch,
            self.engine,
            info,
            layout,
            output,
            self.options.score,
            self.options.max_channels if max_channels is None else max_channels,
            self.feed,
        )
        maps = method_maps(self.cam_method, inputs, self.options.eigen_smooth)
        if self.cam_method.input_resolution:
            return maps
        return from_grid(maps, geometry, capture.activations.shape[1:-1])

    def geometry(self, info: LayerInfo) -> MapGeometry:
        """How the layer's output reads as maps."""
        if info.geometry is None:
            raise CAMError(f"layer {info.path!r} has output (N, {info.describe_shape()}), which is not a map")
        return info.geometry

    def finish(self, raw: np.ndarray) -> np.ndarray:
        """normalize=True: ReLU and each map over its max (all-zero stays zero); else the raw maps, finite."""
        return normalize_maps(raw) if self.options.normalize else finite(raw)

    def explain(
        self, batch: Any, class_index: Any = None, layer: str | None = None, *, values_checked: bool = True
    ) -> np.ndarray:
        """float32 (N, h, w) maps of a batch already in the model's input space (see compute_cam): NumPy, or
        a JAX / torch tensor from :func:`camwidget.inputs.images.device_batch`, which stays on its device for a
        pass that makes the maps itself and is read into NumPy otherwise. A batch whose values were not
        checked yet (values_checked=False; a tensor never was) is checked once, where it is read: inside a
        pass that makes the maps, or on the host; a NaN gets :func:`camwidget.inputs.images.model_batch`'s error."""
        return self._consistently(
            lambda check: self._explain_once(batch, class_index, layer, check=check, values_checked=values_checked)
        )

    def explain_with_scores(
        self, batch: np.ndarray, class_index: Any = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(maps, the model's probabilities (N, C) (a target's values (N, 1)), the class each map explains), from
        the one pass that makes the maps (aug_smooth: one more pass for the probabilities)."""
        if self.options.aug_smooth:
            maps = self.explain(batch, class_index)
            layout = self.layout(batch.shape[1:])
            _, output, _ = self.resolve(layout)
            probabilities = self.engine.class_probabilities(batch, output, self.feed)
            classes = self.classes(class_index, len(batch), probabilities.shape[1])
            return maps, probabilities, np.where(classes < 0, probabilities.argmax(axis=1), classes)
        found: dict[str, np.ndarray] = {}
        maps = self._consistently(lambda check: self._explain_once(batch, class_index, None, found, check))
        return maps, found["probabilities"], found["classes"]

    def _consistently(self, compute: Callable[[Callable[[], None] | None], np.ndarray]) -> np.ndarray:
        """compute(check) on the model as it is now, never on one that changed under it.

        Engines whose passes read one snapshot of the weights (JAX) look at the model *while* the pass runs on
        the device, where the look costs no time: compute(check) runs with what the last look found, and
        `check()` (called as each pass runs, or after) raises ModelChanged if the structure is no longer the
        one those passes were traced for; the result is then dropped and computed again after a fresh look.
        Other engines look before, and after, where a pass could have read weights that changed meanwhile."""
        self.model  # noqa: B018  (raises if closed)
        seen = self.engine.structure_seen() if self.engine.snapshot_passes else None
        if seen is not None:
            looked: list[bool] = []

            def check() -> None:
                looked.append(True)
                if self.sync()[0] != seen:
                    raise ModelChanged

            try:
                result = compute(check)
                if not looked:
                    check()
                return result
            except ModelChanged:
                pass
            except Exception:
                if looked or self.sync()[0] == seen:
                    raise  # an error of the model as it is now (or of the input): no look would change it
        for _ in range(_CONSISTENCY_TRIES):
            before = self.sync()
            result = compute(None)
            if self.engine.snapshot_passes or self.engine.sync() == before:
                return result
        return result  # the model kept changing (trained meanwhile): the last map, from one whole pass

    def _explain_once(
        self,
        batch: Any,
        class_index: Any,
        layer: str | None,
        found: dict[str, np.ndarray] | None = None,
        check: Callable[[], None] | None = None,
        values_checked: bool = True,
    ) -> np.ndarray:
        layout = self.layout(batch.shape[1:])
        if self.explains_class:
            info, output, n_classes = self.resolve(layout, layer)
        else:  # any output shape: the target makes one score of it
            info = layout.resolve(self.layer_name if layer is None else layer, self.grid, self.leading_tokens)
            output = self.engine.output_index(layout, self.output_spec, classes=False)
            n_classes = 1
        classes = self.classes(class_index, len(batch), n_classes)

        fused = self.fused(info)
        if (not fused or self.options.aug_smooth) and (not values_checked or not isinstance(batch, np.ndarray)):
            batch = model_batch(batch, rank=len(batch.shape) - 1)  # read into NumPy, checked; else in the pass

        def raw_maps(x: np.ndarray, classes: np.ndarray, flipped: bool = False) -> tuple[np.ndarray, np.ndarray]:
            target = self.target_for(flipped)
            if fused:
                got = self.engine.capture_maps(
                    x,
                    info,
                    classes,
                    output,
                    self.options.score,
                    self.cam_method.formula,
                    target,
                    self.feed,
                    while_running=check,
                )
                if not got.input_finite:
                    model_batch(batch, rank=len(batch.shape) - 1)  # the images as given: says what is wrong
                    raise CAMError("the pass read a value that is not finite from images that are; please report it")
                self._check_target_scores(got.probabilities)
                if found is not None:
                    found.update(probabilities=got.probabilities, classes=got.class_index)
                return got.maps, got.class_index
            own_pass = self.cam_method.own_pass
            if own_pass is not None:  # FullGrad: its own pass is the only one, no capture of the layer
                check_method_fits(self.cam_method, self.geometry(info), info.path, info.describe_shape())
                got = own_pass(PassInputs(x, classes, self.engine, layout, output, self.options.score, self.feed))
                if found is not None:
                    found.update(probabilities=got.probabilities, classes=got.class_index)
                return got.maps, got.class_index
            capture = self.capture(x, [info], classes, output, target).at(info.path)
            if found is not None:
                found.update(probabilities=capture.probabilities, classes=capture.class_index)
            return self.maps_from(capture, x, info, layout, output), capture.class_index

        if not self.options.aug_smooth:
            maps, _ = raw_maps(batch, classes)
            return self.finish(maps)
        largest = max(factor for _, factor in AUGMENTATIONS)
        if np.abs(batch).max() > np.finfo(np.float32).max / largest:
            raise CAMError(
                f"aug_smooth multiplies the images by {largest}, and their largest value ({np.abs(batch).max():.3g}) "
                "would overflow float32; scale the images down or leave aug_smooth off"
            )
        if (classes < 0).any():
            _, classes = raw_maps(batch, classes)  # fix each image's class before augmenting
        total = 0.0
        for done, (flip, factor) in enumerate(AUGMENTATIONS):
            progress.step(done, len(AUGMENTATIONS), "augmented copies")
            # flipped left-right: the input's last axis before channels, the map's last axis (and a Region's mask)
            x = (np.flip(batch, axis=-2) if flip else batch) * np.float32(factor)
            maps, _ = raw_maps(np.ascontiguousarray(x), classes, flip)
            maps = normalize_maps(maps)
            total = total + (np.flip(maps, axis=-1) if flip else maps)
        maps = (total / len(AUGMENTATIONS)).astype(np.float32)
        return normalize_maps(maps) if self.options.normalize else maps
