"""Lasso ``min_b (1/2n)||y - X b||^2 + lam ||b||_1``: FISTA, ISTA and ADMM on the Gram matrix.

Every method works on ``G = X^T X / n`` and ``c = X^T y / n`` (formed once, ``O(n d^2)``), so a
step costs ``O(d^2)`` whatever ``n``; the set-up is ``O(d^3)`` (one eigendecomposition, used
for the step size, the ADMM solves and a round-off-safe objective), which
suits ``d`` up to a few thousand. A support polish solves the KKT system on the current support
exactly and stops the solver when the KKT conditions certify it.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from l1jax._checks import check_range
from l1jax._lapack import unbatched
from l1jax.solvers import _implicit
from l1jax.solvers import _validate as v
from l1jax.solvers._result import SolverResult

__all__ = ["lasso", "LASSO_METHODS"]

LASSO_METHODS = ("fista", "ista", "admm")
_DEFAULT_STEPS = {"fista": 20_000, "ista": 100_000, "admm": 20_000}
_INNER = 10  # steps between convergence checks and polish attempts
_ADAPT_UNTIL = 200  # ADMM outer rounds with residual balancing


def _soft(x, t):
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0)


def _smooth_obj(sqrt_evals, evecs, c, b):
    """``(1/2n)||y - X b||^2 - ||y||^2 / (2n)`` with the quadratic as a sum of squares.

    ``b^T G b`` evaluated directly can come out negative for ``b`` near the null space of ``G``;
    ``||Lambda^(1/2) V^T b||^2`` cannot, so a wild polish never looks like an improvement.
    """
    return 0.5 * jnp.sum((sqrt_evals * (evecs.T @ b)) ** 2) - c @ b


def _polish(G, c, lam, b):
    """Exact solution of the KKT system on ``support(b)`` with its signs (a candidate only)."""
    on = b != 0
    sgn = jnp.sign(b)
    mask = on[:, None] & on[None, :]
    M = jnp.where(mask, G, 0) + jnp.diag(jnp.where(on, 0.0, 1.0).astype(G.dtype))
    return jnp.linalg.solve(M, jnp.where(on, c - lam * sgn, 0))


def duality_gap(G, c, lam, b, q):
    """Gap between ``P(b)`` and the dual value of the scaled residual (see :func:`lasso`).

    With ``corr = X^T r / n = c - G b`` and ``s = min(1, lam / ||corr||_inf)``, the dual point
    ``theta = s r / n`` is feasible and ``P(b) - D(theta) = q (1 - s)^2 + sum_j (lam |b_j| -
    s b_j corr_j)``, with ``q = ||r||^2 / (2n)``: a sum of non-negative terms, computed without
    cancellation. ``lam`` gets a round-off allowance of ``10 eps ||c||_inf`` so that the least
    squares solution (``lam = 0``) certifies too.
    """
    corr = c - G @ b
    slack = 10 * jnp.finfo(G.dtype).eps * jnp.max(jnp.abs(c))
    s = jnp.minimum(1, (lam + slack) / jnp.maximum(jnp.max(jnp.abs(corr)), jnp.finfo(G.dtype).tiny))
    gap = jnp.maximum(q, 0) * (1 - s) ** 2 + jnp.sum(lam * jnp.abs(b) - s * b * corr)
    return jnp.maximum(gap, 0)


def _keep_best(b, obj, best_b, best_obj):
    better = obj < best_obj
    return jnp.where(better, b, best_b), jnp.where(better, obj, best_obj)


def _run(G, c, yy, lam, tol, max_steps, polish, method, evals, evecs):
    d = G.shape[0]
    dtype = G.dtype
    tiny = jnp.finfo(dtype).tiny
    L = jnp.maximum(evals[-1], tiny)
    sqrt_evals = jnp.sqrt(jnp.maximum(evals, 0))

    def full_obj(b):
        return _smooth_obj(sqrt_evals, evecs, c, b) + lam * jnp.sum(jnp.abs(b))

    def rel_gap(b):
        """Certified relative gap of ``b``; inf when not finite."""
        q = yy / 2 + _smooth_obj(sqrt_evals, evecs, c, b)
        gap = duality_gap(G, c, lam, b, q)
        obj = q + lam * jnp.sum(jnp.abs(b))
        rel = gap / jnp.maximum(obj, jnp.finfo(dtype).eps * jnp.maximum(yy, tiny))
        return jnp.where(jnp.isnan(rel), jnp.inf, rel)

    if method == "admm":
        rho0 = jnp.maximum(jnp.mean(evals), tiny)

        def step(carry):
            b, z, u, rho, _ = carry
            q = evecs.T @ (c + rho * (z - u))
            b = evecs @ (q / (evals + rho))
            z_new = _soft(b + u, lam / rho)
            return b, z_new, u + b - z_new, rho, z

        def check(carry, k):
            b, z, u, rho, z_old = carry
            res_p = jnp.linalg.norm(b - z)
            res_d = rho * jnp.linalg.norm(z - z_old)
            eps_p = tol * jnp.maximum(jnp.maximum(jnp.linalg.norm(b), jnp.linalg.norm(z)), tiny)
            eps_d = tol * jnp.maximum(rho * jnp.linalg.norm(u), tiny)
            adapt = k < _ADAPT_UNTIL * _INNER
            up = adapt & (res_p / eps_p > 10 * res_d / eps_d)
            down = adapt & (res_d / eps_d > 10 * res_p / eps_p)
            f = jnp.where(up, 2.0, jnp.where(down, 0.5, 1.0)).astype(dtype)
            return (b, z, u / f, rho * f, z_old), z

        zero = jnp.zeros((d,), dtype)
        carry0 = (zero, zero, zero, rho0, zero)
    else:
        accelerate = method == "fista"

        def step(carry):
            b, b_prev, t = carry
            t_next = (1 + jnp.sqrt(1 + 4 * t * t)) / 2 if accelerate else t
            yk = b + ((t - 1) / t_next) * (b - b_prev) if accelerate else b
            b_new = _soft(yk - (G @ yk - c) / L, lam / L)
            # Adaptive restart (O'Donoghue and Candes 2015): drop momentum when it points uphill.
            restart = (yk - b_new) @ (b_new - b) > 0
            t_next = jnp.where(restart, jnp.ones_like(t_next), t_next)
            return b_new, jnp.where(restart, b_new, b), t_next

        def check(carry, k):
            return carry, carry[0]

        zero = jnp.zeros((d,), dtype)
        carry0 = (zero, zero, jnp.ones((), dtype))

    def body(st):
        carry, best_b, gap, k = st
        carry = jax.lax.fori_loop(0, _INNER, lambda _, cr: step(cr), carry)
        carry, b = check(carry, k)
        # Keep the point with the smallest certified gap: objectives that differ by round-off
        # cannot rank candidates, their certificates can.
        cands = [b, _polish(G, c, lam, b)] if polish else [b]
        for cb in cands:
            cgap = rel_gap(cb)
            better = cgap < gap
            best_b = jnp.where(better, cb, best_b)
            gap = jnp.where(better, cgap, gap)
        return carry, best_b, gap, k + _INNER

    def cond(st):
        carry, _, gap, k = st
        return (k < max_steps) & ~(gap <= tol) & jnp.all(jnp.isfinite(carry[0]))

    zero = jnp.zeros((d,), dtype)
    init = (carry0, zero, rel_gap(zero), jnp.array(0, jnp.int32))
    _, best_b, gap, k = jax.lax.while_loop(cond, body, init)
    return best_b, k, gap


@functools.partial(jax.jit, static_argnames=("method", "max_steps", "polish"))
def _solve(X, y, lam, tol, *, method, max_steps, polish):
    # unbatched: a vmap on the CPU runs one problem at a time, so no LAPACK call is batched
    # (batched LAPACK calls can deadlock jaxlib 0.10's CPU thread pool, see l1jax._lapack).
    one_problem = functools.partial(
        _solve_problem, method=method, max_steps=max_steps, polish=polish
    )
    return unbatched(one_problem)(X, y, lam, tol)


def _solve_problem(X, y, lam, tol, *, method, max_steps, polish):
    n = X.shape[0]
    G = X.T @ X / n
    c = y @ X / n
    yy = y @ y / n
    evals, evecs = jnp.linalg.eigh(G)

    def one(lam_):
        lam_ = lam_.astype(X.dtype)
        b, k, gap = _run(G, c, yy, lam_, tol, max_steps, polish, method, evals, evecs)
        obj = 0.5 * jnp.mean((y - X @ b) ** 2) + lam_ * jnp.sum(jnp.abs(b))
        return SolverResult(b, obj, k, (gap <= tol) & jnp.all(jnp.isfinite(b)), gap)

    return jax.vmap(unbatched(one))(lam) if lam.ndim == 1 else one(lam)


def lasso(
    X: ArrayLike,
    y: ArrayLike,
    lam: ArrayLike,
    *,
    method: Literal["fista", "ista", "admm"] = "fista",
    tol: float | None = None,
    max_steps: int | None = None,
    polish: bool = True,
) -> SolverResult:
    """Lasso ``min_b (1/(2n)) ||y - X b||^2 + lam ||b||_1`` (scikit-learn's ``Lasso`` objective).

    No intercept is added: centre ``X`` and ``y`` or append a column of ones (then penalised).

    Methods (each jit-compiled, ``vmap``-able over problems and over ``lam``):

    * ``"fista"`` (default): accelerated proximal gradient with step ``1/L``,
      ``L = lambda_max(X^T X / n)``, and adaptive restart. Guarantee:
      ``F(b_k) - F* <= 2 L ||b_0 - b*||^2 / (k + 1)^2`` (Beck and Teboulle 2009).
    * ``"ista"``: proximal gradient, no momentum; ``F(b_k) - F* <= L ||b_0 - b*||^2 / (2k)``.
    * ``"admm"``: split ``b = z``; the b-step solves ``(X^T X / n + rho I) b = ...`` through one
      eigendecomposition, so rho follows residual balancing for free (frozen after 2000 steps).
      Guarantee: converges for any fixed rho > 0 (Boyd et al. 2011, sec. 3.2).

    With ``polish=True`` each check also solves the KKT system exactly on the current support
    with its signs and keeps it when its objective is lower.

    Certificate: every check (each 10 steps) computes the duality gap of the best point with
    the dual point ``theta = s r / n``, the residual scaled into ``||X^T theta||_inf <= lam``
    (``P(b) - D(theta)``, computed as a sum of non-negative terms), and stops once the gap
    relative to the objective is below ``tol``. ``result.gap`` is that relative bound, so
    ``objective - optimum <= gap * objective`` up to round-off, and ``converged`` is
    ``gap <= tol``.

    Derivatives: ``coef`` and ``objective`` are differentiable in ``X``, ``y`` and ``lam``
    (``jax.grad``, ``jax.jvp``, ``jax.jacfwd``, ``jax.jacrev``, ``jax.hessian``, under ``jit``
    and ``vmap``) by implicit differentiation of the KKT conditions on the support of the
    returned solution, not through the iterations. With ``S = {j : coef_j != 0}`` (the support
    the polish uses) and ``s = sign(coef_S)``, ``X_S^T (X_S b_S - y) / n + lam s = 0`` gives
    ``d b_S = -(X_S^T X_S / n)^{-1} (d(X_S^T X_S / n) b_S - d(X_S^T y / n) + s d lam)`` and
    ``d b_j = 0`` off ``S``; so ``d b_S / d y = (X_S^T X_S)^{-1} X_S^T`` and ``d b_S / d lam =
    -n (X_S^T X_S)^{-1} s``. A coefficient exactly at zero is off the support: where one sits on
    the boundary ``|X_j^T (y - X coef)| / n = lam`` (a kink of the path) the derivative is the
    one-sided one with that coefficient held at zero, e.g. every derivative is 0 at
    ``lam = max |X^T y| / n``, where ``coef = 0`` (the derivative from above). An ``X_S`` without
    full column rank (no unique solution) gives inf/NaN. The objective's derivative is its
    formula's through ``coef`` (``d objective / d lam = ||coef||_1``); ``num_steps``,
    ``converged`` and ``gap`` have zero derivatives.

    Args:
      X: design, shape ``(n, d)``.
      y: responses, shape ``(n,)``.
      lam: penalty ``>= 0``, a scalar or a 1-D array (a path, solved in one batched call).
      method: ``"fista"``, ``"ista"`` or ``"admm"``.
      tol: relative duality gap that certifies convergence; default ``1e-10`` (float64) or
        ``1e-6`` (float32).
      max_steps: iteration cap; default 20000 (fista, admm) or 100000 (ista).
      polish: try the exact solution on the current support.

    Returns:
      :class:`SolverResult` with ``coef`` of shape ``(d,)`` (``(len(lam), d)`` for 1-D
      ``lam``), the objective above, ``num_steps``, ``converged`` and ``gap``.

    Raises:
      ValueError: wrong ndim, mismatched rows, empty ``X``, non-finite concrete ``X`` or ``y``,
        negative ``lam``, unknown method. Under ``jit``/``vmap`` non-finite data give NaN with
        ``converged=False``.

    References:
      Tibshirani, R. (1996). Regression shrinkage and selection via the lasso. JRSS B 58(1).
      Beck, A. and Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm.
        SIAM J. Imaging Sci. 2(1).
      O'Donoghue, B. and Candes, E. (2015). Adaptive restart for accelerated gradient schemes.
        Found. Comput. Math. 15(3).
      Boyd, S. et al. (2011). Distributed optimization and statistical learning via ADMM.
    """
    fn = "lasso"
    v.check_method(fn, method, LASSO_METHODS)
    X, y = v.float_arrays(fn, X=X, y=y)
    v.check_ndim(fn, "X", X, 2)
    v.check_ndim(fn, "y", y, 1)
    v.check_rows(fn, "X", X, "y", y)
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(
            f"{fn}: X must have at least one row and one column, got X.shape={X.shape}."
        )
    v.check_finite(fn, "X", X)
    v.check_finite(fn, "y", y)
    lam = v.real_array(fn, "lam", lam)
    if lam.ndim > 1:
        raise ValueError(f"{fn}: lam must be a scalar or 1-D, got lam.ndim={lam.ndim}.")
    check_range("lam", lam, low=0.0, fn=fn)
    max_steps = _DEFAULT_STEPS[method] if max_steps is None else max_steps
    v.check_max_steps(fn, max_steps)
    tol = v.default_tol(tol, X.dtype)
    # Solve on stop_gradient-ed data, then attach the implicit derivative of coef.
    lam = lam.astype(X.dtype)
    sg = jax.lax.stop_gradient
    res = _solve(sg(X), sg(y), sg(lam), tol, method=method, max_steps=max_steps, polish=polish)
    v.warn_unconverged(fn, res, tol, method, X.dtype)
    coef, objective = _implicit.lasso(X, y, lam, res.coef, res.objective)
    return res._replace(coef=coef, objective=objective)
