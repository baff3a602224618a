"""Lasso ``min_b (1/2n)||y - X b||^2 + lam ||b||_1``: working sets, homotopy, FISTA, ISTA and
ADMM.

FISTA, ISTA and ADMM work on ``G = X^T X / n`` and ``c = X^T y / n`` (formed once, ``O(n d^2)``), so
a step costs ``O(d^2)`` whatever ``n``; FISTA and ISTA set up with power iterations (the step size,
``O(d^2)`` each), ADMM with one eigendecomposition (its solves). The working-set method runs FISTA
on the Gram matrix of a few columns at a time, so it never forms ``X^T X``. A support polish solves
the KKT system on the current support exactly and stops the solver when the duality gap certifies
it. The homotopy (:mod:`l1jax.solvers._lasso_homotopy`) follows the piecewise-linear path from
``lam_max`` down through its kinks on ``G``.
"""

from __future__ import annotations

import functools
from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
from jaxtyping import ArrayLike, Real

from l1jax._checks import check_range
from l1jax._lapack import unbatched, when
from l1jax.solvers import _implicit
from l1jax.solvers import _lasso_homotopy as _hom
from l1jax.solvers import _validate as v
from l1jax.solvers._result import SolverResult

__all__ = ["lasso", "LASSO_METHODS"]

LASSO_METHODS = ("auto", "ws", "homotopy", "fista", "ista", "admm")
_DEFAULT_STEPS = {
    "ws": 20_000,
    "homotopy": 20_000,
    "fista": 20_000,
    "ista": 100_000,
    "admm": 20_000,
}
_INNER = 10  # steps between convergence checks and polish attempts
_ADAPT_UNTIL = 200  # ADMM outer rounds with residual balancing
_POWER_STEPS = 100  # power iterations for the step size bound
_POWER_MARGIN = 1.05  # the bound over the Rayleigh quotient (see _lipschitz)
_WS_SIZES = (16, 64, 256, 1024)  # working-set columns of method="ws", stage by stage
_WS_AUTO_MIN = 64  # "auto" takes working sets above this many columns
_WS_FULL = 0.875  # a stage hands over to the next once the support fills this much of it
_WS_ROUNDS = 50  # working-set rounds at most
_WS_GRAM_MAX = 4096  # ws falls back on the whole Gram matrix up to this many columns
_HOMOTOPY_MAX = 512  # "auto" follows a path by homotopy up to this many columns (on the CPU)


def _soft(x, t):
    return jnp.sign(x) * jnp.maximum(jnp.abs(x) - t, 0)


def _smooth_obj(G, R, c, b):
    """``(1/2n)||y - X b||^2 - ||y||^2 / (2n)``: ``||R b||^2 / 2 - c^T b`` with ``G = R^T R``
    where the factor is at hand (ADMM), else ``b^T G b / 2 - c^T b``.

    The direct form can lose its last digits to cancellation far from the optimum, never where
    it matters: the certificate weighs this quadratic by ``(1 - s)^2``, which vanishes at the
    optimum (:func:`duality_gap`), and ranks candidates by that certified gap.
    """
    if R is not None:
        return 0.5 * jnp.sum((R @ b) ** 2) - c @ b
    return 0.5 * (b @ (G @ b)) - c @ b


def _lipschitz(G):
    """An upper bound of ``lambda_max(G)`` for the step size, from ``_POWER_STEPS`` power
    iterations (each ``O(d^2)``) instead of an eigendecomposition.

    The Rayleigh quotient ``rq`` of the iterate undershoots ``lambda_max`` only by the weight
    left on eigenvalues below it, which decays as ``(lambda_i / lambda_max)^(2k)``: after 100
    steps, eigenvalues below ``0.95 lambda_max`` keep a weight under ``4e-5``, so
    ``1.05 rq`` bounds ``lambda_max`` for any start not orthogonal to its eigenvector (the start
    is a fixed pseudo-random vector). The duality-gap certificate guards the rest.
    """
    d = G.shape[0]
    v0 = jnp.cos(jnp.arange(1, d + 1, dtype=G.dtype) * 2.3) + 1.5

    def power(_, v):
        w = G @ v
        return w / jnp.maximum(jnp.linalg.norm(w), jnp.finfo(G.dtype).tiny)

    v = jax.lax.fori_loop(0, _POWER_STEPS, power, v0 / jnp.linalg.norm(v0))
    return _POWER_MARGIN * (v @ (G @ v))


