"""Quantile regression ``min_b mean(rho_tau(y - X b))``: interior point, ADMM and IRLS.

Every method solves the equilibrated problem (:func:`l1jax.solvers._linalg.equilibrate`: columns
centred on an intercept column and scaled, ``y`` scaled) and maps the solution back. Each check
tracks the best point seen and a certified bound on its distance to the optimum, the LP duality
gap of :mod:`l1jax.solvers._certify`, from the method's own dual estimate and from the vertex
through the ``d`` smallest residuals. A method stops when that gap is below ``tol``; with
``polish=True`` an uncertified result then finishes with simplex pivots from that vertex.
``converged`` is ``gap <= tol``, never "the objective stopped changing".
"""

from __future__ import annotations

import functools
import math
from typing import Literal

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import ArrayLike, Real

from l1jax._checks import check_range
from l1jax._lapack import unbatched, when
from l1jax.solvers import _implicit
from l1jax.solvers import _validate as v
from l1jax.solvers._certify import (
    feasible_dual,
    gap_of,
    pinball_sum,
    refine,
    relative_gap,
    vertex,
)
from l1jax.solvers._linalg import equilibrate, first_true, prefix_sum, weighted_gram
from l1jax.solvers._result import SolverResult

__all__ = ["quantile_regression", "QUANTILE_METHODS"]

QUANTILE_METHODS = ("auto", "ipm", "pfn", "admm", "irls")
_DEFAULT_STEPS = {"ipm": 100, "pfn": 100, "admm": 20_000, "irls": 500}
_ADMM_INNER = 10  # ADMM steps between residual checks, rho updates and polish attempts
_ADMM_ADAPT_UNTIL = 200  # outer rounds with residual balancing; fixed rho afterwards
_IPM_ETA = 0.9995  # fraction of the step to the boundary
_IPM_VERTEX_GAP = {4: 1e-2, 8: 1e-4}  # relative gap (by itemsize) from which ipm tries vertices
_IPM_VERTEX_AFTER = 10  # ... or from this many steps on, whatever its gap
_PFN_KEEP = 0.8  # rows kept around the pilot's quantile, as a fraction of the pilot's rows
_PFN_FIXUP_ROOM = 0.1  # room for rows moved back into the reduced problem, fraction of M
_PFN_PILOT_TOL = 1e-4  # the pilot only ranks residuals
_PFN_FIXUPS = 3  # reduced solves after the first, at most (quantreg's max.bad.fixups)
_PFN_MIN_N = 20_000  # method="auto" takes the preprocessing from this many rows ...
_PFN_MIN_RATIO = 1.5  # ... when the pilot and reduced problems have at most 2/3 of the rows
_PATH_ROWS = 3.0  # warm window along a tau path: rows, in units of n / (number of levels)
_PATH_WIDEN = 8  # a warm level whose window failed tries one this many times wider


class _Best:
    """The best point seen and its certified gap, updated from iterates and their vertices."""

    @staticmethod
    def init(X, y, tau, chol, b, u):
        r = y - X @ b
        obj = pinball_sum(r, tau)
        obj = jnp.where(jnp.isfinite(obj), obj, jnp.inf)
        return b, r, obj, gap_of(r, tau, feasible_dual(X, chol, tau, u))

    @staticmethod
    def update(best, X, y, tau, chol, b, u, polish, r=None, vertex_gap=None):
        """Offers the iterate ``b`` (residual ``r``, dual estimate ``u``) and, with polish, its
        vertex; any feasible dual certifies any primal point, so every dual is tried on the best.

        ``vertex_gap``: the vertex only once the iterate's own relative gap is below it (for a
        method whose dual estimate is good, the interior point: an early vertex is rarely the
        optimum, and each costs ``d`` independent rows found among the smallest residuals)."""
        r = y - X @ b if r is None else r
        obj = pinball_sum(r, tau)
        obj = jnp.where(jnp.isfinite(obj), obj, jnp.inf)
        cands = []
        if polish and vertex_gap is not None:
            u = feasible_dual(X, chol, tau, u)
            near = relative_gap(gap_of(r, tau, u), obj, y) <= vertex_gap
            # when, not cond: under a batching vmap only the problems near the end pay for it.
            vert = when(
                near,
                lambda X, y, r: tuple(vertex(X, y, tau, chol, r)[:4]),
                (b, r, jnp.array(jnp.inf, obj.dtype), u),
                X,
                y,
                r,
            )
            cands.append(vert)
        elif polish:
            *vert, inside = vertex(X, y, tau, chol, r)
            cands.append(tuple(vert))
            # A certified vertex's dual serves the iterate too: skip the iterate's projection.
            u = jax.lax.cond(inside, lambda: vert[3], lambda: feasible_dual(X, chol, tau, u))
        else:
            u = feasible_dual(X, chol, tau, u)
        cands.insert(0, (b, r, obj, u))
        best_b, best_r, best_obj, best_gap = best
        for cb, cr, cobj, cu in cands:
            better = cobj < best_obj
            best_b = jnp.where(better, cb, best_b)
            best_r = jnp.where(better, cr, best_r)
            best_gap = jnp.where(better, gap_of(cr, tau, cu), best_gap)
            best_obj = jnp.where(better, cobj, best_obj)
        for *_, cu in cands:
            best_gap = jnp.minimum(best_gap, gap_of(best_r, tau, cu))
        return best_b, best_r, best_obj, best_gap


