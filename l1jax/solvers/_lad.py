"""Least absolute deviations ``min_b mean |y - X b|``: quantile regression at the median."""

from __future__ import annotations

from typing import Literal

from jaxtyping import ArrayLike, Real

from l1jax.solvers import _quantile
from l1jax.solvers._result import SolverResult

__all__ = ["lad"]


def lad(
    X: Real[ArrayLike, "n d"],
    y: Real[ArrayLike, " n"],
    *,
    method: Literal["auto", "ipm", "pfn", "admm", "irls"] = "auto",
    tol: float | None = None,
    max_steps: int | None = None,
    polish: bool = True,
) -> SolverResult:
    """Least absolute deviations regression ``min_b (1/n) sum_i |y_i - x_i^T b|``.

    Since ``|r| = 2 rho_{1/2}(r)`` this is :func:`quantile_regression` at ``tau = 0.5`` with the
    objective doubled; the methods (``"auto"``, ``"ipm"``, ``"pfn"``, ``"admm"``, ``"irls"``),
    their guarantees and the vertex polish are described there. No intercept is added: append a
    column of ones to ``X`` for one.

    Derivatives: ``coef`` and ``objective`` are differentiable in ``X`` and ``y`` by the rule of
    :func:`quantile_regression`: the derivative of ``coef = X_B^{-1} y_B`` on the basis ``B`` of
    the first ``d`` linearly independent rows in increasing ``|y - X coef|`` (exact ties in the
    lower row's favour), zero for every other row; at a degenerate vertex (ties, repeated
    observations), the derivative of that basis's vertex.

    Args:
      X: design, shape ``(n, d)`` with ``n >= d``.
      y: responses, shape ``(n,)``.
      method: ``"auto"`` (default: ``"pfn"`` for large ``n``, else ``"ipm"``), ``"ipm"``,
        ``"pfn"`` (Portnoy-Koenker preprocessing), ``"admm"`` or ``"irls"``.
      tol: relative duality gap that certifies convergence; default ``1e-10`` (float64) or
        ``1e-6`` (float32).
      max_steps: iteration cap; default per method.
      polish: try the exact LP vertex through the ``d`` smallest residuals.

    Returns:
      :class:`SolverResult` with ``coef`` of shape ``(d,)``, ``objective = mean|y - X coef|`` and
      the certificate ``gap`` (relative, as in :func:`quantile_regression`).

    Raises:
      ValueError: as :func:`quantile_regression`.

    References:
      - Boscovich, R. J. (1757); Laplace, P.-S. (1788): the method of least absolute deviations.
      - Portnoy, S. and Koenker, R. (1997). The Gaussian hare and the Laplacian tortoise.
        Statistical Science 12(4).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import solvers
      >>> X = jnp.stack([jnp.ones(50), jnp.linspace(-1.0, 1.0, 50)], axis=1)
      >>> y = (X @ jnp.array([1.0, 2.0])).at[::10].add(100.0)  # 10% gross outliers
      >>> fit = solvers.lad(X, y)
      >>> print([round(float(c), 3) for c in fit.coef], bool(fit.converged))
      [1.0, 2.0] True
    """
    X, y, tau, tol, method, max_steps = _quantile.prepare("lad", X, y, 0.5, method, tol, max_steps)
    res = _quantile.solve_and_warn("lad", X, y, tau, tol, method, max_steps, polish)
    return res._replace(objective=2 * res.objective)
