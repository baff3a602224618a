"""Portnoy-Koenker preprocessing (``method="pfn"``): the interior point method's vertex, certified.

Every case compares against ``method="ipm"`` on all rows (itself checked against SciPy's HiGHS in
``tests/test_solvers.py``); the internal sizes are forced small to reach the fix-up and fall-back
branches, whose use ``_pfn(..., stats=True)`` reports. The derivative of a ``pfn`` solution is
the one of ``tests/test_implicit_diff.py``: it depends on the returned vertex, not the method.
"""

import functools

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from l1jax import solvers
from l1jax.solvers import _quantile
from l1jax.solvers._linalg import equilibrate

N, D = 3000, 4
TAUS = np.array([0.1, 0.5, 0.9])


def _data(seed=0, n=N, d=D):
    rng = np.random.default_rng(seed)
    X = np.concatenate([np.ones((n, 1)), rng.standard_normal((n, d - 1))], axis=1)
    y = X @ rng.standard_normal(d) + rng.laplace(size=n)
    out = rng.random(n) < 0.05
    y[out] += 50 * rng.standard_normal(int(out.sum()))
    return X, y


@functools.partial(jax.jit, static_argnames="sizes")
def _pfn_stats(X, y, tau, sizes=None):
    """``_pfn`` on the equilibrated problem, as ``_solve_problem`` runs it, with its stats."""
    Xs = equilibrate(X).Xs
    ys = y / jnp.max(jnp.abs(y))
    chol = jsl.cho_factor(Xs.T @ Xs)
    best, _, stats = _quantile._pfn(Xs, ys, tau, 1e-10, 100, True, chol, sizes, stats=True)
    objective = best[2] * jnp.max(jnp.abs(y)) / X.shape[0]  # mean pinball loss, unscaled
    return _quantile._done(best, ys, 1e-10), objective, stats


@pytest.fixture(scope="module")
def problem():
    with jax.enable_x64(True):
        X, y = _data()
        ipm = solvers.quantile_regression(X, y, TAUS, method="ipm")
    return X, y, ipm


def test_pfn_ends_at_the_interior_point_vertex(problem, x64):
    X, y, ipm = problem
    res = solvers.quantile_regression(X, y, TAUS, method="pfn")
    assert np.all(np.asarray(res.converged)) and np.all(np.asarray(ipm.converged))
    np.testing.assert_allclose(np.asarray(res.coef), np.asarray(ipm.coef), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.asarray(res.objective), np.asarray(ipm.objective), rtol=1e-12)
    # At the default sizes the first reduced problem is already right: no fix-up, no full solve.
    for tau in TAUS:
        done, _, stats = _pfn_stats(X, y, tau)
        assert bool(done)
        assert int(stats["fixups"]) == 0 and not bool(stats["full_solve"])
        assert int(stats["kept"]) == _quantile.pfn_sizes(N, D)[1]


def test_wrongly_globbed_rows_are_moved_back(problem, x64):
    """A window of 150 rows at tau = 0.1: the reduced solve leaves 39 globbed residuals with the
    wrong sign; their rows join the reduced problem and the next reduced solve is the optimum."""
    X, y, ipm = problem
    done, objective, stats = _pfn_stats(X, y, 0.1, sizes=(609, 150, 600))
    assert bool(done) and not bool(stats["full_solve"])
    assert int(stats["fixups"]) == 1 and int(stats["bad"]) == 0 and int(stats["kept"]) == 189
    np.testing.assert_allclose(float(objective), float(ipm.objective[0]), rtol=1e-12)


def test_too_many_wrong_signs_end_in_the_full_solve(problem, x64):
    """A window of 80 rows is too narrow at tau = 0.1: the globs' sums leave the reduced
    problem's optimum far off (about half the globbed signs wrong), more rows than the reduced
    problem has room for, and the simplex pivots do not certify it: the full interior point
    method solves it."""
    X, y, ipm = problem
    done, objective, stats = _pfn_stats(X, y, 0.1, sizes=(609, 80, 600))
    assert bool(done) and bool(stats["full_solve"])
    assert int(stats["fixups"]) == 0 and int(stats["bad"]) > 609 - 80
    np.testing.assert_allclose(float(objective), float(ipm.objective[0]), rtol=1e-12)


def test_pfn_in_float32_is_certified_and_near_the_float64_optimum(problem):
    X, y, ipm = problem
    res = solvers.quantile_regression(
        X.astype(np.float32), y.astype(np.float32), TAUS, method="pfn"
    )
    assert res.coef.dtype == jnp.float32
    assert np.all(np.asarray(res.converged)), np.asarray(res.gap)
    f64 = np.asarray(ipm.objective)
    for i, tau in enumerate(TAUS):
        r = y - X @ np.asarray(res.coef[i], np.float64)
        obj = np.mean(np.maximum(tau * r, (tau - 1) * r))
        assert (obj - f64[i]) / f64[i] <= 1e-5, (tau, obj, f64[i])


def test_nan_data_give_nan_under_jit(problem, x64):
    X, y, _ = problem
    y = y.copy()
    y[7] = np.nan
    res = jax.jit(lambda X, y: solvers.lad(X, y, method="pfn"))(X, y)
    assert not bool(res.converged) and np.isnan(float(res.objective))
    assert np.all(np.isnan(np.asarray(res.coef)))


