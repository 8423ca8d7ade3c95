"""compute_cam on each Keras backend against one compiled forward pass of the same model on that backend.

    python benchmarks/bench_backends.py [--rounds 9] [--batch 8] [--backends tensorflow,jax,torch] [--explorer]

VGG16 (random weights), layer block5_conv3, 224x224. Each backend runs in its own process (Keras picks its
backend at import). The forward floor is the backend's fastest plain inference: tf.function (TensorFlow),
jax.jit of stateless_call (JAX), the eager model under torch.no_grad and torch.compile where it works (torch;
the faster of the two). Prints medians and same-run ratios. --explorer (with --batch 1) also times a class
switch in CAMExplorer at block5_conv3: the layers after it from its cached activations, and the whole model.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def measure(backend: str, rounds: int, batch: int, explorer: bool = False) -> dict[str, float]:
    import _timing  # noqa: F401
    import keras
    import numpy as np
    from _timing import medians

    import camwidget as cw

    keras.utils.set_random_seed(0)
    model = keras.applications.VGG16(weights=None)
    x = np.random.default_rng(0).uniform(-120, 120, (batch, 224, 224, 3)).astype("float32")
    candidates = {}
    if backend == "tensorflow":
        import tensorflow as tf

        forward = tf.function(lambda t: model(t, training=False))
        candidates["forward (tf.function)"] = lambda: forward(tf.constant(x)).numpy()
    elif backend == "jax":
        import jax

        @jax.jit
        def forward(trainable, non_trainable, t):
            return model.stateless_call(trainable, non_trainable, t, training=False)[0]

        tv = [v.value for v in model.trainable_variables]
        ntv = [v.value for v in model.non_trainable_variables]
        candidates["forward (jax.jit)"] = lambda: np.asarray(forward(tv, ntv, x))
    else:
        import torch

        def eager():
            with torch.no_grad():
                return model(keras.ops.convert_to_tensor(x), training=False).cpu().numpy()

        candidates["forward (torch eager, no_grad)"] = eager
        try:
            compiled = torch.compile(lambda t: model(t, training=False))

            def compiled_forward():
                with torch.no_grad():
                    return compiled(keras.ops.convert_to_tensor(x)).cpu().numpy()

            compiled_forward()
            candidates["forward (torch.compile)"] = compiled_forward
        except Exception as exc:  # noqa: BLE001 - reported, the eager floor stays
            print(f"torch.compile did not run this model: {type(exc).__name__}: {str(exc)[:200]}", file=sys.stderr)
    candidates["compute_cam"] = lambda: cw.compute_cam(model, x, layer="block5_conv3")
    if explorer:  # a class switch: the layers after block5_conv3 from its cached activations, or a whole pass
        from camwidget.engines import engine_for

        picture = np.random.default_rng(1).integers(0, 256, (224, 224, 3), dtype=np.uint8)
        ex = cw.CAMExplorer(model, picture, layer="block5_conv3", warm_up=False)
        unseen = iter(range(1, 1000))  # a class not viewed yet each time: nothing cached
        engine = engine_for(model)

        def switch() -> None:
            ex.class_index = next(unseen)
            assert "after-layer pass" in ex.status_text, ex.status_text

        def switch_with_whole_pass() -> None:
            engine.recapture = lambda *args, **kwargs: None  # what JAX and torch did before their tail pass
            try:
                ex.class_index = next(unseen)
            finally:
                del engine.recapture

        candidates["explorer class switch (layers after)"] = switch
        candidates["explorer class switch (whole model)"] = switch_with_whole_pass
    features = keras.Model(model.input, model.get_layer("block5_pool").output)  # for reference, not the floor
    if backend == "jax":
        import jax

        run_features = jax.jit(lambda tv, t: features.stateless_call(tv, [], t, training=False)[0])
        tvf = [v.value for v in features.trainable_variables]
        candidates["(the convolutions alone, jax.jit)"] = lambda: np.asarray(run_features(tvf, x))
    return medians(candidates, rounds)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=9)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--backends", default="tensorflow,jax,torch")
    parser.add_argument("--explorer", action="store_true", help="also time an explorer class switch (use --batch 1)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print("RESULT " + json.dumps(measure(args.child, args.rounds, args.batch, args.explorer)))
        return
    print(f"VGG16 (random weights), block5_conv3, batch {args.batch}, 224x224, median of {args.rounds} rounds")
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        jax_dir = HERE.parent / "tests" / ".jax"  # where tests/install_peers.sh puts JAX
        if backend == "jax" and jax_dir.is_dir():
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(jax_dir), os.environ.get("PYTHONPATH")]))
        command = [
            sys.executable,
            __file__,
            "--child",
            backend,
            "--rounds",
            str(args.rounds),
            "--batch",
            str(args.batch),
        ]
        command += ["--explorer"] if args.explorer else []
        done = subprocess.run(command, env=env, capture_output=True, text=True, cwd=HERE)
        lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
        if not lines:
            print(f"\n{backend}: failed\n{done.stderr[-2000:]}")
            continue
        results = json.loads(lines[-1][len("RESULT ") :])
        floor = min(v for k, v in results.items() if k.startswith("forward"))  # the whole model's forward pass
        print(f"\n{backend}")
        for name, seconds in results.items():
            print(f"  {name:34s} {seconds * 1e3:9.1f} ms  {seconds / floor:5.2f}x the forward floor")


if __name__ == "__main__":
    main()
