"""Scale-out on Ray (``pip install camwidget[ray]``): the same batches as :func:`camwidget.pipeline.batch.explain_many`,
spread over a Ray cluster's workers with Ray Data's ``map_batches`` and an actor pool, one model per actor.

    results = explain_on_ray(model, "photos/", address="auto")   # a running cluster; None: a local one

The model travels once, as a .keras file's bytes in Ray's object store (so workers on other machines need no
shared disk), or as a MODEL spec (a .keras path or module:function that every worker can reach). On a cluster with GPUs each actor takes one GPU,
so one host with several GPUs runs one actor per GPU.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from typing import Any

import numpy as np

from camwidget.errors import CAMError
from camwidget.pipeline.batch import Explained, Picture, find_pictures


def _require_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise CAMError("--ray needs Ray: pip install 'camwidget[ray]' (or pip install 'ray[data]')") from None
    return ray


def _model_bytes(model: Any) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "model.keras")
        model.save(path)
        with open(path, "rb") as f:
            return f.read()


class _Explainer:
    """One Ray actor: its own model, loaded once; explains a batch of rows."""

    def __init__(self, model_ref: Any, options: dict[str, Any]) -> None:
        from camwidget.pipeline.model_file import load_model
        from camwidget.quiet import quiet_tensorflow

        quiet_tensorflow()
        ray = _require_ray()
        if isinstance(model_ref, ray.ObjectRef):  # the model's bytes, put once in the object store
            model_ref = ray.get(model_ref)
        if isinstance(model_ref, bytes):
            import keras

            folder = tempfile.mkdtemp(prefix="camwidget-model-")
            path = os.path.join(folder, "model.keras")
            with open(path, "wb") as f:
                f.write(model_ref)
            self.model = keras.models.load_model(path, compile=False)
        else:
            self.model = load_model(model_ref)
        self.options = options

    def __call__(self, rows: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        from camwidget.pipeline.batch import explain_many

        sources = list(rows["source"])
        found = {item.index: item for item in explain_many(self.model, sources, **self.options)}
        fields = ("index", "name", "key", "top", "class_index", "cam", "overlay", "pixels", "stats", "error")
        out: dict[str, list[Any]] = {k: [] for k in fields}
        for position, (index, name, key) in enumerate(zip(rows["index"], rows["name"], rows["key"])):
            item = found.get(position)
            out["index"].append(int(index))
            out["name"].append(str(name))
            out["key"].append(str(key))
            out["top"].append(None if item is None else item.top)
            out["class_index"].append(-1 if item is None else item.class_index)
            out["cam"].append(None if item is None else item.cam)
            out["overlay"].append(None if item is None else item.overlay)
            out["pixels"].append(None if item is None or not self.options.get("pixels") else item.pixels)
            out["stats"].append(None if item is None else item.stats)
            out["error"].append("not returned" if item is None else item.error)
        return {k: np.array(v, dtype=object) for k, v in out.items()}


def explain_on_ray(
    model: Any,
    images: Any,
    *,
    address: str | None = "auto",
    actors: int | None = None,
    skip: Any = None,
    **options: Any,
) -> Iterator[Explained]:
    """explain_many's results, computed by Ray actors, yielded in input order as they come.

    Args:
        model: a model, or a MODEL spec (a .keras path, or module:function) each actor loads.
        images: as :func:`camwidget.pipeline.batch.explain_many` takes them.
        address: the Ray cluster ("auto": the running one; None or "local": a local one started here).
        actors: how many actors (default one per GPU, else one per node, at least 2).
        skip: skip(name) true: the picture is left out (a resumed run).
        **options: explain_many's other options.

    Returns:
        An iterator of :class:`~camwidget.pipeline.batch.Explained`, as explain_many's.

    Raises:
        CAMError: Ray is not installed (with the command that installs it).
    """
    ray = _require_ray()
    if not ray.is_initialized():
        ray.init(
            address=None if address in (None, "local") else address,
            ignore_reinit_error=True,
            log_to_driver=False,
            include_dashboard=False,
        )
    given = images if isinstance(images, list) and images and isinstance(images[0], Picture) else find_pictures(images)
    sources = [p for p in given if not (skip and skip(p.name))]
    if not sources:
        return
    model_ref = model if isinstance(model, str) else _model_bytes(model)
    gpus = int(ray.cluster_resources().get("GPU", 0))
    count = actors or (gpus if gpus else max(2, len(ray.nodes())))
    options = {k: v for k, v in options.items() if k not in ("skip", "progress_bar")} | {"progress_bar": False}
    batch_size = int(options.get("batch_size", 16))
    items = [
        {
            "index": p.index,
            "name": p.name,
            "key": p.key,
            "source": p.source if isinstance(p.source, np.ndarray) else os.fspath(p.source),
        }
        for p in sources
    ]
    ray.data.DataContext.get_current().execution_options.preserve_order = True
    dataset = ray.data.from_items(items, override_num_blocks=max(1, min(len(items) // batch_size, 4 * count)))
    explained = dataset.map_batches(
        _Explainer,
        fn_constructor_args=(ray.put(model_ref), options),
        batch_size=batch_size,
        batch_format="numpy",
        concurrency=count,
        num_gpus=1 if gpus else 0,
    )
    for row in explained.iter_rows():  # in input order (preserve_order, set above): streamed, not gathered
        if row["error"] is not None:
            yield Explained(int(row["index"]), str(row["name"]), error=str(row["error"]), key=str(row["key"]))
            continue
        yield Explained(
            int(row["index"]),
            str(row["name"]),
            [tuple(t) for t in row["top"]],
            int(row["class_index"]),
            row["cam"],
            row["overlay"],
            row["pixels"],
            stats=dict(row["stats"]),
            key=str(row["key"]),
        )