def _polish(G, c, lam, b):
    """Exact solution of the KKT system on ``support(b)`` with its signs (a candidate only)."""
    on = b != 0
    sgn = jnp.sign(b)
    mask = on[:, None] & on[None, :]
    M = jnp.where(mask, G, 0) + jnp.diag(jnp.where(on, 0.0, 1.0).astype(G.dtype))
    # M is G on the support and I off it: SPD when G_SS is, so one Cholesky (half an LU); a
    # singular G_SS gives NaN, a candidate the certificate rejects.
    return jsl.cho_solve(jsl.cho_factor(M), jnp.where(on, c - lam * sgn, 0))


def duality_gap(G, c, lam, b, q):
    """Gap between ``P(b)`` and the dual value of the scaled residual (see :func:`lasso`).

    With ``corr = X^T r / n = c - G b`` and ``s = min(1, lam / ||corr||_inf)``, the dual point
    ``theta = s r / n`` is feasible and ``P(b) - D(theta) = q (1 - s)^2 + sum_j (lam |b_j| -
    s b_j corr_j)``, with ``q = ||r||^2 / (2n)``: a sum of non-negative terms, computed without
    cancellation. ``lam`` gets a round-off allowance of ``10 eps ||c||_inf`` so that the least
    squares solution (``lam = 0``) certifies too.
    """
    return _gap(c, lam, b, c - G @ b, q)


def _gap(c, lam, b, corr, q):
    """:func:`duality_gap` from the correlations ``corr = c - G b`` at hand."""
    dtype = c.dtype
    slack = 10 * jnp.finfo(dtype).eps * jnp.max(jnp.abs(c))
    s = jnp.minimum(1, (lam + slack) / jnp.maximum(jnp.max(jnp.abs(corr)), jnp.finfo(dtype).tiny))
    gap = jnp.maximum(q, 0) * (1 - s) ** 2 + jnp.sum(lam * jnp.abs(b) - s * b * corr)
    return jnp.maximum(gap, 0)


def _rel_gap(c, yy, lam, b, corr, q):
    """:func:`duality_gap` over the objective ``q + lam ||b||_1`` (floored at ``eps ||y||^2 /
    n``); inf when not a number."""
    eps, tiny = jnp.finfo(c.dtype).eps, jnp.finfo(c.dtype).tiny
    obj = q + lam * jnp.sum(jnp.abs(b))
    rel = _gap(c, lam, b, corr, q) / jnp.maximum(obj, eps * jnp.maximum(yy, tiny))
    return jnp.where(jnp.isnan(rel), jnp.inf, rel)


def _keep_best(b, obj, best_b, best_obj):
    better = obj < best_obj
    return jnp.where(better, b, best_b), jnp.where(better, obj, best_obj)


class _Setup(NamedTuple):
    """What a method needs of ``G`` besides ``G``: the step bound ``L`` and, for ADMM only, the
    eigendecomposition and the factor ``R = Lambda^(1/2) V^T`` it gives for free."""

    L: jax.Array
    R: jax.Array | None = None
    evals: jax.Array | None = None
    evecs: jax.Array | None = None


def _setup(G, method):
    if method == "admm":
        evals, evecs = jnp.linalg.eigh(G)
        R = jnp.sqrt(jnp.maximum(evals, 0))[:, None] * evecs.T
        return _Setup(evals[-1], R, evals, evecs)
    return _Setup(_lipschitz(G))


