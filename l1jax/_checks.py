"""Trace-time checks for hyperparameters: each names the argument, what was expected and got."""

from __future__ import annotations

import jax
import jax.numpy as jnp
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
        left = "(" if low_open or low is None else "["
        right = ")" if high_open or high is None else "]"
        interval = f"{left}{lo}, {hi}{right}"
        prefix = f"{fn}: " if fn else ""
        raise ValueError(f"{prefix}{name} must lie in {interval}, got {name}={value!r}.")
    return value


class HyperparameterTypeError(TypeError, ValueError):
    """A hyperparameter or input that is not a number or an array of numbers (a string, None).

    A ``TypeError``, and a ``ValueError`` like the range errors of :func:`check_range`, so code
    that caught the ``ValueError`` NumPy raised before the type was checked keeps working.
    """


def describe(value) -> str:
    """A short description of ``value`` for an error message: dtype and shape of arrays."""
    if isinstance(value, jax.Array | np.ndarray):
        return f"an array of dtype {value.dtype} and shape {value.shape}"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def as_array(value, name: str, *, fn: str, expected: str, error: type = TypeError) -> jax.Array:
    """``jnp.asarray(value)``, or ``error`` naming ``fn``, the argument and what was expected."""
    try:
        return jnp.asarray(value)
    except (TypeError, ValueError, OverflowError):
        prefix = f"{fn}: " if fn else ""
        raise error(f"{prefix}{name} must be {expected}, got {name}={describe(value)}.") from None


def check_real(name: str, value, *, fn: str = "", scalar: bool = True) -> tuple[int, ...]:
    """Checks that ``value`` is a real number (``scalar``) or an array of real numbers.

    Integers and floats pass, concrete or traced; strings, None, bools and complex numbers raise
    :class:`HyperparameterTypeError`, and with ``scalar`` anything but a 0-d value raises
    ``ValueError``. Works on tracers (only dtype and shape are read).

    Returns:
      The shape of ``value``.
    """
    prefix = f"{fn}: " if fn else ""
    expected = "a real number" if scalar else "a real number or an array of real numbers"
    shape: tuple[int, ...] | None
    if isinstance(value, jax.Array | np.ndarray | np.generic):
        dtype, shape = value.dtype, tuple(value.shape)
    elif isinstance(value, bool):
        dtype, shape = np.dtype(bool), ()
    elif isinstance(value, int | float):
        dtype, shape = np.dtype(type(value)), ()
    elif value is None or isinstance(value, str | bytes):
        dtype, shape = None, None
    else:
        try:
            arr = jnp.asarray(value)
            dtype, shape = arr.dtype, arr.shape
        except (TypeError, ValueError, OverflowError):
            dtype, shape = None, None
    if (
        dtype is None
        or shape is None  # exactly when dtype is None
        or not (jnp.issubdtype(dtype, jnp.integer) or jnp.issubdtype(dtype, jnp.floating))
    ):
        raise HyperparameterTypeError(
            f"{prefix}{name} must be {expected}, got {name}={describe(value)}."
        )
    if scalar and shape != ():
        raise ValueError(
            f"{prefix}{name} must be a scalar (a number or a 0-d array), got {name}.shape={shape}."
        )
    return shape


def check_scalar(name: str, value, *, fn: str = "", **interval) -> None:
    """:func:`check_real` with ``scalar=True``, then :func:`check_range` with ``interval``."""
    check_real(name, value, fn=fn)
    check_range(name, value, fn=fn, **interval)


def check_broadcasts_to(
    name: str, shape: tuple[int, ...], target: tuple[int, ...], *, fn: str, what: str
) -> None:
    """Raises ``ValueError`` unless ``shape`` broadcasts to ``target`` without enlarging it."""
    try:
        ok = np.broadcast_shapes(tuple(shape), tuple(target)) == tuple(target)
    except ValueError:
        ok = False
    if not ok:
        prefix = f"{fn}: " if fn else ""
        raise ValueError(
            f"{prefix}{name}.shape={tuple(shape)} does not broadcast to the shape "
            f"{tuple(target)} of {what}."
        )