def _done(best, y, tol):
    _, _, obj, gap = best
    return relative_gap(gap, obj, y) <= tol


def _ipm(X, y, tau, tol, max_steps, polish, chol):
    """Mehrotra predictor-corrector on the bounded dual LP (Frisch-Newton, Portnoy-Koenker).

    Dual: ``max_a y^T a  s.t.  X^T a = (1 - tau) X^T 1,  0 <= a <= 1``; ``b`` is its multiplier.
    """
    n, d = X.shape
    dtype = X.dtype
    tiny = jnp.finfo(dtype).tiny
    b0 = jsl.cho_solve(chol, X.T @ y)
    r0 = y - X @ b0
    delta = jnp.maximum(jnp.mean(jnp.abs(r0)), tiny)
    a0 = jnp.full((n,), 1 - tau, dtype)
    rhs_eq = (1 - tau) * jnp.sum(X, axis=0)
    jitter = jnp.finfo(dtype).eps * jnp.eye(d, dtype=dtype)
    gram = weighted_gram(X)

    def body(st):
        a, b, r, z, w, best, k = st
        s = 1 - a
        rp = rhs_eq - a @ X
        rd = r - w + z
        D = 1 / (w / s + z / a)
        M = gram(D)
        chol_m = jsl.cho_factor(M + jnp.trace(M) / d * jitter)

        def newton(r3, r4):
            h = rd + r3 / a - r4 / s
            db = jsl.cho_solve(chol_m, (D * h) @ X - rp)
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
        gate = jnp.where(
            k + 1 >= _IPM_VERTEX_AFTER, jnp.inf, _IPM_VERTEX_GAP.get(dtype.itemsize, 1e-2)
        )
        best = _Best.update(best, X, y, tau, chol, b, a - (1 - tau), polish, r, gate)
        return a, b, r, z, w, best, k + 1

    def cond(st):
        a, b, _, z, w, best, k = st
        finite = jnp.all(jnp.isfinite(b)) & jnp.isfinite(jnp.sum(a) + jnp.sum(z) + jnp.sum(w))
        return (k < max_steps) & ~_done(best, y, tol) & finite

    best = _Best.init(X, y, tau, chol, b0, a0 - (1 - tau))
    z0, w0 = jnp.maximum(-r0, 0) + delta, jnp.maximum(r0, 0) + delta
    init = (a0, b0, r0, z0, w0, best, jnp.array(0, jnp.int32))
    *_, best, k = jax.lax.while_loop(cond, body, init)
    return best, k


def _admm(X, y, tau, tol, max_steps, polish, chol):
    """ADMM on ``min sum rho_tau(z)  s.t.  z = y - X b`` with one Cholesky of ``X^T X``.

    The b-update is least squares, ``b = (X^T X)^{-1} X^T (y - z - u)``, which does not depend on
    rho: residual balancing changes rho for free. The multiplier of ``z + X b = y`` is ``rho u``
    and ``-rho u`` estimates the LP dual.
    """
    dtype = X.dtype
    tiny = jnp.finfo(dtype).tiny
    b0 = jsl.cho_solve(chol, X.T @ y)
    r0 = y - X @ b0
    rho0 = 1 / jnp.maximum(jnp.mean(jnp.abs(r0)), tiny)

    def admm_step(carry):
        b, z, u, rho = carry
        b = jsl.cho_solve(chol, (y - z - u) @ X)
        xb = X @ b
        vv = y - xb - u
        z = vv - jnp.clip(vv, (tau - 1) / rho, tau / rho)
        u = u + xb + z - y
        return b, z, u, rho, xb

    def body(st):
        b, z, u, rho, best, k = st
        b, z, u, rho = jax.lax.fori_loop(
            0, _ADMM_INNER - 1, lambda _, cr: admm_step(cr)[:4], (b, z, u, rho)
        )
        z_old = z
        b, z, u, rho, xb = admm_step((b, z, u, rho))
        res_p = jnp.linalg.norm(xb + z - y)
        # ||P (z - z_old)|| with P the projection onto range(X): sqrt(w^T (X^T X)^-1 w).
        w = (z - z_old) @ X
        res_d = rho * jnp.sqrt(jnp.maximum(w @ jsl.cho_solve(chol, w), 0))
        eps_p = tol * jnp.maximum(jnp.maximum(jnp.linalg.norm(xb), jnp.linalg.norm(z)), tiny)
        eps_d = tol * jnp.maximum(rho * jnp.linalg.norm(u), tiny)
        best = _Best.update(best, X, y, tau, chol, b, -rho * u, polish, y - xb)
        # Residual balancing (Boyd et al. 2011, sec. 3.4.1); the scaled dual u follows rho.
        adapt = k < _ADMM_ADAPT_UNTIL * _ADMM_INNER
        up = adapt & (res_p / eps_p > 10 * res_d / eps_d)
        down = adapt & (res_d / eps_d > 10 * res_p / eps_p)
        scale = jnp.where(up, 2.0, jnp.where(down, 0.5, 1.0)).astype(dtype)
        return b, z, u / scale, rho * scale, best, k + _ADMM_INNER

    def cond(st):
        b, z, *_, best, k = st
        finite = jnp.all(jnp.isfinite(b)) & jnp.all(jnp.isfinite(z))
        return (k < max_steps) & ~_done(best, y, tol) & finite

    best = _Best.init(X, y, tau, chol, b0, jnp.zeros_like(y))
    init = (b0, r0, jnp.zeros_like(y), rho0, best, jnp.array(0, jnp.int32))
    *_, best, k = jax.lax.while_loop(cond, body, init)
    return best, k


