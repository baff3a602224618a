"""Input checks shared by the solvers: shapes and dtypes at trace time, values when concrete."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from l1jax._checks import is_concrete

METHODS_NOTE = "expected one of {}, got method={!r}."


def float_arrays(fn: str, **arrays: ArrayLike) -> list[jax.Array]:
    """Converts to jax arrays of one common floating dtype (integers promote to default float)."""
    arrs = [jnp.asarray(a) for a in arrays.values()]
    dtype = jnp.result_type(*arrs, jnp.zeros((), dtype=jnp.float32).dtype)
    if not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{fn}: {', '.join(arrays)} must be real numbers, got dtype {dtype}.")
    return [a.astype(dtype) for a in arrs]


def check_ndim(fn: str, name: str, value: jax.Array, ndim: int) -> None:
    if value.ndim != ndim:
        raise ValueError(
            f"{fn}: {name} must be {ndim}-D, got {name}.ndim={value.ndim} "
            f"(shape {tuple(value.shape)})."
        )


def check_rows(fn: str, xname: str, x: jax.Array, yname: str, y: jax.Array) -> None:
    if x.shape[0] != y.shape[0]:
        raise ValueError(
            f"{fn}: {xname} and {yname} must have the same number of rows, got "
            f"{xname}.shape={tuple(x.shape)} and {yname}.shape={tuple(y.shape)}."
        )


def check_finite(fn: str, name: str, value: jax.Array) -> None:
    """Raises on NaN/inf when the value is concrete; traced values are documented to give NaN."""
    if not is_concrete(value):
        return
    bad = int(np.size(value) - np.count_nonzero(np.isfinite(np.asarray(value))))
    if bad:
        raise ValueError(f"{fn}: {name} must be finite, got {bad} NaN or inf entries.")


def check_method(fn: str, method: str, methods: tuple[str, ...]) -> None:
    if method not in methods:
        raise ValueError(f"{fn}: method " + METHODS_NOTE.format(methods, method))


def check_max_steps(fn: str, max_steps: int) -> None:
    if not isinstance(max_steps, int | np.integer) or max_steps < 1:
        raise ValueError(f"{fn}: max_steps must be a positive int, got max_steps={max_steps!r}.")


def default_tol(tol: float | None, dtype) -> float:
    """The default accuracy target: tight in float64, what float32 can reach otherwise."""
    if tol is not None:
        if not np.isfinite(tol) or tol <= 0:
            raise ValueError(f"tol must be a positive float, got tol={tol!r}.")
        return float(tol)
    return 1e-10 if jnp.finfo(dtype).bits >= 64 else 1e-6


def max_step(v: jax.Array, dv: jax.Array) -> jax.Array:
    """Largest ``alpha <= 1`` with ``v + alpha dv >= 0`` for ``v > 0`` (the IPM ratio test)."""
    ratio = jnp.where(dv < 0, -v / jnp.where(dv < 0, dv, -1.0), jnp.inf)
    return jnp.minimum(1.0, jnp.min(ratio))
