"""Shared timing helpers: medians of interleaved rounds, so slow drifts of a noisy machine hit all alike."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def medians(candidates: dict[str, Callable[[], object]], rounds: int, warmup: int = 2) -> dict[str, float]:
    """Median seconds per call of each candidate, measured round-robin over `rounds` rounds."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def table(title: str, results: dict[str, float], baseline: str, note: dict[str, str] | None = None) -> None:
    base = results[baseline]
    print(f"\n{title}")
    print(f"  {'':34s} {'median ms':>10s} {'x forward':>10s}")
    for name, seconds in results.items():
        extra = f"  {note[name]}" if note and name in note else ""
        print(f"  {name:34s} {seconds * 1e3:10.1f} {seconds / base:10.2f}{extra}")
