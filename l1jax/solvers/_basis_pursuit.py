"""Basis pursuit ``min ||x||_1 s.t. A x = b``: ADMM with a cached projection, interior point.

Both share a vertex polish: an LP vertex of basis pursuit is supported on ``m`` columns, so from
an approximate solution we solve ``A_S x_S = b`` on the ``m`` largest entries and check the dual
certificate ``||A^T nu||_inf <= 1`` with ``A_S^T nu = sign(x_S)``. A certified vertex is optimal.
"""

from __future__ import annotations

import functools
from typing import Literal

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import ArrayLike, Real

from l1jax._lapack import unbatched
from l1jax.solvers import _implicit
from l1jax.solvers import _validate as v
from l1jax.solvers._linalg import smallest_k, weighted_gram
from l1jax.solvers._result import SolverResult

__all__ = ["basis_pursuit", "BASIS_PURSUIT_METHODS"]

BASIS_PURSUIT_METHODS = ("admm", "ipm")
_DEFAULT_STEPS = {"admm": 20_000, "ipm": 100}
_INNER = 10  # ADMM steps between checks
_ADAPT_UNTIL = 200  # ADMM outer rounds with residual balancing
_IPM_ETA = 0.9995


def _keep_best(x, obj, best_x, best_obj):
    better = obj < best_obj
    return jnp.where(better, x, best_x), jnp.where(better, obj, best_obj)


def _dual_gap(A, b, x, nu):
    """Certified relative gap of ``x`` from the dual candidate ``nu``; inf when not finite.

    ``nu`` is scaled into ``||A^T nu||_inf <= 1`` (dual feasible), so ``b^T nu`` bounds the
    optimum from below and ``||x||_1 - b^T nu = sum_j (|x_j| - x_j (A^T nu)_j) + (A x - b)^T nu``:
    non-negative terms plus the infeasibility term. The result is the larger of that gap relative
    to ``||x||_1`` and the relative primal residual ``||A x - b|| / ||b||``.
    """
    tiny = jnp.finfo(A.dtype).tiny
    atnu = nu @ A
    scale = jnp.maximum(1, jnp.max(jnp.abs(atnu)))
    nu, atnu = nu / scale, atnu / scale
    res = A @ x - b
    gap = jnp.sum(jnp.abs(x) - x * atnu) + jnp.abs(res @ nu)
    rel = gap / jnp.maximum(jnp.sum(jnp.abs(x)), tiny)
    infeas = jnp.linalg.norm(res) / jnp.maximum(jnp.linalg.norm(b), tiny)
    rel = jnp.maximum(rel, infeas)
    return jnp.where(jnp.isnan(rel), jnp.inf, rel)


def _vertex(A, b, x):
    """Vertex on the ``m`` largest ``|x|``: ``(x, ||x||_1, its basis dual nu)``."""
    m = A.shape[0]
    absx = jnp.abs(x)
    idx = smallest_k(jnp.max(absx) - absx, m)
    lu = jsl.lu_factor(A[:, idx])  # one factorisation for the primal and the dual solve
    xs = jsl.lu_solve(lu, b)
    eps = 10 * float(jnp.finfo(A.dtype).eps) ** 0.5
    # Entries that vanish on the basis are degenerate; sign 0 keeps them inside [-1, 1].
    sgn = jnp.where(jnp.abs(xs) > eps * jnp.max(jnp.abs(xs)), jnp.sign(xs), 0)
    nu = jsl.lu_solve(lu, sgn, trans=1)
    xv = jnp.zeros_like(x).at[idx].set(xs)
    obj = jnp.sum(jnp.abs(xv))
    return xv, jnp.where(jnp.isfinite(obj), obj, jnp.inf), nu


class _Best:
    """Best point by ``||x||_1`` and its certified gap over every dual candidate seen for it."""

    @staticmethod
    def update(best, A, b, x, nu, polish):
        best_x, best_obj, gap = best
        cands = [(x, jnp.sum(jnp.abs(x)), nu)]
        if polish:
            cands.append(_vertex(A, b, x))
        for cx, cobj, _ in cands:
            better = cobj < best_obj
            gap = jnp.where(better, jnp.inf, gap)
            best_x, best_obj = _keep_best(cx, cobj, best_x, best_obj)
        for *_, cnu in cands:
            gap = jnp.minimum(gap, _dual_gap(A, b, best_x, cnu))
        return best_x, best_obj, gap


