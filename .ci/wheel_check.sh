#!/usr/bin/env bash
# The release as a user installs it: sdist and wheel built and checked, the wheel (not editable) installed into
# a fresh venv (system site packages, so TensorFlow is not downloaded again; --no-deps), and tests/wheel_smoke.py
# run from a temporary folder outside the source tree.
set -euo pipefail
cd "$(dirname "$0")/.."
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
python -m build --sdist --wheel --outdir "$work/dist" . >/dev/null
twine check --strict "$work"/dist/*
python -m venv --system-site-packages "$work/venv"
"$work/venv/bin/pip" install -q --no-deps --force-reinstall "$work"/dist/camwidget-*.whl
cp tests/wheel_smoke.py "$work/"
(cd "$work" && PYTHONPATH= "$work/venv/bin/python" -P wheel_smoke.py "$work/venv")