def _irls(X, y, tau, tol, max_steps, polish, chol):
    """MM iteration of Hunter and Lange (2000): weighted least squares on a perturbed loss.

    At the update ``X^T (w r + 2 tau - 1) = 0`` with ``w = 1 / (|r_old| + eps)``, so
    ``(w r + 2 tau - 1) / 2`` estimates the LP dual.
    """
    n, d = X.shape
    dtype = X.dtype
    tiny = jnp.finfo(dtype).tiny
    b0 = jsl.cho_solve(chol, X.T @ y)
    r0 = y - X @ b0
    # The perturbation trades accuracy of the MM fixed point for conditioning; the vertex finish
    # recovers the exact optimum, so a relative floor of sqrt(tol) suffices.
    eps = jnp.maximum(jnp.sqrt(tol) * jnp.mean(jnp.abs(r0)), tiny)
    lin = (2 * tau - 1) * jnp.sum(X, axis=0)
    jitter = jnp.finfo(dtype).eps * jnp.eye(d, dtype=dtype)
    gram = weighted_gram(X)

    def body(st):
        b, best, prev_obj, k, _ = st
        r = y - X @ b
        wt = 1 / (jnp.abs(r) + eps)
        M = gram(wt)
        b = jsl.cho_solve(jsl.cho_factor(M + jnp.trace(M) / d * jitter), (wt * y) @ X + lin)
        r = y - X @ b
        obj = pinball_sum(r, tau)
        best = _Best.update(best, X, y, tau, chol, b, (wt * r + 2 * tau - 1) / 2, polish, r)
        # The MM fixed point of the perturbed loss is not the LP optimum: once the objective
        # stalls, further steps cannot help and the vertex finish takes over.
        stalled = jnp.abs(prev_obj - obj) <= tol * jnp.maximum(obj, tiny)
        return b, best, obj, k + 1, stalled

    def cond(st):
        b, best, _, k, stalled = st
        return (k < max_steps) & ~_done(best, y, tol) & ~stalled & jnp.all(jnp.isfinite(b))

    best = _Best.init(X, y, tau, chol, b0, jnp.zeros_like(y))
    init = (b0, best, best[2], jnp.array(0, jnp.int32), jnp.array(False))
    _, best, _, k, _ = jax.lax.while_loop(cond, body, init)
    return best, k


def _capacity(n: int, d: int, big_m: int) -> int:
    """Rows of a reduced problem: the ``M`` kept plus room for fix-ups."""
    return min(n, big_m + max(d, int(_PFN_FIXUP_ROOM * big_m)))


def pfn_sizes(n: int, d: int) -> tuple[int, int, int]:
    """Static sizes of :func:`_pfn`: ``(m, M, cap)``, the pilot subsample, the rows kept around
    the pilot's quantile and the reduced problem's capacity (``M`` plus room for fix-ups).

    ``m = ((d + 1) n)^(2/3)`` and ``M = 0.8 m`` as in ``quantreg::rq.fit.pfn``.
    """
    m = min(n, max(4 * d, math.ceil(((d + 1) * n) ** (2 / 3))))
    big_m = min(n, max(2 * d, int(_PFN_KEEP * m)))
    cap = _capacity(n, d, big_m)
    return m, big_m, cap


def pfn_path_sizes(n: int, d: int, levels: int) -> tuple[int, int, int]:
    """Static sizes of :func:`_pfn` warm-started along ``levels`` quantile levels: the window
    ``M`` is ``_PATH_ROWS n / levels`` rows (and at least ``4 d``), the capacity as in
    :func:`pfn_sizes`; no pilot (``m = cap``)."""
    big_m = min(n, max(4 * d, math.ceil(_PATH_ROWS * n / levels)))
    cap = _capacity(n, d, big_m)
    return cap, big_m, cap


def pfn_wide_sizes(n: int, d: int, levels: int) -> tuple[int, int, int] | None:
    """The sizes of the second try of a warm level whose window failed: ``_PATH_WIDEN`` times
    the window of :func:`pfn_path_sizes`, or ``None`` where that would keep over a quarter of
    the rows (the interior point on all rows is then the second try)."""
    big_m = _PATH_WIDEN * pfn_path_sizes(n, d, levels)[1]
    if big_m > n / 4:
        return None
    cap = _capacity(n, d, big_m)
    return cap, big_m, cap


