"""Do the demo notebooks fit Binder? Each runs in a fresh kernel inside a memory cgroup capped like Binder's.

    sudo python benchmarks/bench_binder_memory.py [--limit-gb 2] [--only 01]

mybinder.org caps a whole container (Jupyter server + kernel) at 2 GB. This runs every notebook offline
(random stand-in) and, for 01 and 02, with real-weights files in the layout Keras downloads (written here
from random-weight VGG16s), each in a cgroup with that cap: a notebook that does not fit is killed, as on
Binder. Printed: the kernel's own peak (VmHWM, which also counts TensorFlow's shared libraries) and the
cgroup's peak (what the cap is checked against; it leaves out library pages another process loaded first).
The process driving the kernel (nbclient) is inside the cgroup too, standing in for the Jupyter server.

Needs root and cgroup v1 or v2 with the memory controller. Exit status 1 when a notebook was killed or failed.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

RUNNER = textwrap.dedent(
    """
    import sys, nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(sys.argv[1], as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(
        "print('PEAK_MB', int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1]) // 1024)"))
    NotebookClient(nb, timeout=900, kernel_name="python3", resources={"metadata": {"path": sys.argv[2]}}).execute()
    print(next(o["text"] for o in nb.cells[-1].outputs if "PEAK_MB" in o.get("text", "")).strip())
    """
)


class MemoryCgroup:
    """A memory cgroup with a hard limit (v1 ``memory.limit_in_bytes`` or v2 ``memory.max``)."""

    def __init__(self, limit_bytes: int) -> None:
        v1, v2 = Path("/sys/fs/cgroup/memory"), Path("/sys/fs/cgroup")
        if v1.is_dir():
            self.path, self.limit_file, self.peak_file = (
                v1 / f"camwidget-{os.getpid()}",
                "memory.limit_in_bytes",
                "memory.max_usage_in_bytes",
            )
        elif (v2 / "cgroup.controllers").exists():
            self.path, self.limit_file, self.peak_file = v2 / f"camwidget-{os.getpid()}", "memory.max", "memory.peak"
        else:
            sys.exit("no memory cgroup here (needs /sys/fs/cgroup/memory or cgroup v2)")
        self.path.mkdir()
        (self.path / self.limit_file).write_text(str(limit_bytes))

    def reset(self) -> None:
        if self.peak_file == "memory.max_usage_in_bytes":
            (self.path / self.peak_file).write_text("0")

    def peak_mb(self) -> int:
        return int((self.path / self.peak_file).read_text()) // 2**20

    def enter(self) -> None:  # run in the child, before exec
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def remove(self) -> None:
        self.path.rmdir()


def write_weights(folder: Path) -> dict[str, str]:
    """VGG16 weights files in keras.applications' h5 layout, from random-weight models (nothing downloads)."""
    code = f"""
        import h5py, keras
        from keras.src.legacy.saving.legacy_h5_format import save_weights_to_hdf5_group
        for top, name in [(True, "vgg16.h5"), (False, "vgg16_notop.h5")]:
            with h5py.File({str(folder)!r} + "/" + name, "w") as f:
                save_weights_to_hdf5_group(f, keras.applications.VGG16(weights=None, include_top=top))
    """
    subprocess.run([sys.executable, "-c", textwrap.dedent(code)], check=True, capture_output=True)
    return {
        "CAMWIDGET_VGG16_WEIGHTS": str(folder / "vgg16.h5"),
        "CAMWIDGET_VGG16_NOTOP_WEIGHTS": str(folder / "vgg16_notop.h5"),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit-gb", type=float, default=2.0)
    parser.add_argument("--only", default="", help="run only notebooks whose name starts with this")
    args = parser.parse_args()
    cgroup = MemoryCgroup(int(args.limit_gb * 2**30))
    failures = 0
    try:
        with tempfile.TemporaryDirectory() as tmp:
            weights = write_weights(Path(tmp))
            cases = []
            for notebook in sorted((ROOT / "notebooks").glob(f"{args.only}*.ipynb")):
                cases.append((notebook, "offline", {}))
                variable = {"01": "CAMWIDGET_VGG16_WEIGHTS", "02": "CAMWIDGET_VGG16_NOTOP_WEIGHTS"}.get(
                    notebook.name[:2]
                )
                if variable:
                    cases.append((notebook, "weights file", {variable: weights[variable]}))
            print(f"limit {args.limit_gb:.1f} GB")
            print(f"{'notebook':32s} {'weights':14s} {'kernel VmHWM':>13s} {'cgroup peak':>12s}  result")
            for notebook, label, env in cases:
                cgroup.reset()
                done = subprocess.run(
                    [sys.executable, "-c", RUNNER, str(notebook), tmp],
                    env={**os.environ, **env},
                    preexec_fn=cgroup.enter,
                    capture_output=True,
                    text=True,
                )
                kernel = next((line.split()[1] for line in done.stdout.splitlines() if line.startswith("PEAK_MB")), "-")
                result = (
                    "fits" if done.returncode == 0 else ("killed" if "DeadKernelError" in done.stderr else "failed")
                )
                failures += result != "fits"
                kernel = f"{kernel} MB" if kernel != "-" else kernel
                print(f"{notebook.name:32s} {label:14s} {kernel:>13s} {cgroup.peak_mb():>9d} MB  {result}", flush=True)
                if result == "failed":
                    print(textwrap.indent(done.stderr[-2000:], "    "))
    finally:
        cgroup.remove()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
