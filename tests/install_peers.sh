#!/usr/bin/env sh
# What the tests need that `pip install -e ".[dev]"` cannot put in:
#
# PyTorch for the torch-backend run, its CPU build: PyPI's Linux wheel brings 3 GB of CUDA libraries. Tried in
# order: a local CPU wheel (this project's CI machines keep one), PyTorch's CPU index, PyPI.
#
# JAX for the JAX-backend run, in a folder of its own (tests/.jax, put on PYTHONPATH by that run only):
# TensorFlow imports jax whenever it can (tensorflow/lite/python/util.py), and a kernel that imported it would
# no longer show what a Binder kernel costs. Its dependencies (numpy, scipy, ml_dtypes, opt_einsum) come with
# TensorFlow.
#
# The peer tools the tests and benchmarks compare against:
# xplique 2.0.2 and Quantus 0.6.0 pin an older TensorFlow and the full (GUI) opencv, so they go in without their
# own dependencies, and what they import is installed here (tested on TensorFlow 2.21: their Deletion,
# Insertion, GradCAM and PixelFlipping import and run). What they import goes in first: pip's resolver then never
# sees their pins, so it prints no "ERROR: pip's dependency resolver ..." about them.
set -e
export PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
python -c "import torch" 2>/dev/null \
    || pip install -q "torch==2.13.0+cpu" 2>/dev/null \
    || pip install -q --retries 1 --timeout 30 torch --index-url https://download.pytorch.org/whl/cpu 2>/dev/null \
    || pip install -q torch
JAX_DIR="$(dirname "$0")/.jax"
python -c "import sys; sys.path.insert(0, '$JAX_DIR'); import jax" 2>/dev/null \
    || pip install -q --no-deps --upgrade --target "$JAX_DIR" "jax>=0.4.30" "jaxlib>=0.4.30"
python -c "import xplique, quantus" 2>/dev/null || {
    pip install -q pandas cachetools einops scikit-learn "tensorflow-probability==0.25.0"
    pip install -q --no-deps "xplique==2.0.2" "quantus==0.6.0"
}
# pytorch-grad-cam, the CAM library most people use, for the methods' peer tests (tests/test_methods_peers.py):
# its own requirements pull torchvision (a CUDA build of several GB beside this CPU torch), which it imports only
# for image helpers the tests never call; the tests stand in for that import.
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('pytorch_grad_cam') is None)" 2>/dev/null \
    || pip install -q --no-deps "grad-cam==1.5.7" "ttach==0.0.3"
# torch-cam, the peer for SS-CAM, IS-CAM and Smooth Grad-CAM++ (tests/test_methods_peers.py); its requirements
# (torch, numpy, pillow, matplotlib) are in already, and pip would otherwise reach for another torch build.
python -c "import importlib.util as u, sys; sys.exit(u.find_spec('torchcam') is None)" 2>/dev/null \
    || pip install -q --no-deps "torchcam==0.5.0"