def path_pays(n: int, d: int, levels: int) -> bool:
    """Whether ``"pfn"`` solves ``levels`` quantile levels warm-started one from the next: on
    the CPU, for two levels or more, when the window of :func:`pfn_path_sizes` keeps at most two
    thirds of the rows."""
    path = levels >= 2 and jax.default_backend() == "cpu"
    return path and pfn_path_sizes(n, d, levels)[0] <= n / _PFN_MIN_RATIO


def pfn_pays(n: int, d: int) -> bool:
    """Whether ``method="auto"`` takes the preprocessing: its reduced problem is far smaller."""
    m, _, cap = pfn_sizes(n, d)
    return n >= _PFN_MIN_N and m + cap <= n / _PFN_MIN_RATIO


def _ordered_bits(a: jax.Array) -> jax.Array:
    """Integers in the order of the floats ``a`` (the sign-magnitude bit trick)."""
    itype = jnp.int64 if a.dtype == jnp.float64 else jnp.int32
    bits = jax.lax.bitcast_convert_type(a, itype)
    return jnp.where(bits < 0, bits ^ jnp.iinfo(itype).max, bits)


def _kth(keys: jax.Array, k: jax.Array) -> jax.Array:
    """The ``k``-th smallest of the integers ``keys`` (``k >= 1``), by bisection: ``bits``
    passes over ``keys``, no sort."""
    itype = keys.dtype

    def halve(_, lohi):
        lo, hi = lohi
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)  # no overflow across the sign
        enough = jnp.sum(keys <= mid) >= k
        return jnp.where(enough, lo, mid), jnp.where(enough, mid, hi)

    lo = jnp.min(keys) - 1
    _, hi = jax.lax.fori_loop(0, jnp.iinfo(itype).bits, halve, (lo, jnp.max(keys)))
    return hi


def _bands(X, Xp):
    """``||L^{-1} x_i||`` for every row of ``X``, ``L L^T = Xp^T Xp`` (floored at ``eps`` times
    the largest): the scale of residual ``i``'s error under a fit on the rows ``Xp``."""
    d = X.shape[1]
    L = jnp.linalg.cholesky(Xp.T @ Xp)
    # L^{-1} formed once: a matrix product, 8x faster than a triangular solve with n
    # right-hand sides on the CPU (n = 1e6, d = 20).
    Linv = jsl.solve_triangular(L, jnp.eye(d, dtype=X.dtype), lower=True)
    band = jnp.linalg.norm(X @ Linv.T, axis=1)
    return jnp.maximum(band, jnp.finfo(X.dtype).eps * jnp.max(band))