def _run(G, c, yy, lam, tol, max_steps, polish, method, setup, b0=None):
    d = G.shape[0]
    dtype = G.dtype
    tiny = jnp.finfo(dtype).tiny
    L = jnp.maximum(setup.L, tiny)
    evals, evecs = setup.evals, setup.evecs
    b0 = jnp.zeros((d,), dtype) if b0 is None else b0

    def rel_gap(b):
        """Certified relative gap of ``b``; inf when not finite."""
        return _rel_gap(c, yy, lam, b, c - G @ b, yy / 2 + _smooth_obj(G, setup.R, c, b))

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

        carry0 = (b0, b0, jnp.ones((), dtype))

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

    init = (carry0, b0, rel_gap(b0), jnp.array(0, jnp.int32))
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
    if method == "ws":
        return _solve_ws(X, y, lam, tol, max_steps, polish)
    if method == "homotopy":
        return _solve_homotopy(X, y, lam, tol, max_steps, polish)
    n = X.shape[0]
    G = X.T @ X / n
    c = y @ X / n
    yy = y @ y / n
    setup = _setup(G, method)

    def one(lam_, b0):
        lam_ = lam_.astype(X.dtype)
        b, k, gap = _run(G, c, yy, lam_, tol, max_steps, polish, method, setup, b0)
        return _result(X, y, lam_, b, k, gap, tol)

    if method == "admm" and lam.ndim == 1:  # ADMM does not take a warm start
        return jax.vmap(unbatched(lambda l_: one(l_, None)))(lam)
    return _over_lam(one, lam, X.shape[1], X.dtype)


def _result(X, y, lam, b, k, gap, tol):
    obj = 0.5 * jnp.mean((y - X @ b) ** 2) + lam * jnp.sum(jnp.abs(b))
    return SolverResult(b, obj, k, (gap <= tol) & jnp.all(jnp.isfinite(b)), gap)


def _solve_homotopy(X, y, lam, tol, max_steps, polish):
    """The homotopy from ``lam_max`` down through the ``lam`` in decreasing order, on
    ``G = X^T X / n``; a ``lam`` where the walk does not certify (or takes more than
    ``max_steps`` kinks) is solved by ``"fista"`` on ``G`` from the previous solution, and the
    walk goes on from that solution."""
    n, d = X.shape
    dtype = X.dtype
    G = X.T @ X / n
    c = y @ X / n
    yy = y @ y / n

    def certify(lam_, b, corr):
        q = jnp.maximum(yy / 2 - 0.5 * (b @ c + b @ corr), 0)  # ||y - X b||^2 / (2n)
        return _rel_gap(c, yy, lam_, b, corr, q)

    def step(carry, lam_):
        w, ln, b_prev = carry
        lam_ = lam_.astype(dtype)
        w, ln, b, corr, kinks, finished = _hom.walk_to(G, c, w, ln, lam_, max_steps)
        gap = certify(lam_, b, corr)

        def fallback(G, b_prev, lam_, kinks):
            bf, kf, gf = _run(
                G, c, yy, lam_, tol, max_steps, polish, "fista", _Setup(_lipschitz(G)), b_prev
            )
            w = _hom.restart(G, lam_, bf)
            return w, _hom.line(G, c, w), bf, kinks + kf, gf

        # when, not cond: a loop run zero times or once keeps the carry in place on XLA:CPU.
        need = ~(finished & (gap <= tol))
        w, ln, b, k, gap = when(need, fallback, (w, ln, b, kinks, gap), G, b_prev, lam_, kinks)
        return (w, ln, b), (b, k, gap)

    lams = jnp.atleast_1d(lam)
    w0 = _hom.start(G, c)
    b, k, gap = _descending(step, (w0, _hom.line(G, c, w0), jnp.zeros((d,), dtype)), lams)
    # Objectives of the whole path in one product (one X b per lam would cost O(n d) each).
    obj = 0.5 * jnp.mean((y[None, :] - b @ X.T) ** 2, axis=1) + lams * jnp.sum(jnp.abs(b), axis=1)
    # NaN in, NaN out: the walk sees no kink in NaN correlations and would return zeros.
    finite = jnp.isfinite(yy) & jnp.all(jnp.isfinite(c)) & jnp.all(jnp.isfinite(jnp.diag(G)))
    b = jnp.where(finite, b, jnp.nan)
    res = SolverResult(b, obj, k, (gap <= tol) & jnp.all(jnp.isfinite(b), axis=1), gap)
    return res if lam.ndim else jax.tree.map(lambda a: a[0], res)


