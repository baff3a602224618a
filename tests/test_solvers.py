"""l1jax.solvers against LP/QP references (SciPy HiGHS, scikit-learn) and closed forms.

Small problems, shapes shared across tests so each (method, shape, dtype) compiles once.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l1jax import solvers
from l1jax.solvers import reference as ref

RTOL64 = 1e-6  # the accuracy target in float64: objective within 1e-6 relative of the LP optimum
RTOL32 = 1e-4
TAUS = np.array([0.1, 0.5, 0.9])


def regression(seed, n=60, d=5):
    rng = np.random.default_rng(seed)
    X = np.concatenate([np.ones((n, 1)), rng.standard_normal((n, d - 1))], axis=1)
    y = X @ rng.standard_normal(d) + rng.laplace(size=n)
    return X, y


def sparse_problem(seed, m=20, n=60, k=4):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m, n))
    x = np.zeros(n)
    x[rng.choice(n, k, replace=False)] = rng.standard_normal(k)
    return A, A @ x


def rel(obj, ref_obj):
    return abs(float(obj) - ref_obj) / abs(ref_obj)


def test_lad_matches_lp(x64):
    for seed, (n, d) in [(0, (60, 5)), (1, (60, 5)), (2, (60, 5)), (3, (90, 3))]:
        X, y = regression(seed, n, d)
        _, f = ref.lad_lp(X, y)
        res = solvers.lad(X, y)
        assert res.coef.dtype == jnp.float64 and res.coef.shape == (d,)
        assert bool(res.converged), (seed, res)
        assert rel(res.objective, f) <= RTOL64
        np.testing.assert_allclose(res.objective, np.mean(np.abs(y - X @ np.asarray(res.coef))))


@pytest.mark.parametrize("method", ["ipm", "admm", "irls"])
def test_quantile_array_tau_matches_lp(x64, method):
    for seed in range(2):
        X, y = regression(seed)
        res = solvers.quantile_regression(X, y, TAUS, method=method)
        assert res.coef.shape == (3, 5) and res.objective.shape == (3,)
        assert np.all(np.asarray(res.converged))
        for i, tau in enumerate(TAUS):
            _, f = ref.quantile_lp(X, y, tau)
            assert rel(res.objective[i], f) <= RTOL64, (seed, tau)


def test_quantile_vmap_over_tau_equals_array_tau(x64):
    X, y = regression(0)
    batched = jax.jit(jax.vmap(lambda t: solvers.quantile_regression(X, y, t)))(TAUS)
    direct = solvers.quantile_regression(X, y, TAUS)
    np.testing.assert_allclose(batched.objective, direct.objective, rtol=1e-12)
    scalar = solvers.quantile_regression(X, y, 0.9)
    np.testing.assert_allclose(scalar.objective, direct.objective[2], rtol=1e-12)


def test_lad_jit_vmap_over_problems_nan_is_unconverged(x64):
    Xs, ys = zip(*(regression(seed) for seed in range(4)), strict=True)
    Xs, ys = np.stack(Xs), np.stack(ys)
    ys[3, 7] = np.nan  # cannot be checked under jit: documented to give NaN, converged=False
    res = jax.jit(jax.vmap(solvers.lad))(Xs, ys)
    assert res.coef.shape == (4, 5) and res.num_steps.shape == (4,)
    np.testing.assert_array_equal(res.converged, [True, True, True, False])
    assert np.isnan(float(res.objective[3])) and np.all(np.isnan(np.asarray(res.coef[3])))
    for i in range(3):
        assert rel(res.objective[i], ref.lad_lp(Xs[i], ys[i])[1]) <= RTOL64


def test_lad_ipm_without_polish_reaches_target(x64):
    X, y = regression(1)
    _, f = ref.lad_lp(X, y)
    res = solvers.lad(X, y, polish=False)
    assert bool(res.converged) and rel(res.objective, f) <= RTOL64


def test_lad_intercept_only_is_the_median(x64):
    y = np.random.default_rng(3).standard_normal(61)
    res = solvers.lad(np.ones((61, 1)), y)
    np.testing.assert_allclose(res.coef, [np.median(y)], rtol=1e-12)


def test_quantile_intercept_only_is_the_sample_quantile(x64):
    y = np.random.default_rng(4).standard_normal(61)
    res = solvers.quantile_regression(np.ones((61, 1)), y, 0.25)
    # rho_0.25 is minimised by the order statistic y_(k) with k = ceil(0.25 * 61) = 16.
    np.testing.assert_allclose(res.coef, [np.sort(y)[15]], rtol=1e-12)


LASSO_CASES = [
    ("fista", (60, 5)),
    ("fista", (50, 100)),
    ("ista", (50, 100)),
    ("admm", (50, 100)),
    ("homotopy", (60, 5)),
    ("homotopy", (50, 100)),
]


@pytest.mark.parametrize("method, shape", LASSO_CASES)
def test_lasso_matches_sklearn(x64, method, shape):
    n, d = shape
    for seed in range(2):
        rng = np.random.default_rng(seed)
        X = rng.standard_normal((n, d))
        y = X[:, :3] @ np.array([2.0, -1.0, 0.5]) + 0.3 * rng.standard_normal(n)
        lam_max = np.max(np.abs(X.T @ y)) / n
        lams = lam_max * np.array([0.02, 0.1, 0.5])
        res = solvers.lasso(X, y, lams, method=method)
        assert res.coef.shape == (3, d) and np.all(np.asarray(res.converged))
        for i, lam in enumerate(lams):
            _, f = ref.lasso_cd(X, y, lam)
            assert rel(res.objective[i], f) <= RTOL64, (seed, lam)


def test_lasso_jit_vmap_over_lam_equals_array_lam(x64):
    X, y = regression(0)
    lams = np.array([0.05, 0.2, 0.4])
    batched = jax.jit(jax.vmap(lambda lam: solvers.lasso(X, y, lam)))(lams)
    direct = solvers.lasso(X, y, lams)
    assert np.all(np.asarray(batched.converged))
    np.testing.assert_allclose(batched.coef, direct.coef, atol=1e-12)


def test_lasso_orthogonal_design_is_soft_thresholding(x64):
    n = 60
    Q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((n, 5)))
    X = np.sqrt(n) * Q  # X^T X / n = I
    y = X @ np.array([1.0, -0.05, 0.3, 0.0, 0.12]) + 0.01 * np.random.default_rng(6).normal(size=n)
    lams = np.array([0.0, 0.1, 0.2])
    c = X.T @ y / n
    res = solvers.lasso(X, y, lams)
    expected = np.sign(c) * np.maximum(np.abs(c) - lams[:, None], 0)
    np.testing.assert_allclose(res.coef, expected, atol=1e-12)


@pytest.mark.parametrize("method", ["ipm", "admm"])
def test_basis_pursuit_matches_lp(x64, method):
    for seed in range(3):
        A, b = sparse_problem(seed)
        _, f = ref.basis_pursuit_lp(A, b)
        res = solvers.basis_pursuit(A, b, method=method)
        assert bool(res.converged) and rel(res.objective, f) <= RTOL64
        np.testing.assert_allclose(A @ np.asarray(res.coef), b, atol=1e-9)


def test_basis_pursuit_vmap_over_problems(x64):
    As, bs = zip(*(sparse_problem(seed) for seed in range(3)), strict=True)
    res = jax.jit(jax.vmap(solvers.basis_pursuit))(np.stack(As), np.stack(bs))
    assert res.coef.shape == (3, 60) and np.all(np.asarray(res.converged))
    for i in range(3):
        _, f = ref.basis_pursuit_lp(As[i], bs[i])
        assert rel(res.objective[i], f) <= RTOL64


def test_float32():
    X, y = regression(0)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    res = solvers.lad(X32, y32)
    assert res.coef.dtype == jnp.float32 and bool(res.converged)
    assert rel(res.objective, ref.lad_lp(X, y)[1]) <= RTOL32
    res = solvers.quantile_regression(X32, y32, 0.9, method="admm")
    assert res.coef.dtype == jnp.float32
    assert rel(res.objective, ref.quantile_lp(X, y, 0.9)[1]) <= RTOL32
    lam = 0.1 * np.max(np.abs(X.T @ y)) / 60
    res = solvers.lasso(X32, y32, lam)
    assert res.coef.dtype == jnp.float32
    assert rel(res.objective, ref.lasso_cd(X, y, lam)[1]) <= RTOL32
    A, b = sparse_problem(0)
    res = solvers.basis_pursuit(A.astype(np.float32), b.astype(np.float32))
    assert res.coef.dtype == jnp.float32
    assert rel(res.objective, ref.basis_pursuit_lp(A, b)[1]) <= RTOL32


def test_float32_inputs_stay_float32_with_x64_on(x64):
    # float32 data in a float64 session: no constant of a solver promotes the work to float64.
    X, y = regression(0)
    X32, y32 = X.astype(np.float32), y.astype(np.float32)
    lam = np.float32(0.1 * np.max(np.abs(X.T @ y)) / 60)
    A, b = sparse_problem(0)
    for res, exact in (
        (solvers.lad(X32, y32), ref.lad_lp(X, y)[1]),
        (solvers.lasso(X32, y32, lam), ref.lasso_cd(X, y, float(lam))[1]),
        (
            solvers.basis_pursuit(A.astype(np.float32), b.astype(np.float32)),
            ref.basis_pursuit_lp(A, b)[1],
        ),
    ):
        assert res.coef.dtype == jnp.float32 and res.objective.dtype == jnp.float32
        assert bool(res.converged) and rel(res.objective, exact) <= RTOL32


X0, Y0 = regression(0)
A0, B0 = sparse_problem(0)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: solvers.lad(X0[:, 0], Y0), r"X must be 2-D, got X.ndim=1"),
        (lambda: solvers.lad(X0, Y0[:, None]), r"y must be 1-D"),
        (lambda: solvers.lad(X0, Y0[:-1]), r"same number of rows.*\(60, 5\).*\(59,\)"),
        (lambda: solvers.lad(X0[:3], Y0[:3]), r"at least as many rows as columns.*\(3, 5\)"),
        (lambda: solvers.lad(np.where(X0 > 2, np.nan, X0), Y0), r"X must be finite"),
        (lambda: solvers.lad(X0, np.full(60, np.inf)), r"y must be finite, got 60"),
        (lambda: solvers.lad(X0, Y0, method="simplex"), r"method.*got method='simplex'"),
        (lambda: solvers.lad(X0, Y0, max_steps=0), r"max_steps must be a positive int"),
        (lambda: solvers.lad(X0, Y0, tol=-1.0), r"tol must be a positive float"),
        (lambda: solvers.quantile_regression(X0, Y0, 1.0), r"tau must lie in \(0.0, 1.0\)"),
        (lambda: solvers.quantile_regression(X0, Y0, [0.5, 0.0]), r"tau must lie in"),
        (lambda: solvers.quantile_regression(X0, Y0, np.full((2, 2), 0.5)), r"tau.ndim=2"),
        (lambda: solvers.lasso(X0, Y0, -0.1), r"lam must lie in \[0.0, inf\)"),
        (lambda: solvers.lasso(X0, Y0, 0.1, method="cd"), r"got method='cd'"),
        (lambda: solvers.lasso(X0, Y0[:-1], 0.1), r"same number of rows"),
        (lambda: solvers.basis_pursuit(A0.T, np.zeros(60)), r"m <= n.*\(60, 20\)"),
        (lambda: solvers.basis_pursuit(A0, B0[:-1]), r"same number of rows"),
        (lambda: solvers.basis_pursuit(A0, np.full(20, np.nan)), r"b must be finite"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_input_raises_under_vmap():
    with pytest.raises(ValueError, match=r"X must be 2-D"):
        jax.vmap(solvers.lad)(X0, Y0)


def test_reference_closed_forms():
    y = np.random.default_rng(7).standard_normal(31)
    coef, obj = ref.lad_lp(np.ones((31, 1)), y)
    np.testing.assert_allclose(coef, [np.median(y)], atol=1e-9)
    np.testing.assert_allclose(obj, np.mean(np.abs(y - np.median(y))), rtol=1e-9)
    # 1-sparse signal with A = [I, I]: the l1-minimal split puts all mass on one copy.
    A = np.hstack([np.eye(3), np.eye(3)])
    x, obj = ref.basis_pursuit_lp(A, np.array([0.0, 2.0, 0.0]))
    np.testing.assert_allclose(obj, 2.0)
    np.testing.assert_allclose(A @ x, [0.0, 2.0, 0.0], atol=1e-12)
    X = np.sqrt(8) * np.eye(8)[:, :2]  # X^T X / n = I
    coef, _ = ref.lasso_cd(X, np.arange(8.0), 0.5)
    c = X.T @ np.arange(8.0) / 8
    np.testing.assert_allclose(coef, np.sign(c) * np.maximum(np.abs(c) - 0.5, 0), atol=1e-10)


def test_reference_huber_fit_small_delta_is_lad_large_delta_is_least_squares():
    X, y = regression(5)
    beta, _ = ref.huber_fit(X, y, delta=1e3)
    np.testing.assert_allclose(beta, np.linalg.lstsq(X, y, rcond=None)[0], rtol=1e-8)
    beta, obj = ref.huber_fit(X, y, delta=1e-4)
    _, f = ref.lad_lp(X, y)
    assert abs(obj / 1e-4 - f) <= 1e-3 * f  # huber_delta / delta -> |r| as delta -> 0
    with pytest.raises(ValueError, match="delta must be > 0"):
        ref.huber_fit(X, y, delta=0.0)
