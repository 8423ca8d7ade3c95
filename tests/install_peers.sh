#!/usr/bin/env sh
# The peer tools the tests and benchmarks compare against, where `pip install -e ".[dev]"` cannot put them:
# xplique 2.0.2 and Quantus 0.6.0 pin an older TensorFlow and the full (GUI) opencv, so they go in without their
# own dependencies, and what they import is installed here (tested on TensorFlow 2.21: their Deletion,
# Insertion, GradCAM and PixelFlipping import and run).
set -e
pip install -q --no-deps "xplique==2.0.2" "quantus==0.6.0"
pip install -q pandas cachetools einops scikit-learn "tensorflow-probability==0.25.0"