def working_set_sizes(d: int) -> tuple[int, ...]:
    """Columns of the working sets of ``method="ws"``, one stage after the other: those of
    ``(16, 64, 256, 1024)`` below ``d``, or ``(d,)`` when ``d <= 16``."""
    return tuple(w for w in _WS_SIZES if w < d) or (d,)


def _solve_ws(X, y, lam, tol, max_steps, polish):
    """Working sets (as celer and skglm): FISTA on the Gram matrix of ``W`` columns, the
    support and the largest violations of the optimality conditions ``|X_j^T r| / n <= lam``,
    until the duality gap of the whole problem certifies the solution.

    A column outside the working set has coefficient 0, so the working set's solution is the
    whole problem's exactly when no column outside it violates its condition. The rounds start
    with ``W = 16`` columns; while the support fills more than ``_WS_FULL`` of them (or the
    rounds stop uncertified) the next stage goes on from the best point with four times as many
    (:func:`working_set_sizes`), so a sparse solution pays for a small Gram matrix and a dense
    one still gets a working set that holds it. One ``lam`` (or ``d > _WS_GRAM_MAX``): each round
    costs ``O(n W^2)`` for the small Gram matrix and ``O(n d)`` for the correlations, never the
    ``O(n d^2)`` of ``X^T X``. A path with ``d <= _WS_GRAM_MAX`` forms ``X^T X`` once and takes
    each round's Gram matrix from it (``O(W^2 + d^2)`` a round), warm-started from the previous
    ``lam`` on the CPU. When the last stage does not certify, FISTA on the whole Gram matrix
    finishes the solve for ``d <= _WS_GRAM_MAX``.
    """
    n, d = X.shape
    dtype = X.dtype
    yy = y @ y / n
    c = y @ X / n
    if lam.ndim == 0 or d > _WS_GRAM_MAX:

        def sub(X, ws):
            Xw = X[:, ws]  # (n, W)
            Gw = Xw.T @ Xw / n
            return Gw, _setup(Gw, "fista"), Xw

        def corr_q(X, b, bw, Xw):
            r = y - Xw @ bw
            return r @ X / n, r @ r / (2 * n)  # X^T r without materialising X^T

        def whole(X):
            G = X.T @ X / n
            return G, _setup(G, "fista")

        data = X
    else:
        G = X.T @ X / n
        L = _lipschitz(G)  # bounds every principal submatrix's largest eigenvalue too

        def sub(G, ws):
            return G[ws][:, ws], _Setup(L), None

        def corr_q(G, b, bw, _):
            Gb = G @ b
            return c - Gb, jnp.maximum(yy / 2 + 0.5 * (b @ Gb) - c @ b, 0)

        def whole(G):
            return G, _Setup(L)

        data = G
    sizes = working_set_sizes(d)
    finishes = d <= _WS_GRAM_MAX and sizes[-1] < d  # FISTA on the whole Gram matrix at the end

    def one(lam_, b0):
        lam_ = lam_.astype(dtype)
        rounds = functools.partial(_ws_rounds, lam_, yy, c, tol, max_steps, polish, sub, corr_q)
        state = (b0, jnp.array(jnp.inf, dtype), c, jnp.array(0, jnp.int32))
        for i, W in enumerate(sizes):
            # when, not cond: a batching vmap runs a stage only if some problem needs it; the
            # data pass the loop's barrier, so XLA cannot hoist a stage's products out of it.
            stage = functools.partial(rounds, W=W, stop_when_full=finishes or i < len(sizes) - 1)
            _, gap, _, k = state
            state = when((gap > tol) & (k < max_steps), stage, state, data, *state)
        b, gap, _, k = state
        if finishes:
            # The support outgrew the working sets: the whole Gram matrix, from the best point.
            def finish(data, b, k):
                G, setup = whole(data)
                bf, kf, gf = _run(G, c, yy, lam_, tol, max_steps, polish, "fista", setup, b)
                return bf, k + kf, gf

            b, k, gap = when(gap > tol, finish, (b, k, gap), data, b, k)
        return _result(X, y, lam_, b, k, gap, tol)

    return _over_lam(one, lam, d, dtype)


