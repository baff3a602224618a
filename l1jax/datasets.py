"""Synthetic data sets (``data: {name: contaminated_linear, ...}`` in a runner config).

A data set builder is ``(key, **kwargs) -> (examples, truth)``: ``examples`` is a dict of arrays
sharing a leading example axis, ``truth`` what generated them. Builders are pure and traceable
in their numeric keywords, so a sweep can vmap over, e.g., the contamination fraction.
"""

from __future__ import annotations

from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np

from l1jax._checks import check_range
from l1jax._lapack import unbatched

__all__ = ["contaminated_linear", "conditioned_design", "lad_problem", "lasso_problem"]


def contaminated_linear(
    key: jax.Array,
    *,
    n: int,
    d: int,
    fraction: float = 0.0,
    noise: float = 0.1,
    outliers: Literal["response", "leverage"] = "response",
    outlier_scale: float = 10.0,
    leverage: float = 10.0,
) -> tuple[dict[str, jax.Array], dict[str, jax.Array]]:
    """Linear regression ``y = x . w + b + noise * e`` with a fraction of gross outliers.

    ``x ~ N(0, I_d)``, ``w ~ N(0, I_d)``, ``b ~ N(0, 1)``, ``e ~ N(0, 1)``. The outliers are the
    ``round(fraction * n)`` rows of lowest rank in a random permutation, so for one key the
    clean rows are identical across fractions and the outlier sets are nested. Outlier rows
    follow a second linear model ``w_out = w + outlier_scale * u`` (``u`` a random unit vector):

    * ``outliers="response"``: ``y = x . w_out + b + noise * e`` (gross errors in ``y`` only);
    * ``outliers="leverage"``: also ``x <- leverage * x`` (high-leverage rows).

    Outliers that agree on a direction pull least squares by about ``fraction * outlier_scale``
    (unstructured ones would mostly add variance); least absolute deviations resists response
    outliers on a Gaussian design but not leverage points.

    Args:
      key: PRNG key.
      n: number of rows, >= 1.
      d: number of features, >= 1.
      fraction: share of outlier rows, in [0, 1] (may be traced).
      noise: standard deviation of the clean noise, >= 0.
      outliers: ``"response"`` or ``"leverage"``.
      outlier_scale: distance ``|w_out - w|``, >= 0.
      leverage: the factor (> 0) on the outlier rows' ``x`` with ``outliers="leverage"``.

    Returns:
      ``({"x": (n, d), "y": (n,), "outlier": (n,) bool}, {"weight": (d,), "bias": ()})``.

    Examples:
      >>> import jax
      >>> from l1jax import datasets
      >>> data, truth = datasets.contaminated_linear(jax.random.key(0), n=100, d=3, fraction=0.1)
      >>> print(data["x"].shape, data["y"].shape, int(data["outlier"].sum()), truth["weight"].shape)
      (100, 3) (100,) 10 (3,)
    """
    if outliers not in ("response", "leverage"):
        raise ValueError(
            "contaminated_linear: outliers must be 'response' or 'leverage', got "
            f"outliers={outliers!r}"
        )
    for name, value in (("n", n), ("d", d)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(
                f"contaminated_linear: {name} must be an int >= 1, got {name}={value!r}"
            )
    check_range("fraction", fraction, low=0.0, high=1.0, fn="contaminated_linear")
    check_range("noise", noise, low=0.0, fn="contaminated_linear")
    check_range("outlier_scale", outlier_scale, low=0.0, fn="contaminated_linear")
    check_range("leverage", leverage, low=0.0, low_open=True, fn="contaminated_linear")
    # One draw for everything: each separate threefry draw costs compile time under vmap.
    sizes = (n * d, d, 1, n, d, n)
    z = jnp.split(jax.random.normal(key, (sum(sizes),)), np.cumsum(sizes)[:-1])
    x = z[0].reshape(n, d)
    w, b, e, u = z[1], z[2][0], noise * z[3], z[4]
    w_out = w + outlier_scale * u / jnp.linalg.norm(u)
    rank = jnp.argsort(jnp.argsort(z[5]))  # a uniformly random permutation of 0..n-1
    outlier = rank < jnp.round(jnp.asarray(fraction) * n)
    if outliers == "leverage":
        x = jnp.where(outlier[:, None], leverage * x, x)
    y = jnp.where(outlier, x @ w_out, x @ w) + b + e
    return {"x": x, "y": y, "outlier": outlier}, {"weight": w, "bias": b}


# Under vmap on a CPU these run one matrix at a time (l1jax._lapack: batched QRs of jaxlib 0.10
# can deadlock XLA:CPU's thread pool); the cost is nil at the sizes they are used at.
_orthonormal_basis = unbatched(lambda a: jnp.linalg.qr(a)[0])


def _check_shape(fn: str, n: int, d: int) -> None:
    for name, value in (("n", n), ("d", d)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{fn}: {name} must be an int >= 1, got {name}={value!r}")
    if d > n:
        raise ValueError(f"{fn}: needs n >= d, got n={n}, d={d}")


def conditioned_design(key: jax.Array, *, n: int, d: int, kappa: float) -> jax.Array:
    """An ``(n, d)`` design whose ``X^T X / n`` has condition number ``kappa``.

    ``X = sqrt(n) Q1 diag(sqrt(ev)) Q2^T`` with random orthonormal ``Q1`` (``n x d``) and ``Q2``
    (``d x d``), so that ``X^T X / n`` has the eigenvalues ``ev_j = kappa^(-j/(d-1))``,
    ``j = 0..d-1``, spread geometrically from 1 down to ``1 / kappa``.

    Args:
      key: PRNG key.
      n: rows, >= d.
      d: columns, >= 1.
      kappa: the condition number, >= 1 (may be traced).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import datasets
      >>> X = datasets.conditioned_design(jax.random.key(0), n=50, d=4, kappa=100.0)
      >>> ev = jnp.linalg.eigvalsh(X.T @ X / 50)
      >>> print(X.shape, round(float(ev[-1] / ev[0]), 1))  # the condition number of X^T X / n
      (50, 4) 100.0
    """
    _check_shape("conditioned_design", n, d)
    check_range("kappa", kappa, low=1.0, fn="conditioned_design")
    k1, k2 = jax.random.split(key)
    q1 = _orthonormal_basis(jax.random.normal(k1, (n, d)))
    q2 = _orthonormal_basis(jax.random.normal(k2, (d, d)))
    ev = jnp.asarray(kappa, q1.dtype) ** (-jnp.arange(d) / max(d - 1, 1))
    return jnp.sqrt(n) * (q1 * jnp.sqrt(ev)[None, :]) @ q2.T


def lad_problem(
    key: jax.Array, *, n: int, d: int, kappa: float, noise: float
) -> tuple[jax.Array, jax.Array]:
    """A least-absolute-deviations problem: ``y = X w + noise * Laplace``, ``w ~ N(0, I)``, on a
    :func:`conditioned_design`.

    Returns:
      ``(X, y)`` of shapes ``(n, d)`` and ``(n,)``.

    Examples:
      >>> import jax
      >>> from l1jax import datasets
      >>> X, y = datasets.lad_problem(jax.random.key(0), n=50, d=4, kappa=10.0, noise=0.1)
      >>> print(X.shape, y.shape)
      (50, 4) (50,)
    """
    check_range("noise", noise, low=0.0, fn="lad_problem")
    kx, kw, ke = jax.random.split(key, 3)
    X = conditioned_design(kx, n=n, d=d, kappa=kappa)
    w = jax.random.normal(kw, (d,))
    return X, X @ w + noise * jax.random.laplace(ke, (n,))


def lasso_problem(
    key: jax.Array, *, n: int, d: int, kappa: float, noise: float, lam_ratio: float
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """A lasso problem ``min ||y - X w||^2 / (2n) + lam ||w||_1``: ``y = X w + noise * N(0, 1)``
    on a :func:`conditioned_design` and ``lam = lam_ratio * ||X^T y||_inf / n``.

    ``||X^T y||_inf / n`` is the smallest ``lam`` whose solution is 0, so ``lam_ratio`` in
    ``(0, 1)`` sets how sparse the solution is.

    Returns:
      ``(X, y, lam)``.

    Examples:
      >>> import jax
      >>> from l1jax import datasets
      >>> X, y, lam = datasets.lasso_problem(
      ...     jax.random.key(0), n=50, d=20, kappa=10.0, noise=0.1, lam_ratio=0.1
      ... )
      >>> print(X.shape, y.shape, lam.shape)
      (50, 20) (50,) ()
    """
    check_range("noise", noise, low=0.0, fn="lasso_problem")
    check_range("lam_ratio", lam_ratio, low=0.0, low_open=True, fn="lasso_problem")
    kx, kw, ke = jax.random.split(key, 3)
    X = conditioned_design(kx, n=n, d=d, kappa=kappa)
    w = jax.random.normal(kw, (d,))
    y = X @ w + noise * jax.random.normal(ke, (n,))
    return X, y, lam_ratio * jnp.max(jnp.abs(X.T @ y)) / n
