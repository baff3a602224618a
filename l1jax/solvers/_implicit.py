"""Derivatives of the solvers' solutions from their optimality conditions (implicit functions).

Each solver solves on ``stop_gradient``-ed inputs (its ``while_loop`` is never differentiated,
and the ``custom_vmap`` of :func:`l1jax._lapack.unbatched` around it sees no tangent) and passes
the solution through one of the ``jax.custom_jvp`` identities below, ``quantile``, ``lasso`` or
``basis_pursuit``. Their JVP is linear in the tangents, so JAX transposes it for reverse mode:
``jax.jvp``, ``jax.grad``, ``jax.jacfwd``, ``jax.jacrev`` and their compositions under ``jit``
and ``vmap`` all work, at the cost of one small linear solve per tangent (a ``d x d`` system for
quantile regression and the lasso, ``m x m`` for basis pursuit), never of the iterations.

The rule is applied to the solution the solver returned, on the active set that solution
defines (the quantile basis, the lasso support, the basis-pursuit support); each solver's
docstring states the set and so the derivative chosen at degenerate points. The rule's primal
output is the identity's own call, so derivatives of derivatives go through the rule again
(``jax.hessian`` of a smooth loss of the solution).

The linear solve of the tangent is ``lax.custom_linear_solve`` (transposable, differentiable in
the matrix through its ``matvec``) around :func:`_solve`, a ``custom_vmap`` that keeps the
LAPACK calls unbatched on the CPU (``l1jax._lapack`` has why): a batch of right-hand sides for
one matrix (``jacfwd``, ``jacrev``) becomes one solve with many columns, a batch of matrices (a
``vmap`` over problems) a loop of single solves.

The objective's derivative is the derivative of its formula through ``coef`` (for these problems
it equals the envelope-theorem derivative); ``num_steps``, ``converged`` and ``gap`` come from
the ``stop_gradient``-ed solve and have zero derivatives.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp

from l1jax.solvers._certify import pinball_sum
from l1jax.solvers._linalg import independent_rows, smallest_k

__all__ = ["quantile", "lasso", "basis_pursuit", "support_rtol", "solve_attached"]

_sg = jax.lax.stop_gradient


@functools.partial(jax.jit, static_argnames=("solve", "rule", "method", "max_steps", "polish"))
def solve_attached(data, tol, *, solve: Callable, rule: Callable, method, max_steps, polish):
    """``solve(*stop_gradient(data), tol, method=, max_steps=, polish=)`` with the result's
    ``coef`` and ``objective`` passed through the identity ``rule(*data, coef, objective)``.

    One compiled program for the solve and the rule: called eagerly, a ``custom_jvp`` is traced
    anew on every call, which cost more than a small solve itself (a lasso at n = 2000, d = 200).
    """
    res = solve(*(_sg(a) for a in data), tol, method=method, max_steps=max_steps, polish=polish)
    coef, objective = rule(*data, res.coef, res.objective)
    return res._replace(coef=coef, objective=objective)


def _dense_solve(M, r):
    return jnp.linalg.solve(M, r)


_solve = jax.custom_batching.custom_vmap(_dense_solve)


@_solve.def_vmap
def _solve_rule(axis_size, in_batched, M, r):
    """One factorisation for a batch of right-hand sides; a loop on the CPU for a batch of
    matrices (no batched LAPACK call); plain batching on other backends."""
    del axis_size
    m_batched, r_batched = in_batched
    if not m_batched:
        cols = jnp.moveaxis(r, 0, -1)  # (k,) + rest + (batch,)
        out = _solve(M, cols.reshape(cols.shape[0], -1)).reshape(cols.shape)
        return jnp.moveaxis(out, -1, 0), True
    if jax.default_backend() != "cpu":
        return jax.vmap(_dense_solve, in_axes=(0, 0 if r_batched else None))(M, r), True
    if r_batched:
        return jax.lax.map(lambda mr: _solve(*mr), (M, r)), True
    return jax.lax.map(lambda m: _solve(m, r), M), True


def _square_solve(M, rhs):
    """``M^{-1} rhs``, linear and transposable in ``rhs``, differentiable in ``M``."""
    return jax.lax.custom_linear_solve(
        lambda v: M @ v,
        rhs,
        solve=lambda _, r: _solve(M, r),
        transpose_solve=lambda _, r: _solve(M.T, r),
    )


def _masked_spd_solve(G, on, rhs):
    """``(G_SS)^{-1} rhs_S`` on the mask ``on``, zero elsewhere, for symmetric ``G``."""
    mask = on[:, None] & on[None, :]
    M = jnp.where(mask, G, 0) + jnp.diag(jnp.where(on, 0, 1).astype(G.dtype))

    def matvec(v):
        return jnp.where(on, G @ jnp.where(on, v, 0), v)

    out = jax.lax.custom_linear_solve(
        matvec, jnp.where(on, rhs, 0), solve=lambda _, r: _solve(M, r), symmetric=True
    )
    return jnp.where(on, out, 0)


def _rows(fn, coef, *per_row):
    """``fn`` on one solution, or on each row of a stacked one (a 1-D ``tau`` or ``lam``)."""
    if coef.ndim == 1:
        return fn(coef, *per_row)
    return jax.vmap(fn)(coef, *per_row)


# ----------------------------------------------------------------------------------------------
# Quantile regression and LAD: the vertex of a basis of d rows with the smallest residuals.


def quantile_basis(X, y, coef):
    """Rows of the basis the derivative uses: the first ``d`` linearly independent rows in
    increasing ``|y - X coef|``, exact ties in the lower row's favour
    (:func:`l1jax.solvers._linalg.independent_rows`).

    At a non-degenerate vertex these are the ``d`` rows with zero residual. The independence
    test (Gram-Schmidt against the rows taken, relative tolerance ``100 d eps``) passes over a
    row in the span of those taken, such as a repeated observation tied with one taken.
    """
    X = _sg(X)
    return independent_rows(X, _sg(jnp.abs(y - X @ coef)), X.shape[1])


def _quantile_tangent(X, y, coef, dX, dy):
    idx = quantile_basis(X, y, coef)
    return _square_solve(X[idx], dy[idx] - dX[idx] @ coef)


@jax.custom_jvp
def quantile(X, y, tau, coef, objective):
    """``(coef, objective)`` of ``min_b mean(rho_tau(y - X b))``, with their implicit derivative.

    ``coef`` has shape ``(d,)``, or ``(len(tau), d)`` with ``objective`` ``(len(tau),)``.
    """
    del X, y, tau
    return coef, objective


@quantile.defjvp
def _quantile_jvp(primals, tangents):
    X, y, tau, coef, objective = primals
    dX, dy, dtau, _, _ = tangents
    coef, objective = quantile(X, y, tau, coef, objective)
    return (coef, objective), _quantile_tangents(X, y, tau, coef, dX, dy, dtau)


@jax.jit  # one program for an eager jax.grad, not one dispatch per operation
def _quantile_tangents(X, y, tau, coef, dX, dy, dtau):
    n = X.shape[0]

    def one(c, t, dt):
        dc = _quantile_tangent(X, y, c, dX, dy)
        _, dobj = jax.jvp(
            lambda X, y, c, t: pinball_sum(y - X @ c, t) / n, (X, y, c, t), (dX, dy, dc, dt)
        )
        return dc, dobj

    return _rows(one, coef, tau, dtau)


# ----------------------------------------------------------------------------------------------
# Lasso: the KKT system on the support.


def _lasso_tangent(X, y, coef, dX, dy, dlam):
    n = X.shape[0]
    on = _sg(coef) != 0
    s = jnp.sign(_sg(coef))
    r = y - X @ coef
    # X_S^T (X_S b_S - y) / n + lam s = 0, differentiated: G_SS db_S = (dc - dG b)_S - dlam s.
    rhs = (dX.T @ r + X.T @ (dy - dX @ coef)) / n - dlam * s
    return _masked_spd_solve(X.T @ X / n, on, rhs)


@jax.custom_jvp
def lasso(X, y, lam, coef, objective):
    """``(coef, objective)`` of ``min_b ||y - X b||^2 / (2n) + lam ||b||_1``, differentiable."""
    del X, y, lam
    return coef, objective


@lasso.defjvp
def _lasso_jvp(primals, tangents):
    X, y, lam, coef, objective = primals
    dX, dy, dlam, _, _ = tangents
    coef, objective = lasso(X, y, lam, coef, objective)
    return (coef, objective), _lasso_tangents(X, y, lam, coef, dX, dy, dlam)


@jax.jit
def _lasso_tangents(X, y, lam, coef, dX, dy, dlam):
    def one(c, lam_, dlam_):
        dc = _lasso_tangent(X, y, c, dX, dy, dlam_)
        _, dobj = jax.jvp(
            lambda X, y, c, lam_: 0.5 * jnp.mean((y - X @ c) ** 2) + lam_ * jnp.sum(jnp.abs(c)),
            (X, y, c, lam_),
            (dX, dy, dc, dlam_),
        )
        return dc, dobj

    return _rows(one, coef, lam, dlam)


# ----------------------------------------------------------------------------------------------
# Basis pursuit: least squares on the support among the m largest entries.


def support_rtol(dtype) -> float:
    """Entries at or below this fraction of ``max |x|`` are zero for basis pursuit's support
    (the threshold its vertex polish treats as degenerate)."""
    return 10 * float(jnp.finfo(dtype).eps) ** 0.5


def basis_pursuit_support(x, m):
    """``(idx, on)``: the ``m`` largest ``|x|`` (ties to the lower index) and which of them are
    above :func:`support_rtol` of the largest."""
    absx = _sg(jnp.abs(x))
    top = jnp.max(absx)
    idx = smallest_k(top - absx, m)
    return idx, absx[idx] > support_rtol(x.dtype) * top


def _basis_pursuit_tangent(A, b, x, dA, db):
    idx, on = basis_pursuit_support(x, A.shape[0])
    As, dAs = A[:, idx], dA[:, idx]
    xs = jnp.where(on, x[idx], 0)
    # Derivative of the least-squares solution of A_S x_S = b (exact when |S| = m); the
    # residual term vanishes at a feasible x but keeps second derivatives those of that map.
    rhs = As.T @ (db - dAs @ xs) + dAs.T @ (b - As @ xs)
    dxs = _masked_spd_solve(As.T @ As, on, rhs)
    # Scatter to the full x as a product with the selection matrix: transposable for any idx.
    select = (idx[:, None] == jnp.arange(x.shape[0])[None, :]).astype(x.dtype)
    return dxs @ select


@jax.custom_jvp
def basis_pursuit(A, b, x, objective):
    """``(x, ||x||_1)`` of ``min ||x||_1 s.t. A x = b``, with their implicit derivative."""
    del A, b
    return x, objective


@basis_pursuit.defjvp
def _basis_pursuit_jvp(primals, tangents):
    A, b, x, objective = primals
    dA, db, _, _ = tangents
    x, objective = basis_pursuit(A, b, x, objective)
    return (x, objective), _basis_pursuit_tangents(A, b, x, dA, db)


@jax.jit
def _basis_pursuit_tangents(A, b, x, dA, db):
    dx = _basis_pursuit_tangent(A, b, x, dA, db)
    _, dobj = jax.jvp(lambda x: jnp.sum(jnp.abs(x)), (x,), (dx,))
    return dx, dobj
