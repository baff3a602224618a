"""The lasso path by homotopy (``method="homotopy"``, ``"auto"`` for a path on the CPU).

References: scikit-learn's ``lasso_path`` and ``Lasso`` (coordinate descent), NumPy's least
squares, and the working-set method on the same problems.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.linear_model import lasso_path

from l1jax import solvers
from l1jax.solvers import _lasso
from l1jax.solvers import _lasso_homotopy as hom


def _problem(n, d, k=5, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    beta[rng.choice(d, k, replace=False)] = rng.choice([-1.0, 1.0], k) * rng.uniform(1, 2, k)
    y = X @ beta + rng.standard_normal(n)
    return X, y, np.max(np.abs(X.T @ y)) / n


def _objective(X, y, coef, lam):
    return 0.5 * np.mean((y - X @ coef) ** 2) + lam * np.sum(np.abs(coef))


def _walk(X, y, lams, max_kinks=10_000):
    """The walk alone (no fallback): per lam, (coef, finished, certified gap)."""
    n = X.shape[0]
    G, c, yy = X.T @ X / n, y @ X / n, y @ y / n
    w = hom.start(G, c)
    ln = hom.line(G, c, w)
    out = []
    for lam in lams:
        w, ln, b, corr, _, finished = hom.walk_to(G, c, w, ln, jnp.asarray(lam), max_kinks)
        q = yy / 2 - 0.5 * (b @ c + b @ corr)
        out.append((np.asarray(b), bool(finished), float(_lasso._rel_gap(c, yy, lam, b, corr, q))))
    return out


def test_the_path_is_scikit_learns_lasso_path(x64):
    """40 lambdas from above lam_max down to 1e-3 lam_max on 300 x 40: every point of the walk
    certifies on its own (no fallback) and matches ``lasso_path`` (tol 1e-14) to 1e-9."""
    X, y, lam_max = _problem(300, 40)
    lams = lam_max * np.geomspace(1.5, 1e-3, 40)
    res = solvers.lasso(X, y, lams)  # auto: the homotopy
    assert _lasso.resolve_method("auto", 40, 1) == "homotopy"
    assert bool(np.all(np.asarray(res.converged)))
    alphas, coefs, _ = lasso_path(X, y, alphas=lams, tol=1e-14, max_iter=1_000_000)
    np.testing.assert_allclose(alphas, lams)
    np.testing.assert_allclose(res.coef, coefs.T, atol=1e-9)
    for i, lam in enumerate(lams):
        np.testing.assert_allclose(res.objective[i], _objective(X, y, coefs[:, i], lam), rtol=1e-9)
    assert np.all(np.asarray(res.coef)[lams >= lam_max] == 0)
    for i, (b, finished, gap) in enumerate(_walk(jnp.asarray(X), jnp.asarray(y), lams)):
        assert finished and gap <= 1e-10
        np.testing.assert_allclose(b, res.coef[i], atol=1e-12)
    # Kinks: at least one per coefficient that entered on the way down.
    assert int(np.sum(res.num_steps)) >= np.count_nonzero(res.coef[-1])


def test_lam_zero_is_least_squares_and_the_order_of_lam_is_kept(x64):
    X, y, lam_max = _problem(80, 6, k=3, seed=1)
    lams = np.array([0.3, 0.0, 2.0, 0.05]) * lam_max  # unsorted, with 0 and above lam_max
    res = solvers.lasso(X, y, lams, method="homotopy")
    assert bool(np.all(np.asarray(res.converged)))
    np.testing.assert_allclose(res.coef[1], np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-10)
    assert np.all(np.asarray(res.coef[2]) == 0)
    for i in (0, 3):
        one = solvers.lasso(X, y, lams[i], method="ws")
        np.testing.assert_allclose(res.coef[i], one.coef, atol=1e-9)
    # A scalar lam walks from lam_max to it.
    single = solvers.lasso(X, y, lams[3], method="homotopy")
    assert single.coef.shape == (6,) and bool(single.converged)
    np.testing.assert_allclose(single.coef, res.coef[3], atol=1e-12)


def test_a_duplicated_column_stays_out(x64):
    """A column equal to another reaches the bound with it, but its correlation then stays on
    the bound (its slope is the other's), so it never enters, where its pivot would be 0: the
    walk certifies at the working-set method's objective, one of the two columns non-zero."""
    X, y, lam_max = _problem(120, 10, k=3, seed=2)
    j = int(np.argmax(np.abs(X.T @ y)))  # the first column to enter
    X = np.concatenate([X, X[:, j : j + 1]], axis=1)
    lams = lam_max * np.geomspace(0.9, 1e-2, 12)
    assert all(f and gap <= 1e-10 for _, f, gap in _walk(jnp.asarray(X), jnp.asarray(y), lams))
    res = solvers.lasso(X, y, lams, method="homotopy")
    ws = solvers.lasso(X, y, lams, method="ws")
    assert bool(np.all(np.asarray(res.converged)))
    np.testing.assert_allclose(res.objective, ws.objective, rtol=1e-9)
    assert np.all(np.asarray(res.coef[:, -1]) == 0) and np.all(np.asarray(res.coef[:, j]) != 0)


def test_a_walk_cut_short_falls_back_on_fista(x64):
    """With max_steps = 2 kinks between two lam the walk stops short of some; those lam are
    solved by FISTA (whose first check polishes on the support, exact) and the walk restarts
    from that solution: every lam certified, at the uncut walk's solution."""
    X, y, lam_max = _problem(120, 10, k=4, seed=3)
    lams = lam_max * np.array([0.6, 0.1, 0.01])
    walk = _walk(jnp.asarray(X), jnp.asarray(y), lams, max_kinks=2)
    assert not all(f for _, f, _ in walk)
    cut = solvers.lasso(X, y, lams, method="homotopy", max_steps=2)
    full = solvers.lasso(X, y, lams, method="homotopy")
    assert bool(np.all(np.asarray(cut.converged)))
    np.testing.assert_allclose(cut.coef, full.coef, atol=1e-9)
    assert int(np.sum(cut.num_steps)) > int(np.sum(full.num_steps))  # FISTA's steps count


def test_more_columns_than_rows(x64):
    """d = 60 > n = 25, down to 1e-2 lam_max: supports stay below n, the path certifies."""
    X, y, lam_max = _problem(25, 60, k=3, seed=3)
    lams = lam_max * np.geomspace(1.0, 1e-2, 15)
    res = solvers.lasso(X, y, lams, method="homotopy")
    assert bool(np.all(np.asarray(res.converged)))
    assert np.all(np.count_nonzero(np.asarray(res.coef), axis=1) <= 25)
    ws = solvers.lasso(X, y, lams, method="ws")
    np.testing.assert_allclose(res.objective, ws.objective, rtol=1e-9)


def test_jit_vmap_over_problems_grad_and_nan(x64):
    X, y, lam_max = _problem(50, 8, k=3, seed=4)
    lams = jnp.asarray(lam_max * np.array([0.5, 0.1, 0.02]))
    ys = jnp.stack([jnp.asarray(y), jnp.asarray(y[::-1]), jnp.asarray(2 * y)])
    fit = jax.jit(jax.vmap(lambda y_: solvers.lasso(X, y_, lams, method="homotopy")))
    batched = fit(ys)
    for i in range(3):
        one = solvers.lasso(X, ys[i], lams, method="ws")
        np.testing.assert_allclose(batched.coef[i], one.coef, atol=1e-9)
    assert bool(np.all(np.asarray(batched.converged)))
    # Implicit derivatives: the same as through the working-set solution.
    grads = [
        jax.grad(lambda y_, m=m: jnp.sum(solvers.lasso(X, y_, lams, method=m).coef ** 2))(y)
        for m in ("homotopy", "ws")
    ]
    np.testing.assert_allclose(grads[0], grads[1], atol=1e-8)
    # NaN in, NaN out, not converged (under jit, where the data cannot be checked).
    bad = fit(ys.at[1, 3].set(jnp.nan))
    assert bool(np.all(np.isnan(np.asarray(bad.coef[1]))))
    assert not bool(np.any(np.asarray(bad.converged[1])))
    assert bool(np.all(np.asarray(bad.converged[0])))


def test_float32_path_certifies():
    X, y, lam_max = _problem(400, 30, seed=5)
    lams = lam_max * np.geomspace(1.0, 1e-3, 30)
    res = solvers.lasso(
        jnp.asarray(X, jnp.float32), jnp.asarray(y, jnp.float32), jnp.asarray(lams, jnp.float32)
    )
    assert res.coef.dtype == jnp.float32
    assert bool(np.all(np.asarray(res.converged)))
    with jax.enable_x64(True):
        ref = solvers.lasso(X, y, lams, method="ws")
    np.testing.assert_allclose(res.objective, ref.objective, rtol=1e-5)


@pytest.mark.parametrize("d", [1, 3])
def test_tiny_problems(x64, d):
    X, y, lam_max = _problem(30, d, k=1, seed=6)
    lams = lam_max * np.array([1.0, 0.5, 0.0])
    res = solvers.lasso(X, y, lams, method="homotopy")
    assert bool(np.all(np.asarray(res.converged)))
    np.testing.assert_allclose(res.coef[2], np.linalg.lstsq(X, y, rcond=None)[0], atol=1e-10)
    assert np.all(np.asarray(res.coef[0]) == 0)