def _pfn(
    X, y, tau, tol, max_steps, polish, chol, sizes=None, stats=False, warm=None, fallback=None
):
    """Portnoy and Koenker's (1997) preprocessing around the interior point method.

    A pilot fit on ``m`` rows drawn at random with replacement (a fixed key) predicts which
    residuals of the full problem are confidently positive or negative: those with ``r_i / band_i``
    outside the window of ``M`` rows around the ``tau``-quantile, ``band_i = ||L^{-1} x_i||`` with
    ``L L^T`` the pilot's Gram matrix. Each of the two groups is replaced by one observation, the
    sum of its rows (its pinball loss is the group's as long as no sign changes), and the reduced
    problem of ``M + 2`` rows is solved. If a globbed residual has the wrong sign, its row moves
    into the kept rows (while the reduced problem has room) and the reduced problem is solved again,
    up to ``_PFN_FIXUPS`` times (rows the pilot itself puts on the wrong side of its window are kept
    from the start). The result is certified on the full problem (the vertex dual through the ``d``
    smallest residuals, then simplex pivots); one that is not certified is solved by the interior
    point method on all rows. Shapes are static, so it runs under ``jit`` and ``vmap``.

    ``warm = (b, band)`` replaces the pilot by a fit ``b`` already at hand (the solution at a
    nearby ``tau``) and its bands (:func:`_bands` of the whole ``X``): the window is placed from
    ``y - X b`` and round 0 is skipped. ``sizes`` then only needs ``cap >= M``. ``fallback()``
    (default: the interior point on all rows) solves what the reduced problems did not.
    """
    n, d = X.shape
    dtype = X.dtype
    m, big_m, cap = pfn_sizes(n, d) if sizes is None else sizes
    if warm is None:
        rows = max(m, cap)  # one problem shape for the pilot and every reduced problem
        sample = jax.random.randint(jax.random.key(0), (m,), 0, n)
        pilot = jnp.arange(rows) < m
        pick = sample[jnp.minimum(jnp.arange(rows), m - 1)]
        Xp = jnp.where(pilot[:, None], X[pick], 0)
        yp = jnp.where(pilot, y[pick], 0)
        band = _bands(X, Xp)
    else:
        rows = cap
        b_warm, band = warm
    start = jnp.clip(jnp.round(n * tau - big_m / 2).astype(jnp.int32), 0, n - big_m)

    def window(r):
        """Rows globbed low and high: the ``start`` smallest ``r / band`` and all above the
        ``M`` after them (ties at an edge split by row order)."""
        keys = _ordered_bits(r / band)
        lo_key = jnp.where(start > 0, _kth(keys, start), jnp.iinfo(keys.dtype).min)
        hi_key = _kth(keys, start + big_m)
        lo = keys <= lo_key
        lo = lo & (prefix_sum(lo.astype(jnp.int32)) <= start)
        tie = keys == hi_key
        extra = jnp.sum(keys <= hi_key) - (start + big_m)
        hi = (keys > hi_key) | (tie & (prefix_sum(tie.astype(jnp.int32), reverse=True) <= extra))
        return lo, hi

    def reduced(lo, hi):
        kept = ~lo & ~hi
        idx = first_true(kept, rows)
        valid = jnp.arange(rows) < jnp.sum(kept)
        glob = jnp.stack([lo, hi]).astype(dtype)
        Xr = jnp.concatenate([jnp.where(valid[:, None], X[idx], 0), glob @ X])
        return Xr, jnp.concatenate([jnp.where(valid, y[idx], 0), glob @ y])

    def body(st):
        """Round 0 fits the pilot and places the window; round 1 solves the reduced problem;
        each later round first moves the wrongly globbed rows back."""
        lo, hi, bad, _, rnd, k = st
        lo, hi = lo & ~bad, hi & ~bad
        if warm is None:
            Xr, yr = jax.lax.cond(  # the pilot has no globs
                rnd == 0,
                lambda: (jnp.concatenate([Xp, jnp.zeros((2, d), dtype)]), jnp.pad(yp, (0, 2))),
                lambda: reduced(lo, hi),
            )
        else:
            Xr, yr = reduced(lo, hi)
        rtol = jnp.where(rnd == 0, jnp.maximum(tol, _PFN_PILOT_TOL), tol)
        # No vertex polish inside: the vertex is taken once on all rows below (with it, every
        # step paid a vertex of the reduced problem for no fewer steps: n = 1e6 pfn 2.8 s -> 1.3 s).
        (b, *_), steps = _ipm(Xr, yr, tau, rtol, max_steps, False, jsl.cho_factor(Xr.T @ Xr))
        r = y - X @ b
        lo, hi = jax.lax.cond(rnd == 0, lambda: window(r), lambda: (lo, hi))
        bad = (lo & (r > 0)) | (hi & (r < 0))
        return lo, hi, bad, b, rnd + 1, k + steps

    def cond(st):
        lo, hi, bad, _, rnd, _ = st
        room = jnp.sum(~lo & ~hi) + jnp.sum(bad) <= rows
        return (rnd < 2) | (jnp.any(bad) & room & (rnd < 2 + _PFN_FIXUPS))

    none = jnp.zeros((n,), bool)
    zero = jnp.array(0, jnp.int32)
    if warm is None:
        init = (none, none, none, jnp.zeros((d,), dtype), zero, zero)
    else:
        lo, hi = window(y - X @ b_warm)
        init = (lo, hi, none, b_warm, zero + 1, zero)
    st = jax.lax.while_loop(cond, body, init)
    lo, hi, bad, b, rnd, k = st
    r = y - X @ b
    best = _Best.init(X, y, tau, chol, b, jnp.zeros_like(y))
    best = _Best.update(best, X, y, tau, chol, b, jnp.zeros_like(y), True, r)
    # Simplex pivots from the full problem's vertex, then (rarely) the full interior point.
    # Globbed rows still on the wrong side (no room left to move them) mean the reduced
    # problem was the wrong one and its vertex is far off: straight to the interior point (the
    # 50 pivots first cost 5x the full solve on n = 1e4, d = 20).
    done = _done(best, y, tol)
    vb, vr, vobj, vgap, _ = jax.lax.cond(
        done | jnp.any(bad),
        lambda: (*best, jnp.array(0, jnp.int32)),
        lambda: refine(X, y, tau, chol, best[1], tol, 2 * d + 10),
    )
    take = ~done & (vobj <= best[2])
    best = jax.tree.map(lambda a, c: jnp.where(take, a, c), (vb, vr, vobj, vgap), best)
    done = _done(best, y, tol)
    full, full_k = jax.lax.cond(
        done,
        lambda: (best, jnp.array(0, jnp.int32)),
        fallback or (lambda: _ipm(X, y, tau, tol, max_steps, polish, chol)),
    )
    if stats:  # for the tests: fix-up rounds, rows kept, whether the full solve ran
        kept = jnp.sum(~lo & ~hi)
        return (
            full,
            k + full_k,
            {"fixups": rnd - 2, "kept": kept, "full_solve": ~done, "bad": jnp.sum(bad)},
        )
    return full, k + full_k


_SOLVERS = {"ipm": _ipm, "pfn": _pfn, "admm": _admm, "irls": _irls}