def test_auto_takes_pfn_where_it_pays():
    assert _quantile.pfn_pays(10**6, 20) and _quantile.pfn_pays(10**5, 50)  # 1e5 x 50: 1.6x ipm
    assert not _quantile.pfn_pays(5000, 20) and not _quantile.pfn_pays(5 * 10**4, 50)
    big = jax.ShapeDtypeStruct((10**6, 20), jnp.float32)
    assert _quantile.resolve_method("auto", big) == "pfn"
    assert _quantile.resolve_method("auto", np.zeros((100, 3))) == "ipm"
    assert _quantile.resolve_method("ipm", big) == "ipm"
    # Rows sharded over devices: the preprocessing's gathers would copy X to every device.
    mesh = Mesh(np.array(jax.devices()[:2]), ("rows",))
    sharded = jax.ShapeDtypeStruct(big.shape, big.dtype, sharding=NamedSharding(mesh, P("rows")))
    assert _quantile.resolve_method("auto", sharded) == "ipm"


@functools.partial(jax.jit, static_argnames=("tau_prev", "tau", "all_sizes"))
def _warm_pfn(X, y, tau_prev, tau, all_sizes):
    """``_pfn`` at ``tau`` warm-started from the interior point's solution at ``tau_prev``, once
    per ``sizes`` of ``all_sizes``: ``[(certified, objective, stats)], the interior point's
    objective at tau`` (equilibrated, as ``_solve_problem`` runs it)."""
    Xs = equilibrate(X).Xs
    ys = y / jnp.max(jnp.abs(y))
    chol = jsl.cho_factor(Xs.T @ Xs)
    (b_prev, *_), _ = _quantile._ipm(Xs, ys, tau_prev, 1e-10, 100, True, chol)
    warm = (b_prev, _quantile._bands(Xs, Xs))
    out = [_quantile._pfn(Xs, ys, tau, 1e-10, 100, True, chol, s, True, warm) for s in all_sizes]
    (_, _, obj_ipm, _), _ = _quantile._ipm(Xs, ys, tau, 1e-10, 100, True, chol)
    return [(_quantile._done(b, ys, 1e-10), b[2], st) for b, _, st in out], obj_ipm


def test_warm_start_from_a_nearby_level_keeps_a_small_window(x64):
    # The solution at tau = 0.5 places the window for tau = 0.52: no pilot, no fix-up, no solve
    # on all rows, and the interior point's optimum on all rows.
    X, y = _data(seed=4)
    sizes = _quantile.pfn_path_sizes(N, D, 49)
    assert sizes[0] <= N / 10

    [(done, obj, stats)], obj_ipm = _warm_pfn(X, y, 0.5, 0.52, (sizes,))
    assert bool(done)
    assert int(stats["full_solve"]) == 0 and int(stats["fixups"]) == 0
    assert int(stats["kept"]) == sizes[1]
    np.testing.assert_allclose(float(obj), float(obj_ipm), rtol=1e-12)


def test_a_path_of_levels_equals_the_interior_point_level_by_level(x64):
    # 99 levels in one call: each level warm-started from the one below (on the CPU), so the
    # levels cost a reduced problem each instead of a solve on all rows. Unsorted levels, a
    # repeated one, and a jump too far for the window (solved cold) give the same optimum.
    X, y = _data(seed=5)
    tau = np.r_[np.linspace(0.02, 0.6, 40)[::-1], 0.3, 0.95]
    assert _quantile.path_pays(N, D, tau.size)
    assert _quantile.resolve_method("auto", X, tau.size) == "pfn"
    assert _quantile.resolve_method("auto", X, 0) == "ipm"
    res = solvers.quantile_regression(X, y, tau)
    ipm = solvers.quantile_regression(X, y, tau, method="ipm")
    assert np.all(np.asarray(res.converged))
    np.testing.assert_allclose(np.asarray(res.objective), np.asarray(ipm.objective), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(res.coef), np.asarray(ipm.coef), rtol=1e-8, atol=1e-8)


def test_a_warm_window_that_fails_is_retried_eight_times_wider(x64):
    # 3000 x 10 with 5% gross outliers: warm from tau = 0.97, the 91-row window for 0.98 leaves
    # globbed rows on the wrong side with no room to move them; the retry's 728-row window
    # certifies without the interior point on all rows, at its optimum.
    n, d, levels = 3000, 10, 99
    X, y = _data(seed=1, n=n, d=d)
    sizes = _quantile.pfn_path_sizes(n, d, levels)
    wide = _quantile.pfn_wide_sizes(n, d, levels)
    assert wide is not None and wide[1] == 8 * sizes[1]
    assert _quantile.pfn_wide_sizes(2000, 20, levels) is None  # over a quarter of the rows

    (narrow, retry), obj_ipm = _warm_pfn(X, y, 0.97, 0.98, (sizes, wide))
    assert int(narrow[2]["bad"]) > 0 and int(narrow[2]["full_solve"]) == 1
    assert bool(retry[0]) and int(retry[2]["full_solve"]) == 0 and int(retry[2]["bad"]) == 0
    np.testing.assert_allclose(float(retry[1]), float(obj_ipm), rtol=1e-12)
