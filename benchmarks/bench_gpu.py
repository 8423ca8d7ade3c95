"""Grad-CAM throughput on a GPU: camwidget on Keras's JAX backend against pytorch-grad-cam, same machine, same run.

    python benchmarks/bench_gpu.py [--batch 64] [--rounds 10] [--breakdown]

VGG16 (random weights), 224x224, the last convolution (Keras block5_conv3; torchvision features[29], the ReLU
after conv5_3, the same tensor). Each side runs in its own process, so neither framework's GPU allocator sees
the other:

- camwidget: ``compute_cam(model, images, layer="block5_conv3")`` with ``KERAS_BACKEND=jax``, the maps
  returned as NumPy (N, 14, 14); the images handed over as a NumPy batch, and as a jax.Array already on the
  GPU. Each is set against one jitted forward pass of the same model (``stateless_call``) with the same input
  (NumPy logits back).
- pytorch-grad-cam: ``GradCAM(model, [features[29]])(input_tensor)`` on torchvision's VGG16 in eval mode, the
  batch already on the GPU; it returns NumPy maps resized to 224x224 (its own pipeline, cv2 on the CPU).
  Its model's forward pass (``no_grad``) is printed beside it.

Prints medians, images per second and same-run ratios. Needs a CUDA GPU, jax with its CUDA plugin, torch and
torchvision, and ``grad-cam`` (pip install grad-cam); it also runs on a CPU, slowly, to check the script.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent
sys.path[:0] = [str(HERE), str(HERE.parent)]  # _timing, and camwidget from this checkout where it is not installed


def camwidget_on_jax(batch: int, rounds: int, breakdown: bool = False) -> dict[str, float]:
    import jax
    import keras
    import numpy as np
    from _timing import medians

    import camwidget as cw

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)
    x = np.random.default_rng(0).uniform(-120, 120, (batch, 224, 224, 3)).astype("float32")

    @jax.jit
    def forward(trainable, non_trainable, t):
        return model.stateless_call(trainable, non_trainable, t, training=False)[0]

    tv = [v.value for v in model.trainable_variables]
    ntv = [v.value for v in model.non_trainable_variables]
    x_device = jax.device_put(x)
    passes = _spy_on_jit(lambda: cw.compute_cam(model, x, layer="block5_conv3"))  # traces the pass
    maps = cw.compute_cam(model, x, layer="block5_conv3")
    assert maps.shape == (batch, 14, 14) and np.isfinite(maps).all(), maps.shape
    same = np.abs(cw.compute_cam(model, x_device, layer="block5_conv3") - maps).max()
    assert same < 1e-4, f"the batch on the device gave other maps than the NumPy batch: {same}"
    from camwidget.explain import Explainer
    from camwidget.methods import METHODS

    explainer = Explainer(model, layer="block5_conv3")  # the pass alone, without the checks around it
    info, output, _ = explainer.resolve(explainer.layout(x.shape[1:]))
    every_top = np.full(batch, -1, np.int32)

    def pass_alone() -> None:
        explainer.engine.capture_maps(x_device, info, every_top, output, "auto", METHODS["gradcam"].formula)

    print(
        f"camwidget on {jax.devices()[0].device_kind} ({jax.default_backend()}), jax {jax.__version__}, keras {keras.__version__}",
        file=sys.stderr,
    )
    if breakdown:  # where compute_cam's time goes besides the device's work
        top = jax.device_put(every_top)
        device_time = {
            "(device) forward, back to back": _back_to_back(lambda: forward(tv, ntv, x_device)),
            "(device) camwidget's pass, back to back": _back_to_back(lambda: passes[0](tv, ntv, x_device, top, [])),
        }
        for step, seconds in _timeline(lambda: cw.compute_cam(model, x_device, layer="block5_conv3"), rounds).items():
            print(f"  one compute_cam, {step:52s} {seconds * 1e3:7.3f} ms", file=sys.stderr)
        return device_time | medians(
            {
                "(host) look at the model (sync)": explainer.engine.sync,
                "(step) the pass, synchronous": pass_alone,
                "(step) Explainer.explain": lambda: explainer.explain(x_device),
                "(step) compute_cam": lambda: cw.compute_cam(model, x_device, layer="block5_conv3"),
            },
            rounds,
        )
    return medians(
        {
            "forward (jax.jit, NumPy in and out)": lambda: np.asarray(forward(tv, ntv, x)),
            "forward (jax.jit, input on device)": lambda: np.asarray(forward(tv, ntv, x_device)),
            "camwidget compute_cam (NumPy batch)": lambda: cw.compute_cam(model, x, layer="block5_conv3"),
            "camwidget compute_cam (batch on device)": lambda: cw.compute_cam(model, x_device, layer="block5_conv3"),
            "(camwidget's pass alone, batch on device)": pass_alone,
        },
        rounds,
    )


def _spy_on_jit(run: Callable[[], object]) -> list[Any]:
    """The jitted gradient passes that run() compiles (camwidget's own, to time them on the device alone)."""
    import jax

    found, real = [], jax.jit

    def spy(fun: Any, *args: Any, **kwargs: Any) -> Any:
        jitted = real(fun, *args, **kwargs)
        if "gradient_pass" in getattr(fun, "__qualname__", ""):
            found.append(jitted)
        return jitted

    jax.jit = spy
    try:
        run()
    finally:
        jax.jit = real
    return found


def _back_to_back(call: Callable[[], Any], calls: int = 10, rounds: int = 5) -> float:
    """Seconds per call with `calls` dispatched before waiting: the device's time, the host's hidden."""
    import jax

    jax.block_until_ready(call())
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        jax.block_until_ready([call() for _ in range(calls)])
        times.append((time.perf_counter() - start) / calls)
    return statistics.median(times)


def _timeline(call: Callable[[], object], rounds: int) -> dict[str, float]:
    """Median time between the steps of one compute_cam: entering the pass, dispatching it, the look at the
    model made while it runs, its results back, the return."""
    from camwidget.engines import jax_autodiff, portable

    marks: dict[str, float] = {}
    capture_maps, values = portable.PortableEngine.capture_maps, jax_autodiff._values

    def timed_capture_maps(self: Any, *args: Any, **kwargs: Any) -> Any:
        marks["capture_maps called"] = time.perf_counter()
        check = kwargs.get("while_running")
        if check is not None:

            def while_running() -> None:
                marks["pass dispatched, look at the model"] = time.perf_counter()
                check()
                marks["look done, wait for the results"] = time.perf_counter()

            kwargs["while_running"] = while_running
        result = capture_maps(self, *args, **kwargs)
        marks["results back, normalise"] = time.perf_counter()
        return result

    def timed_values(model: Any) -> Any:
        marks["read the weights, dispatch"] = time.perf_counter()
        return values(model)

    portable.PortableEngine.capture_maps, jax_autodiff._values = timed_capture_maps, timed_values
    steps: dict[str, list[float]] = {}
    try:
        for i in range(rounds + 2):
            marks.clear()
            start = time.perf_counter()
            call()
            order = [
                ("compute_cam called", start),
                *sorted(marks.items(), key=lambda kv: kv[1]),
                ("returned", time.perf_counter()),
            ]
            if i < 2:  # warm-up
                continue
            for (name, at), (_, then) in zip(order, order[1:]):
                steps.setdefault(name, []).append(then - at)
    finally:
        portable.PortableEngine.capture_maps, jax_autodiff._values = capture_maps, values
    return {name: statistics.median(times) for name, times in steps.items()}


def pytorch_grad_cam(batch: int, rounds: int) -> dict[str, float]:
    import numpy as np
    import torch
    import torchvision
    from _timing import medians
    from pytorch_grad_cam import GradCAM

    device = "cuda" if torch.cuda.is_available() else "cpu"
    torch.manual_seed(0)
    model = torchvision.models.vgg16(weights=None).to(device).eval()
    x = torch.from_numpy(np.random.default_rng(0).uniform(-2, 2, (batch, 3, 224, 224)).astype("float32")).to(device)
    cam = GradCAM(model=model, target_layers=[model.features[29]])
    maps = cam(input_tensor=x, targets=None)  # None: each image's top class
    assert maps.shape == (batch, 224, 224) and np.isfinite(maps).all(), maps.shape

    def forward() -> None:
        with torch.no_grad():
            model(x)
        if device == "cuda":
            torch.cuda.synchronize()

    name = torch.cuda.get_device_name() if device == "cuda" else "CPU"
    print(f"pytorch-grad-cam on {name}, torch {torch.__version__}", file=sys.stderr)
    return medians(
        {
            "torch forward (no_grad, input on device)": forward,
            "pytorch-grad-cam GradCAM": lambda: cam(input_tensor=x, targets=None),
        },
        rounds,
    )


SIDES = {"camwidget": camwidget_on_jax, "pytorch-grad-cam": pytorch_grad_cam}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--breakdown", action="store_true", help="camwidget only: time each step of compute_cam")
    parser.add_argument("--child", choices=sorted(SIDES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        extra = {"breakdown": True} if args.breakdown else {}
        print("RESULT " + json.dumps(SIDES[args.child](args.batch, args.rounds, **extra)))
        return
    print(f"VGG16 (random weights), last convolution, batch {args.batch}, 224x224, median of {args.rounds} rounds")
    results: dict[str, float] = {}
    for side in ["camwidget"] if args.breakdown else SIDES:
        env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--child", side, "--batch", str(args.batch), "--rounds", str(args.rounds)]
        command += ["--breakdown"] if args.breakdown else []
        done = subprocess.run(command, env=env, capture_output=True, text=True)
        print(
            "\n".join(
                line
                for line in done.stderr.splitlines()
                if " on " in line and "," in line or line.startswith("  one compute_cam")
            )
        )
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if not lines:
            print(f"{side}: failed\n{done.stdout[-1500:]}\n{done.stderr[-3000:]}")
            continue
        results.update(json.loads(lines[-1][len("RESULT ") :]))
    print(f"\n  {'':42s} {'median ms':>10s} {'images/s':>10s}")
    for name, seconds in results.items():
        print(f"  {name:42s} {seconds * 1e3:10.2f} {args.batch / seconds:10.0f}")
    print()
    for kind, floor in (
        ("NumPy batch", "forward (jax.jit, NumPy in and out)"),
        ("batch on device", "forward (jax.jit, input on device)"),
    ):
        ours = results.get(f"camwidget compute_cam ({kind})")
        if ours and floor in results:
            peer = results.get("pytorch-grad-cam GradCAM")
            print(
                f"camwidget compute_cam ({kind}): {ours / results[floor]:.2f}x {floor}"
                + (f"; {peer / ours:.1f}x the images per second of pytorch-grad-cam" if peer else "")
            )


if __name__ == "__main__":
    main()
