"""The lasso's working sets (``method="ws"``) and the eigendecomposition-free FISTA set-up.

References: scikit-learn's coordinate descent (``solvers.reference.lasso_cd``) and NumPy's
``eigvalsh``.
"""

import jax.numpy as jnp
import numpy as np
import pytest

from l1jax import solvers
from l1jax.solvers import _lasso
from l1jax.solvers import reference as ref


def _sparse_problem(n, d, k, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    beta[rng.choice(d, k, replace=False)] = 3 * rng.standard_normal(k)
    y = X @ beta + rng.standard_normal(n)
    return X, y, np.max(np.abs(X.T @ y)) / n


def _rel(a, b):
    return abs(float(a) - float(b)) / abs(float(b))


@pytest.mark.parametrize("shape", [(40, 500), (300, 120)])
def test_working_sets_reach_the_optimum(x64, shape):
    """d >> n (500 columns, 40 rows) and n > d: the rounds certify the whole problem."""
    n, d = shape
    X, y, lam_max = _sparse_problem(n, d, 5)
    for frac in (0.3, 0.05):
        lam = frac * lam_max
        res = solvers.lasso(X, y, lam, method="ws")
        assert bool(res.converged) and float(res.gap) <= 1e-10
        _, f = ref.lasso_cd(X, y, lam)
        assert _rel(res.objective, f) <= 1e-9
        # Coordinates outside the support satisfy |X_j^T r| / n <= lam (the optimality test).
        r = y - X @ np.asarray(res.coef)
        assert np.max(np.abs(X.T @ r) / n) <= lam * (1 + 1e-8)


def test_a_support_larger_than_the_working_set_is_finished_on_the_whole_gram(x64):
    """lam = 1e-3 lam_max on 200 x 100: about 100 non-zeros, more than the 64 working-set
    columns. The rounds stop uncertified and FISTA on X^T X / n finishes: certified."""
    X, y, lam_max = _sparse_problem(200, 100, 100)
    lam = 1e-3 * lam_max
    res = solvers.lasso(X, y, lam, method="ws")
    assert np.count_nonzero(np.asarray(res.coef)) > max(_lasso.working_set_sizes(100))
    assert bool(res.converged)
    _, f = ref.lasso_cd(X, y, lam)
    assert _rel(res.objective, f) <= 1e-9


def test_auto_picks_working_sets_for_wide_problems():
    assert _lasso.resolve_method("auto", 200, 0) == "ws"
    assert _lasso.resolve_method("auto", 64, 0) == "fista"
    # a path on the CPU: the homotopy up to 512 columns, then rounds on one Gram matrix
    assert _lasso.resolve_method("auto", 200, 1) == "homotopy"
    assert _lasso.resolve_method("auto", 64, 1) == "homotopy"
    assert _lasso.resolve_method("auto", 513, 1) == "ws"
    assert _lasso.resolve_method("auto", 10_000, 1) == "ws"
    assert _lasso.resolve_method("admm", 10_000, 0) == "admm"


@pytest.mark.parametrize("spectrum", ["clustered", "spread", "rank_one", "zero_top_gap"])
def test_power_iteration_bounds_the_largest_eigenvalue(x64, spectrum):
    """The FISTA step needs L >= lambda_max(G): the bound holds for spectra whose top
    eigenvalues are clustered (slow power iteration), spread, of rank one and repeated."""
    d = 80
    rng = np.random.default_rng(1)
    Q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    ev = {
        "clustered": 1 - np.geomspace(1e-6, 0.5, d),
        "spread": np.geomspace(1e-8, 1, d),
        "rank_one": np.r_[np.zeros(d - 1), 7.0],
        "zero_top_gap": np.r_[np.linspace(0, 1, d - 3), [2.0, 2.0, 2.0]],
    }[spectrum]
    G = (Q * ev) @ Q.T
    L = float(_lasso._lipschitz(jnp.asarray(G)))
    top = np.linalg.eigvalsh(G)[-1]
    assert top <= L <= 1.05 * top * (1 + 1e-12), (L, top)


def test_a_support_larger_than_64_columns_certifies_without_the_whole_gram(x64):
    """d = 4200 > 4096 (no whole-Gram finish), n = 100, 60 true non-zeros, lam = 0.02 lam_max:
    the solution has more than 64 non-zeros. With one working set of 64 columns the rounds
    stopped at a point 25% above the optimum, converged=False; the stages of 16, 64 and 256
    columns certify it."""
    X, y, lam_max = _sparse_problem(100, 4200, 60)
    lam = 0.02 * lam_max
    res = solvers.lasso(X, y, lam, method="ws")
    assert bool(res.converged) and float(res.gap) <= 1e-10
    assert np.count_nonzero(np.asarray(res.coef)) > 64
    _, f = ref.lasso_cd(X, y, lam)
    assert _rel(res.objective, f) <= 1e-9


def test_working_set_stages():
    assert _lasso.working_set_sizes(10) == (10,)
    assert _lasso.working_set_sizes(16) == (16,)
    assert _lasso.working_set_sizes(17) == (16,)
    assert _lasso.working_set_sizes(200) == (16, 64)
    assert _lasso.working_set_sizes(1000) == (16, 64, 256)
