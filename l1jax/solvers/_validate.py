"""Input checks shared by the solvers: shapes and dtypes at trace time, values when concrete."""

from __future__ import annotations

import functools
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from l1jax._checks import as_array, check_real, is_concrete

METHODS_NOTE = "expected one of {}, got method={!r}."


def float_arrays(fn: str, **arrays: ArrayLike) -> list[jax.Array]:
    """Converts to jax arrays of one common floating dtype (integers promote to default float).

    float16, bfloat16, bool and complex arrays are refused: an LP certificate at 3 significant
    digits certifies nothing.
    """
    arrs = []
    for name, a in arrays.items():
        arr = as_array(a, name, fn=fn, expected="an array of real numbers")
        ok = jnp.issubdtype(arr.dtype, jnp.integer) or arr.dtype in (jnp.float32, jnp.float64)
        if not ok:
            kind = "float32/float64 or integer"
            raise TypeError(
                f"{fn}: {name} must be {kind} (the LP certificates need at least float32), "
                f"got dtype {arr.dtype}."
            )
        arrs.append(arr)
    dtype = jnp.result_type(*arrs, float)  # a weak float: integers become the default float
    return [a if a.dtype == dtype else a.astype(dtype) for a in arrs]


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


def check_finite(fn: str, **arrays: jax.Array) -> None:
    """Raises on NaN/inf in the concrete ``arrays`` (traced ones are documented to give NaN).

    One jitted pass for all of them on whatever devices they live: ``sum(a * 0)`` is NaN exactly
    when ``a`` has a NaN or an inf (a vectorised float sum, ~8x faster on the CPU than counting
    ``~isfinite``, 7 ms for 1e7 float64 entries); the count for the message is taken only then.
    """
    concrete = {name: a for name, a in arrays.items() if is_concrete(a)}
    if not concrete:
        return
    flags = np.asarray(_nonfinite_flags(tuple(concrete.values())))
    for (name, value), flag in zip(concrete.items(), flags.tolist(), strict=True):
        if np.isnan(flag):
            bad = int(_count_nonfinite(value))
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


def real_array(fn: str, name: str, value: ArrayLike) -> jax.Array:
    """``jnp.asarray`` for a real hyperparameter array, naming the argument when it is not one."""
    check_real(name, value, fn=fn, scalar=False)
    return jnp.asarray(value)


def _spread(value) -> bool:
    """Whether ``value`` is a ``jax.Array`` laid out over more than one device."""
    return isinstance(value, jax.Array) and len(value.sharding.device_set) > 1


@jax.jit
def _nonfinite_flags(values):
    """NaN for each of ``values`` that holds a NaN or an inf, else 0 (``inf * 0`` is NaN)."""
    return jnp.stack([jnp.sum(v * 0).astype(jnp.float32) for v in values])


@jax.jit
def _count_nonfinite(value):
    return jnp.sum(~jnp.isfinite(value))


@functools.partial(jax.jit, static_argnums=1)
def _gram(M, rows):
    M = M.astype(jnp.promote_types(M.dtype, float))
    return M @ M.T if rows else M.T @ M


def check_full_rank(fn: str, name: str, M: jax.Array, along: str = "column") -> None:
    """Raises when a concrete ``M`` has an all-zero column (row) or dependent columns (rows).

    The test runs in float64 on the host (``O(n d^2)``, a few percent of a solve) on the
    normalised Gram matrix: exact rank deficiency (duplicated or all-zero columns, a column that
    is a combination of others) shows as an eigenvalue at round-off level, while an
    ill-conditioned but full-rank design passes.
    """
    if not is_concrete(M):
        return
    on_device = _spread(M) or (isinstance(M, jax.Array) and M.dtype == jnp.float64)
    if on_device:
        # Sharded over devices (or processes), or float64 already: the Gram matrix is reduced
        # where the data lie (one jitted product, several times NumPy's on a large X) and only
        # the d x d result comes to the host.
        G = np.asarray(_gram(M, along == "row"), np.float64)
        norms = np.sqrt(np.diag(G))
    else:
        Mn = np.asarray(M, np.float64)
        Mn = Mn.T if along == "row" else Mn
        norms = np.linalg.norm(Mn, axis=0)
    zero = np.flatnonzero(norms == 0)
    if zero.size:
        raise ValueError(
            f"{fn}: {name} must have full {along} rank, got all-zero {along}(s) {zero.tolist()}."
        )
    if on_device:
        G = G / np.outer(norms, norms)
    else:
        Mn = Mn / norms
        G = Mn.T @ Mn
    evals, evecs = np.linalg.eigh(G)
    d = G.shape[0]
    floor = 1e3 * d * np.finfo(np.float64).eps * evals[-1]
    if evals[0] <= floor:
        combo = np.flatnonzero(np.abs(evecs[:, 0]) > 1e-3).tolist()
        raise ValueError(
            f"{fn}: {name} must have full {along} rank, got rank {int(np.sum(evals > floor))} "
            f"< {d} {along}s ({along}s {combo} are linearly dependent)."
        )


def warn_unconverged(fn: str, res, tol: float, method: str, dtype) -> None:
    """Warns, outside ``jit``, when a result is not certified; names the remedies."""
    if not is_concrete(res):
        return
    conv = np.asarray(res.converged)
    if conv.all():
        return
    from l1jax.solvers._result import ConvergenceWarning

    gap = np.asarray(res.gap)[~conv]
    remedy = (
        "enable float64 (jax.config.update('jax_enable_x64', True)), or try another method"
        if jnp.finfo(dtype).bits < 64
        else "raise max_steps, or try another method"
    )
    warnings.warn(
        f"{fn}(method={method!r}): {int((~conv).sum())} of {conv.size} solve(s) not certified "
        f"(relative gap {float(np.max(gap)):.2e} > tol {tol:.1e}); {remedy}.",
        ConvergenceWarning,
        stacklevel=3,
    )