def _admm(A, b, tol, max_steps, polish):
    n = A.shape[1]
    dtype = A.dtype
    tiny = jnp.finfo(dtype).tiny
    chol = jsl.cho_factor(A @ A.T)

    def project(w):
        return w - jsl.cho_solve(chol, A @ w - b) @ A

    x0 = jsl.cho_solve(chol, b) @ A  # minimum-norm solution
    rho0 = n / jnp.maximum(jnp.sum(jnp.abs(x0)), tiny)

    def step(carry):
        x, z, u, rho, _ = carry
        x = project(z - u)
        w = x + u
        z_new = jnp.sign(w) * jnp.maximum(jnp.abs(w) - 1 / rho, 0)
        return x, z_new, u + x - z_new, rho, z

    def body(st):
        carry, best, k = st
        carry = jax.lax.fori_loop(0, _INNER, lambda _, cr: step(cr), carry)
        x, z, u, rho, z_old = carry
        res_p = jnp.linalg.norm(x - z)
        res_d = rho * jnp.linalg.norm(z - z_old)
        eps_p = tol * jnp.maximum(jnp.maximum(jnp.linalg.norm(x), jnp.linalg.norm(z)), tiny)
        eps_d = tol * jnp.maximum(rho * jnp.linalg.norm(u), tiny)
        adapt = k < _ADAPT_UNTIL * _INNER
        up = adapt & (res_p / eps_p > 10 * res_d / eps_d)
        down = adapt & (res_d / eps_d > 10 * res_p / eps_p)
        f = jnp.where(up, 2.0, jnp.where(down, 0.5, 1.0)).astype(dtype)
        carry = (x, z, u / f, rho * f, z_old)
        # rho u estimates a subgradient A^T nu of ||x||_1 (the multiplier of x = z).
        nu = jsl.cho_solve(chol, A @ (rho * u))
        best = _Best.update(best, A, b, x, nu, polish)
        return carry, best, k + _INNER

    def cond(st):
        carry, best, k = st
        return (k < max_steps) & ~(best[2] <= tol) & jnp.all(jnp.isfinite(carry[0]))

    zero = jnp.zeros_like(x0)
    best = (x0, jnp.sum(jnp.abs(x0)), jnp.array(jnp.inf, dtype))
    init = ((x0, x0, zero, rho0, x0), best, jnp.array(0, jnp.int32))
    _, (best_x, best_obj, gap), k = jax.lax.while_loop(cond, body, init)
    return best_x, best_obj, k, gap


def _ipm(A, b, tol, max_steps, polish):
    """Mehrotra predictor-corrector on ``min 1^T (p + q) s.t. A (p - q) = b, p, q >= 0``."""
    m, n = A.shape
    dtype = A.dtype
    tiny = jnp.finfo(dtype).tiny
    chol0 = jsl.cho_factor(A @ A.T)
    x0 = jsl.cho_solve(chol0, b) @ A
    delta = jnp.maximum(jnp.mean(jnp.abs(x0)), tiny)
    gram = weighted_gram(A.T)
    # Regularising the normal equations keeps Cholesky alive as p/sp spans 30 decades; the
    # resulting small loss of primal feasibility is undone by projecting candidates below.
    jitter = jnp.finfo(dtype).eps ** 0.75 * jnp.eye(m, dtype=dtype)

    def body(st):
        p, q, nu, sp, sq, best, k = st
        rb = b - A @ (p - q)
        atnu = nu @ A
        rcp = 1 - atnu - sp
        rcq = 1 + atnu - sq
        M = gram(p / sp + q / sq)
        chol = jsl.cho_factor(M + jnp.trace(M) / m * jitter)

        def newton(r1, r2):
            f = (r1 - p * rcp) / sp - (r2 - q * rcq) / sq
            dnu = jsl.cho_solve(chol, rb - A @ f)
            atd = dnu @ A
            dsp, dsq = rcp - atd, rcq + atd
            return (r1 - p * dsp) / sp, (r2 - q * dsq) / sq, dnu, dsp, dsq

        def steps(dp, dq, dsp, dsq):
            ap = jnp.minimum(v.max_step(p, dp), v.max_step(q, dq))
            ad = jnp.minimum(v.max_step(sp, dsp), v.max_step(sq, dsq))
            return ap, ad

        dp, dq, dnu, dsp, dsq = newton(-p * sp, -q * sq)
        ap, ad = steps(dp, dq, dsp, dsq)
        mu = (p @ sp + q @ sq) / (2 * n)
        mu_aff = ((p + ap * dp) @ (sp + ad * dsp) + (q + ap * dq) @ (sq + ad * dsq)) / (2 * n)
        sigma = (mu_aff / mu) ** 3
        dp, dq, dnu, dsp, dsq = newton(
            sigma * mu - p * sp - dp * dsp, sigma * mu - q * sq - dq * dsq
        )
        ap, ad = steps(dp, dq, dsp, dsq)
        p, q = p + _IPM_ETA * ap * dp, q + _IPM_ETA * ap * dq
        nu, sp, sq = nu + _IPM_ETA * ad * dnu, sp + _IPM_ETA * ad * dsp, sq + _IPM_ETA * ad * dsq

        x = p - q
        x = x - jsl.cho_solve(chol0, A @ x - b) @ A
        best = _Best.update(best, A, b, x, nu, polish)
        return p, q, nu, sp, sq, best, k + 1

    def cond(st):
        p, q, nu, *_, best, k = st
        finite = jnp.isfinite(jnp.sum(p) + jnp.sum(q) + jnp.sum(nu))
        return (k < max_steps) & ~(best[2] <= tol) & finite

    ones = jnp.ones_like(x0)
    init = (
        jnp.maximum(x0, 0) + delta,
        jnp.maximum(-x0, 0) + delta,
        jnp.zeros((m,), dtype),
        ones,
        ones,
        (x0, jnp.sum(jnp.abs(x0)), jnp.array(jnp.inf, dtype)),
        jnp.array(0, jnp.int32),
    )
    *_, (best_x, best_obj, gap), k = jax.lax.while_loop(cond, body, init)
    return best_x, best_obj, k, gap