def _over_lam(one, lam, d, dtype):
    """``one(lam, b0)`` for a scalar ``lam``, or over a 1-D ``lam``: ``vmap`` on accelerators;
    on the CPU (where a ``vmap`` runs one ``lam`` after the other anyway, see
    :mod:`l1jax._lapack`) a scan from the largest ``lam`` down, each solve warm-started at the
    previous solution."""
    zero = jnp.zeros((d,), dtype)
    if lam.ndim == 0:
        return one(lam, zero)
    if jax.default_backend() != "cpu":
        return jax.vmap(unbatched(lambda l_: one(l_, zero)))(lam)

    def step(b_prev, lam_):
        res = one(lam_, b_prev)
        return res.coef, res

    return _descending(step, zero, lam)


def _descending(step, init, lam):
    """``lax.scan`` of ``step`` over ``lam`` from the largest down; its outputs in ``lam``'s
    order."""
    order = jnp.argsort(-lam)
    _, out = jax.lax.scan(step, init, lam[order])
    undo = jnp.argsort(order)
    return jax.tree.map(lambda a: a[undo], out)


def _ws_rounds(
    lam, yy, c, tol, max_steps, polish, sub, corr_q, data, b0, gap0, corr0, k0, W, stop_when_full
):
    """Working-set rounds of :func:`_solve_ws` with ``W`` columns from ``b0`` (its gap
    ``gap0``, correlations ``corr0``, ``k0`` steps so far): ``(best b, its gap, the last
    correlations, steps)``. With ``stop_when_full`` the rounds end (or do not start) once the
    support fills more than ``_WS_FULL`` of the ``W`` columns: the next stage has more."""
    d = c.shape[0]
    dtype = c.dtype

    def certificate(b, corr, q):
        """Relative duality gap of ``b`` on the whole problem."""
        return _rel_gap(c, yy, lam, b, corr, q)

    def pick(b, corr):
        """The support first, then the columns whose condition is violated the most."""
        score = jnp.where(b != 0, jnp.inf, jnp.abs(corr))
        return jnp.sort(jax.lax.top_k(score, W)[1])

    def body(st):
        b, ws, _, corr, best_b, best_gap, k, rnd = st
        Gw, setup, extra = sub(data, ws)
        bw, steps, _ = _run(Gw, c[ws], yy, lam, tol, max_steps, polish, "fista", setup, b[ws])
        b = jnp.zeros((d,), dtype).at[ws].set(bw)
        corr, q = corr_q(data, b, bw, extra)
        gap = certificate(b, corr, q)
        better = gap < best_gap
        best_b = jnp.where(better, b, best_b)
        best_gap = jnp.where(better, gap, best_gap)
        new_ws = pick(b, corr)
        return b, new_ws, jnp.any(new_ws != ws), corr, best_b, best_gap, k + steps, rnd + 1

    def full(b):
        return stop_when_full & (jnp.sum(b != 0) > _WS_FULL * W)

    def cond(st):
        b, _, moved, _, _, best_gap, k, rnd = st
        go = (best_gap > tol) & moved & (rnd < _WS_ROUNDS) & (k < max_steps)
        return go & ~full(b)

    ws0 = pick(b0, corr0)  # the support of a warm start leads the working set
    init = (b0, ws0, jnp.array(True), corr0, b0, gap0, k0, jnp.zeros_like(k0))
    _, _, _, corr, best_b, gap, k, _ = jax.lax.while_loop(cond, body, init)
    return best_b, gap, corr, k