@functools.partial(jax.jit, static_argnames=("method", "max_steps", "polish"))
def _solve(X, y, tau, tol, *, method, max_steps, polish):
    # unbatched: a vmap on the CPU runs one problem at a time, so no LAPACK call is batched
    # (batched LAPACK calls can deadlock jaxlib 0.10's CPU thread pool, see l1jax._lapack).
    one_problem = functools.partial(
        _solve_problem, method=method, max_steps=max_steps, polish=polish
    )
    return unbatched(one_problem)(X, y, tau, tol)


def _solve_problem(X, y, tau, tol, *, method, max_steps, polish):
    n, d = X.shape
    eq = equilibrate(X)
    Xs = eq.Xs
    ymax = jnp.max(jnp.abs(y))
    yscale = jnp.where(ymax > 0, ymax, 1)
    ys = y / yscale
    chol = jsl.cho_factor(Xs.T @ Xs)
    finite = jnp.all(jnp.isfinite(X)) & jnp.all(jnp.isfinite(y))

    def one(t, warm=None, cold=method):
        """The solve at level ``t`` and its equilibrated ``b``; ``warm``: see :func:`_pfn`."""
        t = t.astype(X.dtype)
        if warm is None:
            best, k = _SOLVERS[cold](Xs, ys, t, tol, max_steps, polish, chol)
        else:
            sizes = pfn_path_sizes(n, d, tau.shape[0])
            wide = pfn_wide_sizes(n, d, tau.shape[0])
            retry = None
            if wide is not None:  # first a window _PATH_WIDEN times wider, then all rows

                def retry():
                    return _pfn(Xs, ys, t, tol, max_steps, polish, chol, wide, warm=warm)

            best, k = _pfn(
                Xs, ys, t, tol, max_steps, polish, chol, sizes, warm=warm, fallback=retry
            )
        b, r, obj, gap = best
        if polish:
            # The vertex finish: simplex pivots, at most 2d + 10 (a handful from a good start).
            done = _done(best, ys, tol)
            vb, vr, vobj, vgap, _ = when(  # not cond: a batching vmap would pivot every problem
                ~done,
                lambda r: refine(Xs, ys, t, chol, r, tol, 2 * d + 10),
                (b, r, obj, gap, jnp.array(0, jnp.int32)),
                r,
            )
            take = ~done & (vobj <= obj)
            b = jnp.where(take, vb, b)
            gap = jnp.where(take, vgap, gap)
            obj = jnp.where(take, vobj, obj)
        rel = relative_gap(gap, obj, ys)
        rel = jnp.where(jnp.isnan(rel), jnp.inf, rel)
        coef = jnp.where(finite, eq.to_original(b) * yscale, jnp.nan)  # NaN in, NaN out
        ok = (rel <= tol) & jnp.all(jnp.isfinite(coef))
        r = y - X @ coef
        return SolverResult(coef, pinball_sum(r, t) / n, k, ok, rel), b

    if tau.ndim == 0:
        return one(tau)[0]
    if method == "pfn" and path_pays(n, d, tau.shape[0]):
        return _tau_path(one, Xs, tau, "pfn" if pfn_pays(n, d) else "ipm")
    # X-only work (equilibration, the Gram factor, the least-squares start) stays unbatched.
    return jax.vmap(unbatched(lambda t: one(t)[0]))(tau)


