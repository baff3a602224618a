"""Certificates and the vertex finish for quantile regression ``min_b sum rho_tau(y - X b)``.

The LP dual is ``max_u y^T u  s.t.  X^T u = 0,  tau - 1 <= u <= tau``. For any dual-feasible
``u`` and any ``b`` with residual ``r = y - X b``,

    sum rho_tau(r) - optimum <= sum rho_tau(r) - y^T u = sum_i [rho_tau(r_i) - u_i r_i],

a sum of non-negative terms (``rho_tau(r) = max_{u in [tau-1, tau]} u r``), so it is computed
without the cancellation of subtracting two nearly equal objectives. :func:`dual_gap` turns any
candidate ``u`` (an interior-point dual, ADMM's scaled multiplier, IRLS weights, a vertex's basis
dual) into a feasible one (:func:`feasible_dual`) and :func:`gap_of` returns that bound: it is
the certificate behind ``converged``.

At a vertex (``d`` residuals exactly zero, basis ``B``) the dual on the basis solves
``X_B^T a = -X_N^T psi_N``; the vertex is optimal iff ``a`` lies in the box. :func:`refine` pivots
from a vertex to a better one while the box is violated (Barrodale-Roberts simplex steps with an
exact line search), so an approximate interior-point or ADMM solution finishes at the exact LP
optimum even in float32.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl

from l1jax.solvers._linalg import independent_rows, prefix_sum


def pinball_sum(r: jax.Array, tau: jax.Array) -> jax.Array:
    return jnp.sum(jnp.maximum(tau * r, (tau - 1) * r))


def feasible_dual(X, chol, tau, u, feasible=False):
    """A dual-feasible point from the candidate ``u`` (see module docstring).

    ``u`` is clipped into the box, projected onto ``X^T u = 0`` (``chol`` factors ``X^T X``) and
    scaled back into the box (which contains 0), so it is dual feasible up to the round-off of
    the projection. ``feasible=True`` skips the projection for a vertex's basis dual that
    :func:`_basis_solve` has shown to lie inside the box with a margin larger than its error
    estimate: the exact dual of that basis is then feasible and the vertex optimal, and
    projecting would only add round-off amplified by ``cond(X)``.
    """
    u = jnp.clip(u, tau - 1, tau)
    u = jax.lax.cond(feasible, lambda: u, lambda: u - X @ jsl.cho_solve(chol, u @ X))
    over = jnp.max(jnp.where(u > 0, u / tau, -u / (1 - tau)))
    return u / jnp.maximum(1, over)


def gap_of(r, tau, u):
    """``sum rho_tau(r) - y^T u`` for a feasible ``u``, as a sum of non-negative terms.

    NaN anywhere gives NaN, which no tolerance test passes.
    """
    return jnp.sum(jnp.maximum(tau * r, (tau - 1) * r) - u * r)


def scale_of(y: jax.Array) -> jax.Array:
    """Round-off scale of a pinball objective: a gap below ``eps ||y||_1`` is not resolvable."""
    return jnp.finfo(y.dtype).eps * jnp.sum(jnp.abs(y))


def relative_gap(gap, obj, y):
    return gap / jnp.maximum(obj, jnp.maximum(scale_of(y), jnp.finfo(y.dtype).tiny))


def _basis_solve(X, y, tau, idx):
    """Vertex through the rows ``idx``: ``(b, r, dual u, basis dual a, lu, in_basis, inside)``."""
    lu = jsl.lu_factor(X[idx])  # one factorisation for the primal and the dual solve
    b = jsl.lu_solve(lu, y[idx])
    r = y - X @ b
    in_basis = jnp.zeros(r.shape, bool).at[idx].set(True)
    psi = jnp.where(in_basis, 0.0, jnp.where(r > 0, tau, tau - 1)).astype(X.dtype)
    rhs = -(psi @ X)
    a = jsl.lu_solve(lu, rhs, trans=1)
    # One refinement step estimates the forward error of a (its size, not a better a: the
    # residual is computed in working precision). The exact basis dual is inside the box when a
    # is, by ten times that estimate plus the rounding of a itself.
    da = jsl.lu_solve(lu, rhs - X[idx].T @ a, trans=1)
    err = 10 * (jnp.abs(da) + jnp.finfo(X.dtype).eps * jnp.abs(a))
    inside = jnp.all((a - err >= tau - 1) & (a + err <= tau))
    u = psi.at[idx].set(a)
    return b, r, u, a, lu, in_basis, inside


def vertex(X, y, tau, chol, r):
    """Vertex through the ``d`` smallest ``|r|`` whose rows are independent (a repeated
    observation is passed over): ``(b, residual, objective, feasible dual, whether that dual
    certifies the vertex optimal)``."""
    idx = independent_rows(X, jnp.abs(r), X.shape[1])
    b, rv, u, *_, inside = _basis_solve(X, y, tau, idx)
    obj = pinball_sum(rv, tau)
    obj = jnp.where(jnp.isfinite(obj), obj, jnp.inf)
    return b, rv, obj, feasible_dual(X, chol, tau, u, inside), inside


def refine(X, y, tau, chol, r, tol, max_pivots):
    """Simplex pivots from the vertex through the ``d`` smallest ``|r|``, until certified.

    Each pivot frees the basis residual whose dual entry leaves the box furthest (the steepest
    descent edge) and moves along that edge to the minimiser of the objective on it, a weighted
    median of the breakpoints where other residuals cross zero; that row enters the basis.
    Returns ``(b, residual, objective, gap, pivots)`` of the best vertex visited.
    """
    n, d = X.shape
    iota = jnp.arange(n)

    def state_of(idx):
        b, rv, u, a, lu, in_basis, inside = _basis_solve(X, y, tau, idx)
        obj = pinball_sum(rv, tau)
        obj = jnp.where(jnp.isfinite(obj), obj, jnp.inf)
        gap = gap_of(rv, tau, feasible_dual(X, chol, tau, u, inside))
        return b, rv, obj, gap, a, lu, in_basis

    def pivot(idx, rv, a, lu, in_basis):
        hi, lo = a - tau, (tau - 1) - a
        viol = jnp.maximum(hi, lo)
        j = jnp.argmax(viol)
        sigma = jnp.where(hi[j] >= lo[j], 1.0, -1.0).astype(X.dtype)
        # Freeing basis row j by sigma t moves b along -sigma X_B^{-1} e_j; residual i changes
        # at rate -w_i. The objective's slope along the edge starts at -viol_j.
        delta = -sigma * jsl.lu_solve(lu, jnp.zeros((d,), X.dtype).at[j].set(1))
        w = X @ delta
        side = jnp.where(rv > 0, 1.0, -1.0)
        crosses = ~in_basis & (side * w > 0)
        t = jnp.where(crosses, rv / jnp.where(crosses, w, 1), jnp.inf)
        t = jnp.maximum(t, 0)
        jump = jnp.where(crosses, jnp.abs(w), 0)
        t_sorted, jump_sorted, order = jax.lax.sort((t, jump, iota), num_keys=1)
        slope = -viol[j] + prefix_sum(jump_sorted)
        p = jnp.argmax(slope >= 0)
        ok = (viol[j] > 0) & (slope[p] >= 0) & jnp.isfinite(t_sorted[p])
        return jnp.where(ok, idx.at[j].set(order[p]), idx), ok

    def cond(st):
        *_, gap, obj, k, moved = st
        return (k < max_pivots) & moved & ~(relative_gap(gap, obj, y) <= tol)

    def body(st):
        idx, rv, a, lu, in_basis, best, gap, obj, k, _ = st
        idx, moved = pivot(idx, rv, a, lu, in_basis)
        b, rv, objv, gapv, a, lu, in_basis = state_of(idx)
        better = objv <= best[2]
        best = jax.tree_util.tree_map(lambda x, y: jnp.where(better, x, y), (b, rv, objv), best)
        gap = jnp.where(better, gapv, gap)
        # A singular basis (collinear rows) ends the walk at the best vertex so far.
        moved = moved & jnp.isfinite(objv)
        return idx, rv, a, lu, in_basis, best, gap, best[2], k + 1, moved

    idx = independent_rows(X, jnp.abs(r), d)
    b, rv, obj, gap, a, lu, in_basis = state_of(idx)
    init = (idx, rv, a, lu, in_basis, (b, rv, obj), gap, obj, jnp.array(0, jnp.int32), True)
    init = init[:-1] + (jnp.isfinite(obj),)
    *_, (b, rv, obj), gap, _, k, _ = jax.lax.while_loop(cond, body, init)
    return b, rv, obj, gap, k