def resolve_method(method: str, d: int, lam_ndim: int) -> str:
    """``"auto"``: for a path (``lam_ndim == 1``) on the CPU with ``d <= 512``, ``"homotopy"``;
    otherwise ``"ws"`` for ``d > 64``, else ``"fista"``."""
    if method != "auto":
        return method
    if lam_ndim == 1 and d <= _HOMOTOPY_MAX and jax.default_backend() == "cpu":
        return "homotopy"
    return "ws" if d > _WS_AUTO_MIN else "fista"


def lasso(
    X: Real[ArrayLike, "n d"],
    y: Real[ArrayLike, " n"],
    lam: Real[ArrayLike, "*lam"],
    *,
    method: Literal["auto", "ws", "homotopy", "fista", "ista", "admm"] = "auto",
    tol: float | None = None,
    max_steps: int | None = None,
    polish: bool = True,
) -> SolverResult:
    """Lasso ``min_b (1/(2n)) ||y - X b||^2 + lam ||b||_1`` (scikit-learn's ``Lasso`` objective).

    No intercept is added: centre ``X`` and ``y`` or append a column of ones (then penalised).

    Methods (each jit-compiled, ``vmap``-able over problems and over ``lam``):

    * ``"auto"`` (default): for a path (1-D ``lam``) on the CPU with ``d <= 512``,
      ``"homotopy"``; otherwise ``"ws"`` when ``d > 64``, ``"fista"`` otherwise.
    * ``"ws"``: working sets, as celer and skglm do: ``"fista"`` on the Gram matrix of ``W``
      columns (the support first, then the columns whose optimality condition
      ``|X_j^T r| / n <= lam`` is violated the most), then the duality gap of the whole problem;
      until it certifies, the working set is rebuilt from the new correlations (50 rounds at
      most). ``W`` starts at 16 and grows to 64, 256 and 1024 (below ``d``) while the support
      fills more than 7/8 of it. For one ``lam`` a round costs ``O(n W^2 + n d)``, never
      ``O(n d^2)``: for ``d`` in the thousands or ``d >> n`` this is the method. A path (1-D
      ``lam``) with ``d <= 4096`` forms ``X^T X / n`` once and takes each round's Gram matrix
      from it. If the support outgrows the largest working set, ``"fista"`` on the whole Gram
      matrix finishes (when ``d <= 4096``; otherwise a result the rounds did not certify is
      returned with ``converged=False``).
    * ``"homotopy"``: the exact piecewise-linear path (Osborne et al. 2000; LARS-lasso, Efron
      et al. 2004) from ``lam_max = ||X^T y||_inf / n`` down through the ``lam`` in decreasing
      order, on ``G = X^T X / n``. Between kinks the solution on a support ``S`` with signs
      ``s`` is ``G_SS^{-1} (c_S - lam s)``; at a kink a coefficient reaches zero or a
      correlation ``|X_j^T r| / n`` reaches ``lam``, and the inverse follows by one rank-one
      update (``O(d^2)``, no factorisation). Each ``lam`` is certified by the duality gap; one
      that is not (a degenerate kink, such as a column that duplicates others, round-off, more
      than ``max_steps`` kinks) is solved by ``"fista"`` from the previous solution and the walk
      goes on from there. A 100-point path costs about one ``X^T X`` plus ``O(d^2)`` per kink.
      ``num_steps`` counts the kinks (plus FISTA steps where it was used).
    * ``"fista"``: accelerated proximal gradient on ``G = X^T X / n`` with step ``1/L``,
      ``L >= lambda_max(G)`` from 100 power iterations (times 1.05), and adaptive restart.
      Guarantee: ``F(b_k) - F* <= 2 L ||b_0 - b*||^2 / (k + 1)^2`` (Beck and Teboulle 2009).
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
      lam: penalty ``>= 0``, a scalar or a 1-D array (a path, solved in one call: on the CPU
        from the largest ``lam`` down, each solve warm-started at the previous solution, except
        for ADMM; on accelerators batched with ``vmap``, except the homotopy, which walks the
        path in order everywhere).
      method: ``"auto"``, ``"ws"``, ``"homotopy"``, ``"fista"``, ``"ista"`` or ``"admm"``.
      tol: relative duality gap that certifies convergence; default ``1e-10`` (float64) or
        ``1e-6`` (float32).
      max_steps: iteration cap; default 20000 (ws, homotopy, fista, admm) or 100000 (ista).
        For the homotopy it caps the kinks between two ``lam`` and the steps of a fallback.
      polish: try the exact solution on the current support.

    Returns:
      :class:`SolverResult` with ``coef`` of shape ``(d,)`` (``(len(lam), d)`` for 1-D
      ``lam``), the objective above, ``num_steps``, ``converged`` and ``gap``.

    Raises:
      ValueError: wrong ndim, mismatched rows, empty ``X``, non-finite concrete ``X`` or ``y``,
        negative ``lam``, unknown method. Under ``jit``/``vmap`` non-finite data give NaN with
        ``converged=False``.

    References:
      - Tibshirani, R. (1996). Regression shrinkage and selection via the lasso. JRSS B 58(1).
      - Osborne, M. R., Presnell, B. and Turlach, B. A. (2000). A new approach to variable
        selection in least squares problems. IMA J. Numer. Anal. 20(3).
      - Efron, B., Hastie, T., Johnstone, I. and Tibshirani, R. (2004). Least angle
        regression. Ann. Statist. 32(2).
      - Beck, A. and Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm.
        SIAM J. Imaging Sci. 2(1).
      - O'Donoghue, B. and Candes, E. (2015). Adaptive restart for accelerated gradient schemes.
        Found. Comput. Math. 15(3).
      - Boyd, S. et al. (2011). Distributed optimization and statistical learning via ADMM.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import solvers
      >>> X = jax.random.normal(jax.random.key(0), (100, 5))
      >>> y = X @ jnp.array([3.0, 0.0, 0.0, -2.0, 0.0])
      >>> fit = solvers.lasso(X, y, 0.1)
      >>> print([c != 0 for c in fit.coef.tolist()], bool(fit.converged))
      [True, False, False, True, False] True
      >>> path = solvers.lasso(X, y, jnp.array([10.0, 1.0, 0.1]))  # a path in one call
      >>> print(path.coef.shape, [int(jnp.sum(c != 0)) for c in path.coef])
      (3, 5) [0, 2, 2]
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
    v.check_finite(fn, X=X, y=y)
    lam = v.real_array(fn, "lam", lam)
    if lam.ndim > 1:
        raise ValueError(f"{fn}: lam must be a scalar or 1-D, got lam.ndim={lam.ndim}.")
    check_range("lam", lam, low=0.0, fn=fn)
    resolved = resolve_method(method, X.shape[1], lam.ndim)
    max_steps = _DEFAULT_STEPS[resolved] if max_steps is None else max_steps
    v.check_max_steps(fn, max_steps)
    tol = v.default_tol(tol, X.dtype)
    # Solve on stop_gradient-ed data, then attach the implicit derivative of coef.
    data = (X, y, lam if lam.dtype == X.dtype else lam.astype(X.dtype))
    res = _implicit.solve_attached(
        data,
        tol,
        solve=_solve,
        rule=_implicit.lasso,
        method=resolved,
        max_steps=max_steps,
        polish=polish,
    )
    v.warn_unconverged(fn, res, tol, resolved, X.dtype)
    return res