def _tau_path(one, X, tau, cold):
    """``one`` over the levels ``tau`` in increasing order, each warm-started at the solution of
    the level below (:func:`_pfn` with ``warm``); a level further than a quarter of the warm
    window from the one below (``n |tau_k - tau_{k-1}| > M / 4``), or after an uncertified
    one, is solved cold (``cold``). On the CPU, where a ``vmap`` solves one level after the
    other anyway (:mod:`l1jax._lapack`)."""
    n, d = X.shape
    _, big_m, _ = pfn_path_sizes(n, d, tau.shape[0])
    band = _bands(X, X)
    order = jnp.argsort(tau)
    first, b0 = one(tau[order[0]], cold=cold)

    def step(carry, t):
        b_prev, t_prev, ok_prev = carry
        near = ok_prev & (n * jnp.abs(t - t_prev) <= big_m / 2)
        res, b = jax.lax.cond(near, lambda: one(t, warm=(b_prev, band)), lambda: one(t, cold=cold))
        return (b, t, res.converged), res

    _, rest = jax.lax.scan(step, (b0, tau[order[0]], first.converged), tau[order[1:]])
    res = jax.tree.map(lambda a, b: jnp.concatenate([a[None], b]), first, rest)
    return jax.tree.map(lambda a: a[jnp.argsort(order)], res)


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
    v.check_finite(fn, X=X, y=y)
    v.check_full_rank(fn, "X", X)
    tau = v.real_array(fn, "tau", tau)
    if tau.ndim > 1:
        raise ValueError(f"{fn}: tau must be a scalar or 1-D, got tau.ndim={tau.ndim}.")
    check_range("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True, fn=fn)
    method = resolve_method(method, X, tau.shape[0] if tau.ndim == 1 else 0)
    max_steps = _DEFAULT_STEPS[method] if max_steps is None else max_steps
    v.check_max_steps(fn, max_steps)
    return X, y, tau, v.default_tol(tol, X.dtype), method, max_steps


def resolve_method(method: str, X: jax.Array, levels: int = 0) -> str:
    """``"auto"``: ``"pfn"`` where the preprocessing pays and ``X`` is on one device, else
    ``"ipm"`` (the preprocessing's gathers would copy a sharded ``X`` to every device). It pays
    for one level where :func:`pfn_pays`, and for a path of levels where :func:`path_pays`."""
    if method != "auto":
        return method
    sharding = getattr(X, "sharding", None)
    one_device = sharding is None or len(sharding.device_set) == 1
    n, d = X.shape
    pays = pfn_pays(n, d) or path_pays(n, d, levels)
    return "pfn" if one_device and pays else "ipm"


def solve_and_warn(fn, X, y, tau, tol, method, max_steps, polish) -> SolverResult:
    """Solves on ``stop_gradient``-ed data, then attaches the implicit derivative of ``coef``."""
    data = (X, y, tau.astype(X.dtype))
    res = _implicit.solve_attached(
        data,
        tol,
        solve=_solve,
        rule=_implicit.quantile,
        method=method,
        max_steps=max_steps,
        polish=polish,
    )
    v.warn_unconverged(fn, res, tol, method, X.dtype)
    return res


def quantile_regression(
    X: Real[ArrayLike, "n d"],
    y: Real[ArrayLike, " n"],
    tau: Real[ArrayLike, "*t"],
    *,
    method: Literal["auto", "ipm", "pfn", "admm", "irls"] = "auto",
    tol: float | None = None,
    max_steps: int | None = None,
    polish: bool = True,
) -> SolverResult:
    """Linear quantile regression ``min_b (1/n) sum_i rho_tau(y_i - x_i^T b)``.

    ``rho_tau(r) = max(tau r, (tau - 1) r)`` (the pinball loss, residual ``y - X b`` as in
    scikit-learn). No intercept is added: append a column of ones to ``X`` for one.

    Every method works on the equilibrated problem (columns centred on a constant column when
    there is one, then scaled to unit RMS; ``y`` scaled) and maps the solution back, so unscaled
    data (a column of ones next to incomes in the thousands) solve as well as scaled ones, in
    float32 too. Methods (each jit-compiled, ``vmap``-able over problems and over ``tau``):

    * ``"auto"`` (default): ``"pfn"`` where its pilot and reduced problems together are at most
      two thirds of the rows (``n >= 20000``, e.g. ``n = 1e5, d <= 50``; for many levels on the
      CPU, the warm-started windows below, e.g. 99 levels of ``n = 1e4, d = 20``), ``"ipm"``
      otherwise and for ``X`` sharded over several devices.
    * ``"ipm"``: Mehrotra predictor-corrector interior point on the dual LP
      ``max y^T a s.t. X^T a = (1 - tau) X^T 1, 0 <= a <= 1`` (the Frisch-Newton method). One
      ``d x d`` Cholesky of ``X^T D X`` per step, typically 10-30 steps independent of ``n``.
    * ``"pfn"``: ``"ipm"`` with Portnoy and Koenker's (1997) preprocessing, as
      ``quantreg::rq(method = "pfn")``: a pilot fit on ``m = ((d + 1) n)^(2/3)`` rows drawn at
      random (a fixed seed) ranks the residuals; the ``0.8 m`` rows around the ``tau``-quantile
      are kept and the rows below and above are each replaced by their sum, an exact
      substitute as long as their residuals keep their signs; globbed rows whose sign comes out
      wrong are moved back and the reduced problem solved again (three times at most). The
      result is certified on all ``n`` rows (with simplex pivots if needed); one that is not is
      solved by ``"ipm"`` on all rows, so the answer is ``"ipm"``'s optimum either way. Costs
      ``O(n d^2)`` once plus interior point steps on about ``m`` rows. For a 1-D ``tau`` on the
      CPU (where levels are solved one after the other anyway), the levels are solved in
      increasing order and each one's window is placed by the solution of the level below
      instead of a pilot: ``3 n / len(tau)`` rows kept, so a level costs a few ``O(n d)``
      passes and an interior point on those rows. A level more than half a window above the
      one below, or after an uncertified one, is solved cold.
    * ``"admm"``: ADMM on the split ``z = y - X b`` (z-step: prox of the pinball loss; b-step:
      least squares with one Cholesky of ``X^T X`` computed once). The b-step does not depend on
      rho, so rho follows residual balancing for free (frozen after 2000 steps); cheap steps
      (two products with ``X``) suit accelerators and many ``tau`` sharing one factor.
    * ``"irls"``: MM iteration of Hunter and Lange (2000), weighted least squares with weights
      ``1 / (|r| + eps)``, ``eps = sqrt(tol) mean|r_0|``; it stops when the perturbed objective
      stalls, which is not the LP optimum: the vertex finish below makes it exact.

    Certificate: every check computes the LP duality gap of the best point from a dual-feasible
    point built from the method's own dual estimate and from the vertex through the ``d``
    smallest residuals (``sum_i rho_tau(r_i) - y^T u`` with ``X^T u = 0``, ``u`` in
    ``[tau - 1, tau]``), and stops once ``gap <= tol``. ``result.gap`` is that bound relative to
    the objective (to ``eps ||y||_1`` when the objective is at round-off level), so
    ``objective - optimum <= gap * objective`` up to round-off, and ``converged`` is
    ``gap <= tol``. With ``polish=True`` an uncertified solve finishes with at most ``2 d + 10``
    simplex pivots from that vertex (steepest edge, exact line search), which end at the exact
    LP optimum when they certify it. When a concrete result is not certified, a
    :class:`ConvergenceWarning` names the remedy; under ``jit``/``vmap`` check ``converged``.

    Derivatives: ``coef`` and ``objective`` are differentiable in ``X``, ``y`` and ``tau``
    (``jax.grad``, ``jax.jvp``, ``jax.jacfwd``, ``jax.jacrev``, ``jax.hessian``, under ``jit``
    and ``vmap``) by implicit differentiation of the returned vertex, not through the
    iterations. The basis ``B`` is the first ``d`` linearly independent rows in increasing
    ``|y - X coef|`` (exact ties in the lower row's favour), and the derivative is that of
    ``coef = X_B^{-1} y_B``: ``d coef = X_B^{-1} (dy_B - dX_B coef)``, exactly zero for every
    other row of ``X`` and ``y``, and ``d coef / d tau = 0`` (the solution is piecewise
    constant in ``tau``). At a non-degenerate vertex (``d`` zero residuals, a unique optimum)
    ``B`` is the ``d`` zero residuals and this is the derivative. At a degenerate one (more
    than ``d`` zero residuals: ties at the median, repeated observations; or a non-unique
    optimum) the solution is not differentiable and this is the derivative of the vertex of
    that basis, exact along every perturbation that keeps the basis optimal: the median of
    ``[0, 1, 1, 2, 5]`` gets derivative 1 in the first of the tied observations and 0 in the
    second (right for ``dy_1 >= dy_2``). With ``polish=False`` the same basis is used at the
    returned ``coef``. The objective's derivative is its formula's through ``coef``
    (``d objective / d tau = mean(y - X coef)``); ``num_steps``, ``converged`` and ``gap``
    have zero derivatives.

    Args:
      X: design, shape ``(n, d)`` with ``n >= d``, full column rank; float32, float64 or integer.
      y: responses, shape ``(n,)``.
      tau: quantile level in ``(0, 1)``, a scalar or a 1-D array of levels.
      method: ``"auto"``, ``"ipm"``, ``"pfn"``, ``"admm"`` or ``"irls"``.
      tol: relative duality gap that certifies convergence; default ``1e-10`` in float64 and
        ``1e-6`` in float32.
      max_steps: iteration cap; default 100 (ipm, and each interior point solve of pfn), 20000
        (admm), 500 (irls).
      polish: try the LP vertex at every check and finish with simplex pivots.

    Returns:
      :class:`SolverResult` with ``coef`` of shape ``(d,)`` (``(len(tau), d)`` for 1-D ``tau``),
      ``objective = mean(rho_tau(y - X coef))``, ``num_steps``, ``converged`` and ``gap``.

    Raises:
      ValueError: wrong ndim, mismatched rows, ``n < d``, non-finite concrete ``X`` or ``y``, a
        concrete ``X`` without full column rank (an all-zero or duplicated column), ``tau``
        outside ``(0, 1)``, unknown method. Under ``jit``/``vmap`` values cannot be checked: NaN
        data or a rank-deficient ``X`` then give ``converged=False`` (and NaN for NaN data).
      TypeError: ``X``, ``y`` or ``tau`` not real numbers, or float16/bfloat16.

    References:
      - Koenker, R. and Bassett, G. (1978). Regression quantiles. Econometrica 46(1).
      - Barrodale, I. and Roberts, F. D. K. (1974). Solution of an overdetermined system of
        equations in the l1 norm. Comm. ACM 17(6).
      - Portnoy, S. and Koenker, R. (1997). The Gaussian hare and the Laplacian tortoise.
        Statistical Science 12(4).
      - Hunter, D. R. and Lange, K. (2000). Quantile regression via an MM algorithm. J. Comput.
        Graph. Stat. 9(1).
      - Boyd, S. et al. (2011). Distributed optimization and statistical learning via ADMM.
        Found. Trends Mach. Learn. 3(1).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import solvers
      >>> X = jnp.ones((5, 1))  # an intercept only: the fit is the tau-quantile of y
      >>> y = jnp.array([1.0, 2.0, 3.0, 4.0, 10.0])
      >>> fit = solvers.quantile_regression(X, y, jnp.array([0.1, 0.5, 0.9]))  # 3 levels
      >>> print([round(float(c), 3) for c in fit.coef[:, 0]])
      [1.0, 3.0, 10.0]
    """
    fn = "quantile_regression"
    X, y, tau, tol, method, max_steps = prepare(fn, X, y, tau, method, tol, max_steps)
    return solve_and_warn(fn, X, y, tau, tol, method, max_steps, polish)
