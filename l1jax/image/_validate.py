"""Trace-time checks shared by the image metrics and losses: each names the argument."""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import TypeVar

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from l1jax._checks import as_array, check_scalar
from l1jax.image._filters import window_size

_Choice = TypeVar("_Choice", bound=str)


class FloatDTypeError(ValueError, TypeError):
    """A non-floating image.

    A ``ValueError`` like every other bad image argument here, and a ``TypeError`` like the
    dtype errors of :mod:`l1jax.losses`, so either ``except`` clause catches it.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> image.psnr(jnp.zeros((4, 4, 1), jnp.int32), jnp.zeros((4, 4, 1), jnp.int32))
      Traceback (most recent call last):
      ...
      l1jax.image._validate.FloatDTypeError: psnr: a must be a floating-point image ... int32.
    """


def as_image(x: ArrayLike, name: str, fn: str) -> jax.Array:
    """``x`` as a floating ``(..., H, W, C)`` array."""
    x = as_array(
        x,
        name,
        fn=fn,
        expected="a floating-point image with values in [0, max_val]",
        error=FloatDTypeError,
    )
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise FloatDTypeError(
            f"{fn}: {name} must be a floating-point image with values in [0, max_val], "
            f"got dtype {x.dtype}."
        )
    if x.ndim < 3:
        raise ValueError(
            f"{fn}: {name} must have shape (..., H, W, C) (a grey image has C=1), got "
            f"{name}.shape={x.shape}."
        )
    return x


def image_pair(
    a: ArrayLike, b: ArrayLike, names: tuple[str, str], fn: str
) -> tuple[jax.Array, jax.Array]:
    """Two non-empty images of one shape, cast to their common dtype."""
    a = as_image(a, names[0], fn)
    b = as_image(b, names[1], fn)
    for name, x in zip(names, (a, b), strict=True):
        # A mean over no pixel is NaN: refuse it here rather than return NaN.
        if 0 in x.shape[-3:]:
            raise ValueError(
                f"{fn}: {name} must have at least one pixel and one channel (H, W, C >= 1), "
                f"got {name}.shape={x.shape}."
            )
    if a.shape != b.shape:
        raise ValueError(
            f"{fn}: {names[0]} and {names[1]} must have the same shape, got "
            f"{names[0]}.shape={a.shape} and {names[1]}.shape={b.shape}."
        )
    dtype = jnp.result_type(a, b)
    return a.astype(dtype), b.astype(dtype)


def check_max_val(max_val: ArrayLike, fn: str) -> None:
    """A real scalar ``> 0`` (traced values pass the range check)."""
    check_scalar("max_val", max_val, low=0.0, low_open=True, fn=fn)


def check_constants(k1: ArrayLike, k2: ArrayLike, fn: str) -> None:
    # k1, k2 > 0 keep both SSIM denominators >= (k max_val)^2 > 0, so constant patches have
    # finite values and gradients.
    check_scalar("k1", k1, low=0.0, low_open=True, fn=fn)
    check_scalar("k2", k2, low=0.0, low_open=True, fn=fn)


def static_positive(value, name: str, fn: str) -> float:
    """A Python number ``> 0`` that sets a static shape (a window), so it cannot be traced."""
    if isinstance(value, jax.core.Tracer):
        raise ValueError(
            f"{fn}: {name} sets the window size, so it must be a concrete number, got a traced "
            f"value."
        )
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real | np.ndarray | jax.Array)
        or getattr(value, "ndim", 0) != 0  # np.ndim's: numbers have none
    ):
        raise ValueError(f"{fn}: {name} must be a positive number, got {name}={value!r}.")
    out = float(np.asarray(value))
    if not (math.isfinite(out) and out > 0):
        raise ValueError(f"{fn}: {name} must be a finite number > 0, got {name}={value!r}.")
    return out


def filter_size_for(filter_size, sigma: float, fn: str) -> int:
    """``filter_size``, or skimage's ``2 int(3.5 sigma + 0.5) + 1`` when it is None."""
    if filter_size is None:
        return window_size(sigma)
    if (
        isinstance(filter_size, bool)
        or not isinstance(filter_size, numbers.Integral)
        or filter_size < 1
        or filter_size % 2 == 0
    ):
        raise ValueError(
            f"{fn}: filter_size must be a positive odd integer or None (derived from sigma), "
            f"got filter_size={filter_size!r}."
        )
    return int(filter_size)


def check_fits(shape: tuple[int, ...], size: int, fn: str, what: str) -> None:
    """Raises unless the ``(H, W)`` of ``shape`` are both at least ``size``."""
    h, w = shape[-3], shape[-2]
    if h < size or w < size:
        raise ValueError(
            f"{fn}: images must be at least {size}x{size} pixels ({what}), got an image of "
            f"H x W = {h} x {w} (shape {shape})."
        )


def scale_weights(weights, name: str, fn: str, *, length: int | None = None) -> tuple[float, ...]:
    """Static non-negative exponents, one per scale."""
    if isinstance(weights, jax.core.Tracer) or (
        isinstance(weights, Sequence) and any(isinstance(w, jax.core.Tracer) for w in weights)
    ):
        raise ValueError(
            f"{fn}: {name} sets the number of scales, so it must be concrete, got a traced value."
        )
    try:
        arr = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        arr = np.full((), np.nan)  # a string, say: refused below with the same message
    if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)) or np.any(arr < 0):
        raise ValueError(
            f"{fn}: {name} must be a non-empty 1-D sequence of finite numbers >= 0, got "
            f"{name}={weights!r}."
        )
    if length is not None and arr.size != length:
        raise ValueError(
            f"{fn}: {name} must have one entry per scale ({length}), got {arr.size} "
            f"({name}={weights!r})."
        )
    return tuple(float(w) for w in arr)


def integer(value, name: str, fn: str, *, minimum: int) -> int:
    """A Python (or NumPy) integer ``>= minimum``; bools are refused."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Integral | np.integer)
        or value < minimum
    ):
        raise ValueError(f"{fn}: {name} must be an integer >= {minimum}, got {name}={value!r}.")
    return int(value)


def choice(value: _Choice, name: str, options: tuple[str, ...], fn: str) -> _Choice:
    if value not in options:
        raise ValueError(f"{fn}: {name} must be one of {options}, got {name}={value!r}.")
    return value