_SOLVERS = {"admm": _admm, "ipm": _ipm}


@functools.partial(jax.jit, static_argnames=("method", "max_steps", "polish"))
def _solve(A, b, tol, *, method, max_steps, polish):
    # unbatched: a vmap on the CPU runs one problem at a time, so no LAPACK call is batched
    # (batched LAPACK calls can deadlock jaxlib 0.10's CPU thread pool, see l1jax._lapack).
    def one_problem(A, b, tol):
        x, obj, k, gap = _SOLVERS[method](A, b, tol, max_steps, polish)
        return SolverResult(x, obj, k, (gap <= tol) & jnp.all(jnp.isfinite(x)), gap)

    return unbatched(one_problem)(A, b, tol)


def basis_pursuit(
    A: Real[ArrayLike, "m n"],
    b: Real[ArrayLike, " m"],
    *,
    method: Literal["ipm", "admm"] = "ipm",
    tol: float | None = None,
    max_steps: int | None = None,
    polish: bool = True,
) -> SolverResult:
    """Basis pursuit ``min_x ||x||_1  s.t.  A x = b`` for ``A`` of full row rank ``m <= n``.

    Methods (each jit-compiled and ``vmap``-able over problems):

    * ``"ipm"`` (default): Mehrotra predictor-corrector on the LP ``x = p - q``, ``p, q >= 0``;
      one ``m x m`` Cholesky of ``A diag(w) A^T`` per step, typically 10-30 steps. Guarantee:
      the duality gap ``||x||_1 - b^T nu`` it tests bounds ``objective - optimum``.
    * ``"admm"``: ``x``-step is the projection onto ``{A x = b}`` through one Cholesky of
      ``A A^T`` computed once, ``z``-step soft thresholding; rho only scales the threshold, so
      residual balancing is free (frozen after 2000 steps). Guarantee: converges for any fixed
      rho > 0 (Boyd et al. 2011, sec. 6.2); each step is two products with ``A``.

    With ``polish=True`` each check also solves ``A_S x_S = b`` on the ``m`` largest entries and
    keeps it when its l1 norm is lower.

    Certificate: every check scales each dual estimate (the method's own, and the basis dual
    ``A_S^T nu = sign(x_S)`` of the vertex) into ``||A^T nu||_inf <= 1`` and computes the gap
    ``||x||_1 - b^T nu`` of the best point. ``result.gap`` is the larger of that gap relative to
    ``||x||_1`` and the relative primal residual ``||A x - b|| / ||b||``, and ``converged`` is
    ``gap <= tol``: the point is feasible and within ``gap`` of the optimum, up to round-off.

    Derivatives: ``coef`` and ``objective`` are differentiable in ``A`` and ``b`` (``jax.grad``,
    ``jax.jvp``, ``jax.jacfwd``, ``jax.jacrev``, under ``jit`` and ``vmap``) by implicit
    differentiation of ``A_S x_S = b`` on the support of the returned solution, not through the
    iterations. ``S`` is the entries among the ``m`` largest ``|x|`` (ties to the lower index)
    above ``10 sqrt(eps) max |x|`` (the polish's own threshold for a degenerate entry), and the
    derivative is that of the least-squares solution of ``A_S x_S = b``:
    ``dx_S = (A_S^T A_S)^{-1} A_S^T (db - dA_S x_S)``, zero off ``S``. At a non-degenerate
    vertex (``|S| = m``) this is ``A_S^{-1} (db - dA_S x_S)``, the derivative. At a degenerate
    one (``|S| < m``, e.g. an exactly recovered sparse signal) the solution is not
    differentiable; the rule is the derivative along every perturbation that keeps the support
    and signs (``db - dA_S x_S`` in the range of ``A_S``), and projects other perturbations onto
    that range. The objective's derivative is its formula's through ``x``; ``num_steps``,
    ``converged`` and ``gap`` have zero derivatives.

    Args:
      A: measurement matrix, shape ``(m, n)``, full row rank, ``m <= n``.
      b: measurements, shape ``(m,)``.
      method: ``"ipm"`` or ``"admm"``.
      tol: relative tolerance (duality gap for ipm, primal/dual residuals for admm); default
        ``1e-10`` (float64) or ``1e-6`` (float32).
      max_steps: iteration cap; default 100 (ipm) or 20000 (admm).
      polish: try the LP vertex as described above.

    Returns:
      :class:`SolverResult` with ``coef`` the solution ``x`` of shape ``(n,)`` and
      ``objective = ||x||_1``. The returned ``x`` is feasible up to round-off.

    Raises:
      ValueError: wrong ndim, mismatched rows, ``m > n``, non-finite concrete ``A`` or ``b``, a
        concrete ``A`` without full row rank (drop the redundant rows),
        unknown method. Under ``jit``/``vmap`` non-finite data or a rank-deficient ``A`` give
        ``converged=False``.
      TypeError: ``A`` or ``b`` not real numbers, or float16/bfloat16.

    References:
      - Chen, S. S., Donoho, D. L. and Saunders, M. A. (1998). Atomic decomposition by basis
        pursuit. SIAM J. Sci. Comput. 20(1).
      - Mehrotra, S. (1992). On the implementation of a primal-dual interior point method.
        SIAM J. Optim. 2(4).
      - Boyd, S. et al. (2011). Distributed optimization and statistical learning via ADMM.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import solvers
      >>> A = jax.random.normal(jax.random.key(0), (20, 40))
      >>> x_true = jnp.zeros(40).at[jnp.array([3, 7])].set(jnp.array([1.0, -2.0]))
      >>> fit = solvers.basis_pursuit(A, A @ x_true)  # min ||x||_1 s.t. A x = b recovers it
      >>> support = jnp.flatnonzero(jnp.abs(fit.coef) > 1e-3).tolist()
      >>> print(support, round(float(fit.objective), 3), bool(fit.converged))
      [3, 7] 3.0 True
    """
    fn = "basis_pursuit"
    v.check_method(fn, method, BASIS_PURSUIT_METHODS)
    A, b = v.float_arrays(fn, A=A, b=b)
    v.check_ndim(fn, "A", A, 2)
    v.check_ndim(fn, "b", b, 1)
    v.check_rows(fn, "A", A, "b", b)
    m, n = A.shape
    if m > n or m < 1:
        raise ValueError(
            f"{fn}: A must have at least one row and no more rows than columns (m <= n), got "
            f"A.shape={(m, n)}."
        )
    v.check_finite(fn, A=A, b=b)
    v.check_full_rank(fn, "A", A, along="row")
    max_steps = _DEFAULT_STEPS[method] if max_steps is None else max_steps
    v.check_max_steps(fn, max_steps)
    tol = v.default_tol(tol, A.dtype)
    # Solve on stop_gradient-ed data, then attach the implicit derivative of x.
    res = _implicit.solve_attached(
        (A, b),
        tol,
        solve=_solve,
        rule=_implicit.basis_pursuit,
        method=method,
        max_steps=max_steps,
        polish=polish,
    )
    v.warn_unconverged(fn, res, tol, method, A.dtype)
    return res
