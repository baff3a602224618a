"""Quantile regression ``min_b mean(rho_tau(y - X b))``: interior point, ADMM and IRLS.

All three share :func:`_vertex`, the classical LP polish: the optimum of a quantile regression
is (generically) a vertex where ``d`` residuals are exactly zero. From an approximate solution we
take the ``d`` smallest residuals as the basis, solve that square system exactly and check the
dual certificate ``X_S^T a = -sum_{i not in S} psi_tau(r_i) x_i`` with ``a`` in ``[tau-1, tau]``.
A certified vertex is the exact LP optimum (up to round-off), so the solvers stop there.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jax.typing import ArrayLike

from l1jax._checks import check_range
from l1jax.solvers import _validate as v
from l1jax.solvers._result import SolverResult

__all__ = ["quantile_regression", "QUANTILE_METHODS"]

QUANTILE_METHODS = ("ipm", "admm", "irls")
_DEFAULT_STEPS = {"ipm": 100, "admm": 20_000, "irls": 500}
_ADMM_INNER = 10  # ADMM steps between residual checks, rho updates and polish attempts
_ADMM_ADAPT_UNTIL = 200  # outer rounds with residual balancing; fixed rho afterwards
_IPM_ETA = 0.9995  # fraction of the step to the boundary


def _pinball_sum(r: jax.Array, tau: jax.Array) -> jax.Array:
    return jnp.sum(jnp.maximum(tau * r, (tau - 1) * r))


def _cert_tol(dtype) -> float:
    return 10 * float(jnp.finfo(dtype).eps) ** 0.5


def smallest_k(a: jax.Array, k: int) -> jax.Array:
    """Indices of ``k`` smallest entries of ``a >= 0``, in index order.

    Bisection on the bit patterns (monotone for non-negative floats) finds the k-th smallest value
    exactly in ``bits`` passes over ``a``; on CPU this is ~20x faster than ``lax.top_k``.
    """
    itype = jnp.int64 if a.dtype == jnp.float64 else jnp.int32
    bits = jax.lax.bitcast_convert_type(a, itype)

    def halve(_, lohi):
        lo, hi = lohi
        mid = lo + (hi - lo) // 2
        enough = jnp.sum(bits <= mid) >= k
        return jnp.where(enough, lo, mid), jnp.where(enough, mid, hi)

    lo = jnp.array(-1, itype)
    _, hi = jax.lax.fori_loop(0, jnp.iinfo(itype).bits, halve, (lo, jnp.max(bits)))
    return jnp.nonzero(bits <= hi, size=k, fill_value=0)[0]


def weighted_gram(X: jax.Array, block: int = 4096):
    """Returns ``D -> X^T diag(D) X``, accumulated over row blocks that stay in cache.

    On CPU this is 3-5x faster than one ``(X.T * D) @ X`` for ``n`` in the 1e5 range.
    """
    n, d = X.shape
    m = n // block
    if m < 2:
        return lambda D: (X * D[:, None]).T @ X
    head = X[: m * block].reshape(m, block, d)
    tail = X[m * block :]

    def gram(D):
        dh = D[: m * block].reshape(m, block)
        acc = (tail * D[m * block :, None]).T @ tail

        def add(i, acc):
            return acc + (head[i] * dh[i][:, None]).T @ head[i]

        return jax.lax.fori_loop(0, m, add, acc)

    return gram


def _vertex(X, y, tau, r):
    """Vertex through the ``d`` smallest ``|r|``: (coef, sum objective, certified optimal)."""
    d = X.shape[1]
    idx = smallest_k(jnp.abs(r), d)
    # One LU for both solves: two independent LAPACK factorisations can run on concurrent XLA
    # threads, and SciPy's multithreaded OpenBLAS (which jaxlib calls on CPU) can deadlock then.
    lu = jsl.lu_factor(X[idx])
    bv = jsl.lu_solve(lu, y[idx])
    rv = y - X @ bv
    in_basis = jnp.zeros(r.shape, bool).at[idx].set(True)
    psi = jnp.where(in_basis, 0.0, jnp.where(rv > 0, tau, tau - 1)).astype(X.dtype)
    av = jsl.lu_solve(lu, -(psi @ X), trans=1)
    eps = _cert_tol(X.dtype)
    certified = jnp.all((av >= tau - 1 - eps) & (av <= tau + eps))  # False on NaN
    obj = _pinball_sum(rv, tau)
    obj = jnp.where(jnp.isfinite(obj), obj, jnp.inf)
    return bv, obj, certified


def _keep_best(b, obj, best_b, best_obj):
    better = obj < best_obj
    return jnp.where(better, b, best_b), jnp.where(better, obj, best_obj)


def _ipm(X, y, tau, tol, max_steps, polish):
    """Mehrotra predictor-corrector on the bounded dual LP (Frisch-Newton, Portnoy-Koenker).

    Dual: ``max_a y^T a  s.t.  X^T a = (1 - tau) X^T 1,  0 <= a <= 1``; ``b`` is its multiplier.
    """
    n, d = X.shape
    dtype = X.dtype
    tiny = jnp.finfo(dtype).tiny
    xtx = X.T @ X
    b0 = jsl.cho_solve(jsl.cho_factor(xtx), X.T @ y)
    r0 = y - X @ b0
    delta = jnp.maximum(jnp.mean(jnp.abs(r0)), tiny)
    a0 = jnp.full((n,), 1 - tau, dtype)
    rhs_eq = (1 - tau) * jnp.sum(X, axis=0)
    jitter = jnp.finfo(dtype).eps * jnp.eye(d, dtype=dtype)
    gram = weighted_gram(X)

    def body(st):
        a, b, r, z, w, best_b, best_obj, k, _, _ = st
        s = 1 - a
        rp = rhs_eq - a @ X
        rd = r - w + z
        D = 1 / (w / s + z / a)
        M = gram(D)
        chol = jsl.cho_factor(M + jnp.trace(M) / d * jitter)

        def newton(r3, r4):
            h = rd + r3 / a - r4 / s
            db = jsl.cho_solve(chol, (D * h) @ X - rp)
            da = D * (h - X @ db)
            return da, db, (r3 - z * da) / a, (r4 + w * da) / s

        def steps(da, dz, dw):
            ap = jnp.minimum(v.max_step(a, da), v.max_step(s, -da))
            ad = jnp.minimum(v.max_step(z, dz), v.max_step(w, dw))
            return ap, ad

        da, db, dz, dw = newton(-a * z, -s * w)
        ap, ad = steps(da, dz, dw)
        mu = (a @ z + s @ w) / (2 * n)
        mu_aff = ((a + ap * da) @ (z + ad * dz) + (s - ap * da) @ (w + ad * dw)) / (2 * n)
        sigma = (mu_aff / mu) ** 3
        da, db, dz, dw = newton(sigma * mu - a * z - da * dz, sigma * mu - s * w + da * dw)
        ap, ad = steps(da, dz, dw)
        a = a + _IPM_ETA * ap * da
        b = b + _IPM_ETA * ad * db
        z = z + _IPM_ETA * ad * dz
        w = w + _IPM_ETA * ad * dw

        r = y - X @ b
        best_b, best_obj = _keep_best(b, _pinball_sum(r, tau), best_b, best_obj)
        certified = jnp.array(False)
        if polish:
            bv, objv, certified = _vertex(X, y, tau, r)
            best_b, best_obj = _keep_best(bv, objv, best_b, best_obj)
        # Weak duality: X^T (a - (1 - tau)) = 0 and 0 <= a <= 1 make y^T (a - (1 - tau)) a
        # lower bound on the optimum.
        gap = best_obj - y @ (a - (1 - tau))
        small_gap = gap <= tol * jnp.maximum(best_obj, tiny)
        return a, b, r, z, w, best_b, best_obj, k + 1, certified, small_gap

    def cond(st):
        a, b, _, z, w, _, _, k, certified, small_gap = st
        finite = jnp.all(jnp.isfinite(b)) & jnp.isfinite(jnp.sum(a) + jnp.sum(z) + jnp.sum(w))
        return (k < max_steps) & ~certified & ~small_gap & finite

    init = (
        a0,
        b0,
        r0,
        jnp.maximum(-r0, 0) + delta,
        jnp.maximum(r0, 0) + delta,
        b0,
        _pinball_sum(r0, tau),
        jnp.array(0, jnp.int32),
        jnp.array(False),
        jnp.array(False),
    )
    *_, best_b, best_obj, k, certified, small_gap = jax.lax.while_loop(cond, body, init)
    return best_b, best_obj, k, certified | small_gap


def _admm(X, y, tau, tol, max_steps, polish):
    """ADMM on ``min sum rho_tau(z)  s.t.  z = y - X b`` with one QR of ``X`` for every rho.

    The b-update is least squares in ``range(X)``, ``X b = Q Q^T (y - z - u)``, which does not
    depend on rho: residual balancing changes rho for free.
    """
    n, d = X.shape
    dtype = X.dtype
    tiny = jnp.finfo(dtype).tiny
    Q, R = jnp.linalg.qr(X)
    c0 = Q.T @ y
    r0 = y - Q @ c0
    rho0 = 1 / jnp.maximum(jnp.mean(jnp.abs(r0)), tiny)

    def admm_step(carry):
        c, z, u, rho = carry
        c = Q.T @ (y - z - u)
        xb = Q @ c
        vv = y - xb - u
        z = vv - jnp.clip(vv, (tau - 1) / rho, tau / rho)
        u = u + xb + z - y
        return c, z, u, rho, xb

    def body(st):
        c, z, u, rho, best_b, best_obj, k, _, _ = st
        c, z, u, rho = jax.lax.fori_loop(
            0, _ADMM_INNER - 1, lambda _, cr: admm_step(cr)[:4], (c, z, u, rho)
        )
        z_old = z
        c, z, u, rho, xb = admm_step((c, z, u, rho))
        res_p = jnp.linalg.norm(xb + z - y)
        res_d = rho * jnp.linalg.norm(Q.T @ (z - z_old))
        eps_p = tol * jnp.maximum(jnp.maximum(jnp.linalg.norm(xb), jnp.linalg.norm(z)), tiny)
        eps_d = tol * jnp.maximum(rho * jnp.linalg.norm(u), tiny)
        small_res = (res_p <= eps_p) & (res_d <= eps_d)
        # Residual balancing (Boyd et al. 2011, sec. 3.4.1); the scaled dual u follows rho.
        adapt = k < _ADMM_ADAPT_UNTIL * _ADMM_INNER
        up = adapt & (res_p / eps_p > 10 * res_d / eps_d)
        down = adapt & (res_d / eps_d > 10 * res_p / eps_p)
        scale = jnp.where(up, 2.0, jnp.where(down, 0.5, 1.0)).astype(dtype)
        rho, u = rho * scale, u / scale

        b = jsl.solve_triangular(R, c)
        r = y - X @ b
        best_b, best_obj = _keep_best(b, _pinball_sum(r, tau), best_b, best_obj)
        certified = jnp.array(False)
        if polish:
            bv, objv, certified = _vertex(X, y, tau, r)
            best_b, best_obj = _keep_best(bv, objv, best_b, best_obj)
        return c, z, u, rho, best_b, best_obj, k + _ADMM_INNER, certified, small_res

    def cond(st):
        c, z, *_, k, certified, small_res = st
        finite = jnp.all(jnp.isfinite(c)) & jnp.all(jnp.isfinite(z))
        return (k < max_steps) & ~certified & ~small_res & finite

    b0 = jsl.solve_triangular(R, c0)
    init = (
        c0,
        r0,
        jnp.zeros_like(y),
        rho0,
        b0,
        _pinball_sum(r0, tau),
        jnp.array(0, jnp.int32),
        jnp.array(False),
        jnp.array(False),
    )
    *_, best_b, best_obj, k, certified, small_res = jax.lax.while_loop(cond, body, init)
    return best_b, best_obj, k, certified | small_res


def _irls(X, y, tau, tol, max_steps, polish):
    """MM iteration of Hunter and Lange (2000): weighted least squares on a perturbed loss."""
    n, d = X.shape
    dtype = X.dtype
    tiny = jnp.finfo(dtype).tiny
    b0 = jsl.cho_solve(jsl.cho_factor(X.T @ X), X.T @ y)
    r0 = y - X @ b0
    # The perturbation trades accuracy of the MM fixed point for conditioning; polish recovers
    # the exact vertex, so a relative floor of sqrt(tol) suffices.
    eps = jnp.maximum(jnp.sqrt(tol) * jnp.mean(jnp.abs(r0)), tiny)
    lin = (2 * tau - 1) * jnp.sum(X, axis=0)
    jitter = jnp.finfo(dtype).eps * jnp.eye(d, dtype=dtype)
    gram = weighted_gram(X)

    def body(st):
        b, best_b, best_obj, prev_obj, k, _, _ = st
        r = y - X @ b
        wt = 1 / (jnp.abs(r) + eps)
        M = gram(wt)
        b = jsl.cho_solve(jsl.cho_factor(M + jnp.trace(M) / d * jitter), (wt * y) @ X + lin)
        r = y - X @ b
        obj = _pinball_sum(r, tau)
        best_b, best_obj = _keep_best(b, obj, best_b, best_obj)
        certified = jnp.array(False)
        if polish:
            bv, objv, certified = _vertex(X, y, tau, r)
            best_b, best_obj = _keep_best(bv, objv, best_b, best_obj)
        stalled = jnp.abs(prev_obj - obj) <= tol * jnp.maximum(obj, tiny)
        return b, best_b, best_obj, obj, k + 1, certified, stalled

    def cond(st):
        b, *_, k, certified, stalled = st
        return (k < max_steps) & ~certified & ~stalled & jnp.all(jnp.isfinite(b))

    obj0 = _pinball_sum(r0, tau)
    init = (b0, b0, obj0, obj0, jnp.array(0, jnp.int32), jnp.array(False), jnp.array(False))
    _, best_b, best_obj, _, k, certified, stalled = jax.lax.while_loop(cond, body, init)
    return best_b, best_obj, k, certified | stalled


_SOLVERS = {"ipm": _ipm, "admm": _admm, "irls": _irls}


@functools.partial(jax.jit, static_argnames=("method", "max_steps", "polish"))
def _solve(X, y, tau, tol, *, method, max_steps, polish):
    n = X.shape[0]

    def one(t):
        b, obj, k, ok = _SOLVERS[method](X, y, t.astype(X.dtype), tol, max_steps, polish)
        return SolverResult(b, obj / n, k, ok & jnp.all(jnp.isfinite(b)))

    # X-only work (factorisations, least-squares start) stays unbatched under this vmap.
    return jax.vmap(one)(tau) if tau.ndim == 1 else one(tau)


def prepare(fn, X, y, tau, method, tol, max_steps):
    """Checks and converts the inputs shared by :func:`quantile_regression` and ``lad``."""
    v.check_method(fn, method, QUANTILE_METHODS)
    X, y = v.float_arrays(fn, X=X, y=y)
    v.check_ndim(fn, "X", X, 2)
    v.check_ndim(fn, "y", y, 1)
    v.check_rows(fn, "X", X, "y", y)
    n, d = X.shape
    if n < d or d < 1:
        raise ValueError(
            f"{fn}: X must have at least as many rows as columns and at least one column, "
            f"got X.shape={(n, d)}."
        )
    v.check_finite(fn, "X", X)
    v.check_finite(fn, "y", y)
    tau = jnp.asarray(tau)
    if tau.ndim > 1:
        raise ValueError(f"{fn}: tau must be a scalar or 1-D, got tau.ndim={tau.ndim}.")
    check_range("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True, fn=fn)
    max_steps = _DEFAULT_STEPS[method] if max_steps is None else max_steps
    v.check_max_steps(fn, max_steps)
    return X, y, tau, v.default_tol(tol, X.dtype), max_steps


def quantile_regression(
    X: ArrayLike,
    y: ArrayLike,
    tau: ArrayLike,
    *,
    method: str = "ipm",
    tol: float | None = None,
    max_steps: int | None = None,
    polish: bool = True,
) -> SolverResult:
    """Linear quantile regression ``min_b (1/n) sum_i rho_tau(y_i - x_i^T b)``.

    ``rho_tau(r) = max(tau r, (tau - 1) r)`` (the pinball loss, residual ``y - X b`` as in
    scikit-learn). No intercept is added: append a column of ones to ``X`` for one.

    Methods (each jit-compiled, ``vmap``-able over problems and over ``tau``):

    * ``"ipm"`` (default): Mehrotra predictor-corrector interior point on the dual LP
      ``max y^T a s.t. X^T a = (1 - tau) X^T 1, 0 <= a <= 1`` (the Frisch-Newton method). One
      ``d x d`` Cholesky of ``X^T D X`` per step, typically 10-30 steps independent of ``n``.
      Guarantee: the duality gap it tests is a certificate, ``objective - optimum <= gap``.
    * ``"admm"``: ADMM on the split ``z = y - X b`` (z-step: prox of the pinball loss; b-step:
      least squares with one QR of ``X`` computed once). The b-step does not depend on rho, so rho
      follows residual balancing for free (frozen after 2000 steps). Guarantee: converges for any
      fixed rho > 0 (Boyd et al. 2011, sec. 3.2), at a rate that can be slow; cheap steps
      (two products with ``Q``) suit accelerators and many ``tau`` sharing one factor.
    * ``"irls"``: MM iteration of Hunter and Lange (2000), weighted least squares with weights
      ``1 / (|r| + eps)``, ``eps = sqrt(tol) mean|r_0|`` (the eps floor keeps the weights bounded).
      Guarantee: monotone descent to the minimiser of the eps-perturbed loss, within ``O(n eps)``.

    With ``polish=True`` each method also tries, at every check, the LP vertex through the ``d``
    smallest residuals and keeps it when its objective is lower; when its dual certificate
    holds it is the exact optimum and the solver stops (``converged=True``).

    Args:
      X: design, shape ``(n, d)`` with ``n >= d``.
      y: responses, shape ``(n,)``.
      tau: quantile level in ``(0, 1)``, a scalar or a 1-D array of levels.
      method: ``"ipm"``, ``"admm"`` or ``"irls"``.
      tol: relative tolerance (duality gap for ipm, primal/dual residuals for admm, objective
        change for irls); default ``1e-10`` in float64 and ``1e-6`` in float32.
      max_steps: iteration cap; default 100 (ipm), 20000 (admm), 500 (irls).
      polish: try the LP vertex as described above.

    Returns:
      :class:`SolverResult` with ``coef`` of shape ``(d,)`` (``(len(tau), d)`` for 1-D ``tau``),
      ``objective = mean(rho_tau(y - X coef))``, ``num_steps`` and ``converged``.

    Raises:
      ValueError: wrong ndim, mismatched rows, ``n < d``, non-finite concrete ``X`` or ``y``,
        ``tau`` outside ``(0, 1)``, unknown method. Under ``jit``/``vmap`` non-finite data cannot
        be checked: the result is then NaN with ``converged=False``.

    References:
      Koenker, R. and Bassett, G. (1978). Regression quantiles. Econometrica 46(1).
      Portnoy, S. and Koenker, R. (1997). The Gaussian hare and the Laplacian tortoise.
        Statistical Science 12(4).
      Hunter, D. R. and Lange, K. (2000). Quantile regression via an MM algorithm. J. Comput.
        Graph. Stat. 9(1).
      Boyd, S. et al. (2011). Distributed optimization and statistical learning via ADMM.
        Found. Trends Mach. Learn. 3(1).
    """
    X, y, tau, tol, max_steps = prepare(
        "quantile_regression", X, y, tau, method, tol, max_steps
    )
    return _solve(X, y, tau, tol, method=method, max_steps=max_steps, polish=polish)
