"""Trace-time checks for hyperparameters: each names the argument, what was expected and got."""

from __future__ import annotations

import jax
import numpy as np


def is_concrete(value) -> bool:
    """True when ``value`` can be inspected now (not a tracer inside jit/vmap/grad)."""
    return not any(isinstance(v, jax.core.Tracer) for v in jax.tree_util.tree_leaves(value))


def check_range(
    name: str,
    value,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    fn: str = "",
):
    """Raises ``ValueError`` if a concrete ``value`` leaves the interval; tracers pass through."""
    if not is_concrete(value):
        return value
    arr = np.asarray(value, dtype=np.float64)
    ok = np.isfinite(arr)
    if low is not None:
        ok &= arr > low if low_open else arr >= low
    if high is not None:
        ok &= arr < high if high_open else arr <= high
    if arr.size == 0 or not np.all(ok):
        lo = "-inf" if low is None else f"{low}"
        hi = "inf" if high is None else f"{high}"
        interval = f"{'(' if low_open or low is None else '['}{lo}, {hi}{')' if high_open or high is None else ']'}"
        prefix = f"{fn}: " if fn else ""
        raise ValueError(f"{prefix}{name} must lie in {interval}, got {name}={value!r}.")
    return value
