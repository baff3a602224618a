"""Lasso path by homotopy (Osborne, Presnell and Turlach 2000; LARS-lasso, Efron et al. 2004).

On a fixed support ``S`` with signs ``s`` the lasso solution is linear in ``lam``:
``b_S(lam) = p - lam q`` with ``p = G_SS^{-1} c_S`` and ``q = G_SS^{-1} s``, and the correlations
``c - G b(lam) = e + lam f`` off ``S``. Going down in ``lam``, the support changes where a
coefficient reaches zero (``lam = p_j / q_j``) or a correlation reaches the bound
(``e_j + lam f_j = +-lam``). The walk moves from one such kink to the next and, at each ``lam``
of the grid, reads off the solution and certifies it with the duality gap.

``H``, the inverse of ``M(S)`` (``G`` on ``S`` and the identity off it, a ``d x d`` array of static
shape), follows the support through one rank-one update per kink (``O(d^2)``, no factorisation):
adding ``j`` is a bordering step with the Schur complement ``G_jj - G_jS H G_Sj`` as pivot,
removing it the inverse step. A grid point whose solution does not certify (round-off in
``H``, a degenerate kink, more kinks than allowed) is solved by the caller's fallback, and the
walk restarts from that solution with ``H`` built afresh.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

_PIVOT_RTOL = 1e-10  # an added column keeps at least this fraction of G_jj past the support


class _Walk(NamedTuple):
    lam: jax.Array  # where the walk stands
    on: jax.Array  # support S (bool, d)
    sgn: jax.Array  # signs on S (0 off it)
    H: jax.Array  # inverse of M(S)
    ok: jax.Array  # H is the inverse of M(on) (no pivot rejected since it was built)


def _toggle(G, H, on, j):
    """Add ``j`` to the support or remove it: ``(H, on, pivot accepted, v, pivot)`` with the
    update ``H + v v^T / pivot - e_j e_j^T`` (add) or ``H - v v^T / pivot + e_j e_j^T``
    (remove, ``v = H e_j``, ``pivot = H_jj``)."""
    d = G.shape[0]
    inside = on[j]
    unit = (jnp.arange(d) == j).astype(H.dtype)
    g = jnp.where(on, G[j], 0)  # G is symmetric: its row j is its column j
    # One matvec serves both cases: the column H e_j to remove j, G_SS^{-1} G_Sj (on S) to add it.
    z = H @ jnp.where(inside, unit, g)
    pivot = jnp.where(inside, z[j], G[j, j] - g @ z)
    v = jnp.where(inside, z, z - unit)
    scale = jnp.where(inside, -1, 1) / pivot
    H = H + jnp.outer(v, scale * v) + jnp.outer(unit, jnp.where(inside, 1, -1) * unit)
    good = jnp.where(inside, pivot > 0, pivot > _PIVOT_RTOL * G[j, j]) & jnp.isfinite(pivot)
    return H, on ^ (jnp.arange(d) == j), good, v, pivot


class Line(NamedTuple):
    """The solution ``p - lam q`` on the support (``p = H c_S``, ``q = H s``, zero off it) and
    the correlations ``c - G b = e + lam f`` (``e = c - G p``, ``f = G q``)."""

    p: jax.Array
    q: jax.Array
    e: jax.Array
    f: jax.Array


def line(G, c, w):
    """:class:`Line` of the walk ``w``, computed afresh from ``H``."""
    on = w.on
    # (2, d) @ (d, d): H and G are symmetric, and XLA:CPU runs this form much faster than
    # (d, d) @ (d, 2).
    pq = jnp.where(on[None, :], jnp.stack([jnp.where(on, c, 0), w.sgn]) @ w.H, 0)
    ef = pq @ G
    return Line(pq[0], pq[1], c - ef[0], ef[1])


def _events(w, ln, lam_t, last):
    """The next kink below ``w.lam`` and above ``lam_t``: ``(its lam or -inf, index, sign)``."""
    dtype = ln.p.dtype
    d = ln.p.shape[0]
    tiny = jnp.finfo(dtype).tiny
    idx = jnp.arange(d)
    # A kink within 4 ulps above lam_t is left for the next walk (whose window reaches 8 ulps
    # above where the walk stands): the coefficient it would start (about 4 eps lam / G_jj) is
    # round-off, and at a lam_max computed elsewhere (NumPy's X^T y / n) coef should be 0.
    eps = jnp.finfo(dtype).eps
    floor, ceiling = lam_t * (1 + 4 * eps), w.lam * (1 + 8 * eps)
    inside = lambda x: (x > floor) & (x <= ceiling)  # noqa: E731
    # A coefficient of S reaches 0: it shrinks as lam goes down (sgn q < 0). A correlation off S
    # reaches +lam (-lam): it grows past the bound (1 - f > 0, 1 + f > 0). These slope
    # conditions keep a coefficient that just left (entered) at lam from coming back (leaving)
    # at the same lam.
    shrinks = w.on & (w.sgn * ln.q < 0)
    t_out = jnp.where(shrinks, ln.p / jnp.where(shrinks, ln.q, 1), -jnp.inf)
    dp, dm = 1 - ln.f, 1 + ln.f
    t_up = jnp.where(dp > tiny, ln.e / jnp.where(dp > tiny, dp, 1), -jnp.inf)
    t_dn = jnp.where(dm > tiny, -ln.e / jnp.where(dm > tiny, dm, 1), -jnp.inf)
    off = ~w.on & (idx != last)
    cand_out = jnp.where(inside(t_out) & (idx != last), t_out, -jnp.inf)
    cand_up = jnp.where(off & inside(t_up), t_up, -jnp.inf)
    cand_dn = jnp.where(off & inside(t_dn), t_dn, -jnp.inf)
    cand = jnp.maximum(cand_out, jnp.maximum(cand_up, cand_dn))
    # max, then the first index attaining it: two plain reductions (XLA:CPU's fusion emitters
    # compile the variadic reduction of argmax into much slower code)
    top = jnp.max(cand)
    j = jnp.min(jnp.where(cand == top, idx, d - 1))
    return jnp.minimum(top, w.lam), j, jnp.where(cand_up[j] >= cand_dn[j], 1.0, -1.0).astype(dtype)


def walk_to(G, c, w, ln, lam_t, max_kinks):
    """Walk from ``w.lam`` (where its line is ``ln``) down to ``lam_t``: ``(walk, its line,
    b(lam_t), c - G b(lam_t), kinks, finished)``.

    Between kinks the line follows the rank-one updates of ``H`` (``O(d)`` and one matvec with
    ``G``); at ``lam_t`` it is computed afresh, so that ``b`` and its correlations are those of
    ``H``. ``finished`` is false when the walk stopped early: ``max_kinks`` reached or a pivot
    rejected."""

    def cond(st):
        w, _, _, k, go = st
        return go & w.ok & (k < max_kinks)

    def body(st):
        w, ln, last, k, _ = st
        t, j, new_sgn = _events(w, ln, lam_t, last)
        kink = t > -jnp.inf
        inside = w.on[j]
        H, on, good, v, pivot = _toggle(G, w.H, w.on, j)
        sgn = jnp.where(on, w.sgn.at[j].set(jnp.where(inside, 0.0, new_sgn)), 0)
        # p' = H' c_S', q' = H' s': removing j, p' = p - (p_j / H_jj) v; adding it,
        # p' = p + (v . c_S') v / pivot (v = 0 off S + j); the same for q with the signs.
        a_p = jnp.where(inside, -ln.p[j], v @ jnp.where(on, c, 0)) / pivot
        a_q = jnp.where(inside, -ln.q[j], v @ sgn) / pivot
        Gv = G @ v
        moved = (
            _Walk(t, on, sgn, H, good),
            Line(ln.p + a_p * v, ln.q + a_q * v, ln.e - a_p * Gv, ln.f + a_q * Gv),
        )
        stay = (w._replace(lam=jnp.maximum(lam_t, 0)), ln)
        w, ln = jax.tree.map(lambda a, b: jnp.where(kink, a, b), moved, stay)
        return w, ln, j, k + kink.astype(k.dtype), kink

    init = (w, ln, jnp.array(-1), jnp.array(0, jnp.int32), jnp.array(True))
    w, ln, _, k, go = jax.lax.while_loop(cond, body, init)
    ln = line(G, c, w)
    return w, ln, ln.p - lam_t * ln.q, ln.e + lam_t * ln.f, k, ~go & w.ok


def restart(G, lam, b):
    """The walk at ``lam`` from a solution ``b`` there: its support and signs, and ``H`` built by
    adding the support's columns one at a time to ``M(empty) = I``.

    No LAPACK call: its column-major result would make XLA:CPU keep the walk's carry in that
    layout and transpose ``H`` twice per ``lam``."""
    d = G.shape[0]
    want = b != 0

    def cond(st):
        _, on, good = st
        return good & jnp.any(want & ~on)

    def body(st):
        H, on, good = st
        j = jnp.min(jnp.where(want & ~on, jnp.arange(d), d - 1))
        return _toggle(G, H, on, j)[:3]

    H, on, good = jax.lax.while_loop(
        cond, body, (jnp.eye(d, dtype=G.dtype), jnp.zeros((d,), bool), jnp.array(True))
    )
    return _Walk(lam, on, jnp.where(on, jnp.sign(b), 0), H, good & jnp.all(on == want))


def start(G, c):
    """The walk at ``lam = max |c|`` (the solution 0 there and above)."""
    d = G.shape[0]
    dtype = G.dtype
    return _Walk(
        jnp.max(jnp.abs(c)),
        jnp.zeros((d,), bool),
        jnp.zeros((d,), dtype),
        jnp.eye(d, dtype=dtype),
        jnp.array(True),
    )
