"""Tests for l1jax.optim against closed forms, scikit-learn and a HiGHS LP (scipy.optimize).

Problems are tiny and every run is one ``lax.scan`` under ``jit``; the LASSO and LAD runs are
shared through module-scoped fixtures so each optimizer compiles once.
"""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy.optimize import linprog
from sklearn.linear_model import ElasticNet, Lasso

from l1jax import optim, prox, subgrad


def _run(opt, params, steps, *, grad_fn, value_fn, read=None):
    """``steps`` updates in one scan; returns (params, state, per-step values).

    ``grad_fn`` gives the grads passed to ``update``, ``value_fn`` the ``value=`` extra argument
    (the loss at the params before the update) and the recorded value is ``read(params, state)``
    after the update, or the value before it when ``read`` is None.
    """

    def body(carry, _):
        p, state = carry
        value = value_fn(p)
        updates, state = opt.update(grad_fn(p), state, p, value=value, value_fn=value_fn)
        p = optax.apply_updates(p, updates)
        return (p, state), (value if read is None else read(p, state))

    (params, state), values = jax.lax.scan(body, (params, opt.init(params)), None, length=steps)
    return params, state, values


# ---------------------------------------------------------------------------------------------
# Schedules


def test_schedules_match_closed_forms():
    counts = jnp.arange(6)
    k = np.arange(6)
    sqrt_sched, time_sched = optim.inverse_sqrt_schedule(0.3), optim.inverse_time_schedule(0.3)
    np.testing.assert_allclose(jax.jit(sqrt_sched)(counts), 0.3 / np.sqrt(k + 1), rtol=1e-6)
    np.testing.assert_allclose(jax.vmap(time_sched)(counts), 0.3 / (k + 1), rtol=1e-6)
    assert float(sqrt_sched(0)) == pytest.approx(0.3)


@pytest.mark.parametrize("make", [optim.inverse_sqrt_schedule, optim.inverse_time_schedule])
@pytest.mark.parametrize("bad", [0.0, -1.0, float("nan")])
def test_schedules_reject_nonpositive(make, bad):
    with pytest.raises(ValueError, match="init_value"):
        make(bad)


# ---------------------------------------------------------------------------------------------
# Subgradient method


@pytest.mark.parametrize("jit", [False, True])
def test_subgradient_update_is_minus_step_times_grad(jit):
    opt = optim.subgradient_method(optim.inverse_time_schedule(0.5))
    params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(0.5)}
    grads = {"w": jnp.array([0.5, 1.0]), "b": jnp.array(-2.0)}
    update = jax.jit(opt.update) if jit else opt.update
    state = opt.init(params)
    for k in range(3):
        updates, state = update(grads, state, params)
        a = 0.5 / (k + 1)
        np.testing.assert_allclose(updates["w"], -a * np.array([0.5, 1.0]), rtol=1e-6)
        np.testing.assert_allclose(updates["b"], 2 * a, rtol=1e-6)
        assert float(state.step) == pytest.approx(a)
    assert int(state.count) == 3


def test_step_sizes_sweep_under_vmap():
    grads, params = jnp.array([2.0, -1.0]), jnp.array([1.0, 1.0])

    def one_update(c):
        opts = (
            optim.subgradient_method(optim.inverse_sqrt_schedule(c)),
            optim.ista_l1(c, lam=0.5),
        )
        return [opt.update(grads, opt.init(params), params)[0] for opt in opts]

    cs = jnp.array([0.1, 0.4])
    sub, ista = jax.jit(jax.vmap(one_update))(cs)
    np.testing.assert_allclose(sub, -np.outer(cs, [2.0, -1.0]), rtol=1e-6)
    # soft_threshold(x - c g, 0.5 c) - x, with x = 1, g = (2, -1).
    forward = 1.0 - np.outer(cs, [2.0, -1.0])
    expected = np.sign(forward) * np.maximum(np.abs(forward) - 0.5 * cs[:, None], 0) - 1.0
    np.testing.assert_allclose(ista, expected, rtol=1e-6)


def test_subgradient_constant_step_and_bad_step():
    opt = optim.subgradient_method(0.1)
    updates, _ = opt.update(jnp.array([3.0]), opt.init(jnp.zeros(1)))
    np.testing.assert_allclose(updates, [-0.3], rtol=1e-6)
    for bad in (0.0, -0.1, float("inf")):
        with pytest.raises(ValueError, match="step"):
            optim.subgradient_method(bad)


@pytest.fixture(scope="module")
def lad():
    """LAD regression ``f(w) = mean |Aw - b|`` and its optimum from the HiGHS LP."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        n, d = 30, 3
        a_mat = rng.standard_normal((n, d))
        b = a_mat @ np.array([1.0, -2.0, 0.5]) + rng.standard_t(2, n)
        # min (1/n) sum u  s.t.  -u <= A w - b <= u, over (w free, u >= 0).
        cost = np.r_[np.zeros(d), np.ones(n) / n]
        a_ub = np.block([[a_mat, -np.eye(n)], [-a_mat, -np.eye(n)]])
        res = linprog(
            cost,
            A_ub=a_ub,
            b_ub=np.r_[b, -b],
            bounds=[(None, None)] * d + [(0, None)] * n,
            method="highs",
        )
        assert res.status == 0
        w_star = res.x[:d]

        def f(w):
            return jnp.mean(subgrad.abs(a_mat @ w - b))

        # Every subgradient of f is a mean of +-a_i, so ||g|| <= G; x_0 = 0 gives R = ||w*||.
        g_bound = np.mean(np.linalg.norm(a_mat, axis=1))
        yield dict(f=f, f_star=res.fun, w_star=w_star, G=g_bound, R=np.linalg.norm(w_star), d=d)


def _subgradient_bound(steps, r, g):
    return (r**2 + g**2 * np.cumsum(steps**2)) / (2 * np.cumsum(steps))


@pytest.mark.parametrize("kind", ["constant", "inverse_sqrt", "inverse_time"])
def test_subgradient_lad_best_value_obeys_bound(lad, kind):
    with jax.enable_x64(True):
        f, f_star, steps = lad["f"], lad["f_star"], 1500
        c = lad["R"] / lad["G"]
        sched = {
            "constant": optax.constant_schedule(0.02 * c),
            "inverse_sqrt": optim.inverse_sqrt_schedule(c),
            "inverse_time": optim.inverse_time_schedule(c),
        }[kind]
        opt = optim.track_best(
            optim.iterate_averaging(optim.subgradient_method(sched), weights="step")
        )
        run = jax.jit(lambda p: _run(opt, p, steps, grad_fn=jax.grad(f), value_fn=f))
        _, state, values = run(jnp.zeros(lad["d"]))
        values = np.asarray(values)
        a = np.asarray(jax.vmap(sched)(jnp.arange(steps)))
        bound = _subgradient_bound(a, lad["R"], lad["G"])
        f_best = np.minimum.accumulate(values)
        assert np.all(f_best - f_star <= bound + 1e-12)
        # track_best saw f(x_0..x_{T-1}): its value is the minimum of exactly those values.
        assert float(optim.get_best_value(state)) == values.min()
        assert int(state.best_count) == values.argmin()
        assert float(f(optim.get_best_params(state))) == pytest.approx(values.min(), rel=1e-12)
        # "step" weights recover the schedule, and the weighted average obeys the same bound.
        assert float(state.inner_state.weight_sum) == pytest.approx(a.sum(), rel=1e-10)
        assert float(f(optim.get_averaged_params(state))) - f_star <= bound[-1]
        if kind == "constant":
            assert bound[-1] == pytest.approx(
                lad["R"] ** 2 / (2 * a.sum()) + lad["G"] ** 2 * a[0] / 2
            )
        if kind == "inverse_sqrt":
            gaps = f_best[[9, 99, steps - 1]] - f_star
            assert gaps[0] > gaps[1] > gaps[2] >= 0
            assert gaps[2] < 1e-4


def test_polyak_lad_obeys_its_bound(lad):
    # With the exact f*, ||x_{k+1} - x*||^2 <= ||x_k - x*||^2 - (f(x_k) - f*)^2 / ||g_k||^2, so
    # sum_{j<T} (f(x_j) - f*)^2 <= R^2 G^2 and f_best - f* <= R G / sqrt(T).
    with jax.enable_x64(True):
        f, f_star, steps = lad["f"], lad["f_star"], 300
        opt = optim.track_best(optim.polyak_subgradient(f_star))
        _, state, values = jax.jit(lambda p: _run(opt, p, steps, grad_fn=jax.grad(f), value_fn=f))(
            jnp.zeros(lad["d"])
        )
        f_best = np.minimum.accumulate(np.asarray(values))
        k = np.arange(1, steps + 1)
        assert np.all(f_best - f_star <= lad["R"] * lad["G"] / np.sqrt(k) + 1e-12)
        gap = float(optim.get_best_value(state)) - f_star
        assert 0 <= gap < 1e-3
        assert gap < 1e-3 * (values[0] - f_star)


# ---------------------------------------------------------------------------------------------
# Polyak step


def test_polyak_abs_lands_on_minimizer_and_stays_without_nan():
    # |x - 3| from x = -2: a_0 = 5 / 1 moves exactly to 3; there the subgradient is 0, so a = 0.
    opt = optim.polyak_subgradient(0.0)

    def f(x):
        return jnp.sum(subgrad.abs(x - 3.0))

    params, state, values = jax.jit(lambda p: _run(opt, p, 4, grad_fn=jax.grad(f), value_fn=f))(
        jnp.array([-2.0])
    )
    np.testing.assert_array_equal(params, [3.0])
    np.testing.assert_array_equal(values, [5.0, 0.0, 0.0, 0.0])
    assert float(state.step) == 0.0


def test_polyak_zero_grad_gives_zero_step():
    opt = optim.polyak_subgradient(0.0, max_step=10.0)
    params = {"a": jnp.ones(2), "b": jnp.ones([])}
    zeros = jax.tree.map(jnp.zeros_like, params)
    updates, state = jax.jit(opt.update)(zeros, opt.init(params), params, value=1.0)
    for leaf in jax.tree.leaves(updates):
        np.testing.assert_array_equal(leaf, 0.0)
    assert float(state.step) == 0.0


def test_polyak_dict_pytree_converges():
    def f(p):
        return jnp.sum(subgrad.abs(p["a"] - 3.0)) + jnp.sum(subgrad.abs(p["b"] + 1.0))

    params = {"a": jnp.array([0.0, 10.0, 2.5]), "b": jnp.array([4.0, -7.0])}
    opt = optim.polyak_subgradient(0.0)
    params, _, values = jax.jit(lambda p: _run(opt, p, 60, grad_fn=jax.grad(f), value_fn=f))(params)
    assert float(values[0]) == pytest.approx(21.5)
    assert float(f(params)) < 1e-5
    np.testing.assert_allclose(params["a"], 3.0, atol=1e-5)
    np.testing.assert_allclose(params["b"], -1.0, atol=1e-5)


@pytest.mark.parametrize("max_step", [1.0, 0.1])
def test_polyak_matches_optax_polyak_sgd(max_step):
    # With f* a true lower bound the gap is >= 0, where sps and sps+ agree.
    def f(x):
        return jnp.sum((x - 1.0) ** 2) + 0.5

    ours = optim.polyak_subgradient(0.5, max_step=max_step)
    ref = optax.polyak_sgd(max_learning_rate=max_step, f_min=0.5)
    x0 = jnp.array([3.0, -2.0, 0.0])
    runs = [
        jax.jit(lambda p, opt=opt: _run(opt, p, 4, grad_fn=jax.grad(f), value_fn=f))(x0)
        for opt in (ours, ref)
    ]
    np.testing.assert_allclose(runs[0][2], runs[1][2], rtol=1e-6)
    np.testing.assert_allclose(runs[0][0], runs[1][0], rtol=1e-6, atol=1e-6)
    assert float(runs[0][2][-1]) < float(runs[0][2][0])


def test_polyak_bad_arguments():
    opt = optim.polyak_subgradient(0.0)
    with pytest.raises(ValueError, match="value"):
        opt.update(jnp.ones(2), opt.init(jnp.zeros(2)), jnp.zeros(2))
    with pytest.raises(ValueError, match="scalar"):
        opt.update(jnp.ones(2), opt.init(jnp.zeros(2)), jnp.zeros(2), value=jnp.ones(2))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match="max_step"):
            optim.polyak_subgradient(0.0, max_step=bad)
    with pytest.raises(ValueError, match="f_star"):
        optim.polyak_subgradient(float("nan"))


# ---------------------------------------------------------------------------------------------
# Best-iterate tracking and averaging


def test_track_best_keeps_lowest_value_and_skips_nan():
    opt = optim.track_best(optim.subgradient_method(1.0))
    update = jax.jit(opt.update)
    state = opt.init(jnp.array(0.0))
    assert float(optim.get_best_value(state)) == np.inf
    values = [2.0, np.nan, 1.0, 3.0, 1.0]
    for k, v in enumerate(values):
        _, state = update(jnp.array(0.0), state, jnp.array(float(k)), value=v)
    # the first occurrence of the minimum is kept: x_2 with f(x_2) = 1.
    assert float(optim.get_best_value(state)) == 1.0
    assert float(optim.get_best_params(state)) == 2.0
    assert int(state.best_count) == 2


def test_iterate_averaging_uniform_and_scheduled_weights():
    xs = np.array([1.0, 4.0, -2.0, 7.0])
    for weights, w in [("uniform", np.ones(4)), (lambda k: k + 1.0, np.arange(1.0, 5.0))]:
        opt = optim.iterate_averaging(optim.subgradient_method(1.0), weights=weights)
        state = opt.init({"x": jnp.array(0.0)})
        for x in xs:
            _, state = opt.update({"x": jnp.array(1.0)}, state, {"x": jnp.array(x)})
        avg = optim.get_averaged_params(state)["x"]
        assert float(avg) == pytest.approx(np.sum(w * xs) / np.sum(w), rel=1e-6)
        assert float(state.weight_sum) == pytest.approx(w.sum())


def test_readers_work_inside_chain():
    opt = optax.chain(
        optax.clip_by_global_norm(10.0),
        optim.track_best(optim.iterate_averaging(optim.subgradient_method(0.1))),
    )
    params = {"w": jnp.array([1.0, 2.0])}
    state = opt.init(params)
    _, state = jax.jit(opt.update)({"w": jnp.ones(2)}, state, params, value=5.0)
    assert float(optim.get_best_value(state)) == 5.0
    np.testing.assert_array_equal(optim.get_best_params(state)["w"], [1.0, 2.0])
    np.testing.assert_array_equal(optim.get_averaged_params(state)["w"], [1.0, 2.0])
    with pytest.raises(ValueError, match="track_best"):
        optim.get_best_value(optax.sgd(0.1).init(params))
    with pytest.raises(ValueError, match="iterate_averaging"):
        optim.get_averaged_params(optax.sgd(0.1).init(params))


def test_tracking_bad_arguments():
    best = optim.track_best(optim.subgradient_method(0.1))
    with pytest.raises(ValueError, match="params"):
        best.update(jnp.ones(2), best.init(jnp.zeros(2)), value=1.0)
    with pytest.raises(ValueError, match="value"):
        best.update(jnp.ones(2), best.init(jnp.zeros(2)), jnp.zeros(2))
    avg = optim.iterate_averaging(optim.subgradient_method(0.1))
    with pytest.raises(ValueError, match="params"):
        avg.update(jnp.ones(2), avg.init(jnp.zeros(2)))
    with pytest.raises(ValueError, match="weights"):
        optim.iterate_averaging(optim.subgradient_method(0.1), weights="geometric")
    with pytest.raises(TypeError, match="weights"):
        optim.iterate_averaging(optim.subgradient_method(0.1), weights=3.0)


# ---------------------------------------------------------------------------------------------
# ISTA and FISTA


@pytest.fixture(scope="module")
def lasso():
    """A correlated LASSO (n=40, d=10), sklearn references for two lambdas, ISTA/FISTA runs."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        n, d = 40, 10
        cov = 0.95 ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
        x_mat = rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T
        w_true = np.zeros(d)
        w_true[[0, 3, 6]] = [2.0, -1.5, 1.0]
        y = x_mat @ w_true + 0.5 * rng.standard_normal(n)
        lams = np.array([0.02, 0.1]) * np.max(np.abs(x_mat.T @ y)) / n
        lip = np.linalg.eigvalsh(x_mat.T @ x_mat / n)[-1]
        # sklearn's Lasso minimises exactly (1/2n)||y - Xw||^2 + alpha ||w||_1.
        coefs = np.stack(
            [
                Lasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=100_000)
                .fit(x_mat, y)
                .coef_
                for lam in lams
            ]
        )

        def smooth(w):
            return jnp.sum((y - x_mat @ w) ** 2) / (2 * n)

        def objective(w, lam):
            return smooth(w) + lam * jnp.sum(jnp.abs(w))

        f_ref = np.array([float(objective(c, lam)) for c, lam in zip(coefs, lams, strict=True)])

        def trajectory(make, lam, steps):
            opt = make(lam)
            fista_like = isinstance(opt.init(jnp.zeros(d)), optim.FistaState)

            def read(p, state):
                return objective(optim.get_fista_iterate(state) if fista_like else p, lam)

            return _run(
                opt, jnp.zeros(d), steps, grad_fn=jax.grad(smooth), value_fn=smooth, read=read
            )

        steps = 3000
        runs = {}
        for name, make in {
            "ista": lambda lam: optim.ista_l1(1 / lip, lam=lam),
            "fista": lambda lam: optim.fista_l1(1 / lip, lam=lam),
        }.items():
            # vmap over lambda: one compile serves both references.
            runs[name] = jax.jit(jax.vmap(lambda lam, make=make: trajectory(make, lam, steps)))(
                jnp.asarray(lams)
            )
        yield dict(
            x=x_mat,
            y=y,
            n=n,
            d=d,
            lams=lams,
            lip=lip,
            coefs=coefs,
            f_ref=f_ref,
            smooth=smooth,
            objective=objective,
            trajectory=trajectory,
            runs=runs,
            steps=steps,
        )


@pytest.mark.parametrize("name", ["ista", "fista"])
def test_prox_gradient_reaches_sklearn_lasso(lasso, name):
    params, state, values = lasso["runs"][name]
    final = params if name == "ista" else optim.get_fista_iterate(state)
    np.testing.assert_allclose(values[:, -1], lasso["f_ref"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(final, lasso["coefs"], atol=1e-7)
    if name == "ista":
        # ISTA with s = 1/L is a descent method.
        assert np.all(np.diff(np.asarray(values), axis=1) <= 1e-14)


def test_fista_gap_well_below_ista_and_both_obey_their_bounds(lasso):
    k = np.arange(1, lasso["steps"] + 1)
    r2 = np.sum(lasso["coefs"] ** 2, axis=1, keepdims=True)  # ||x_0 - x*||^2 with x_0 = 0
    lip = lasso["lip"]
    gap_ista = np.asarray(lasso["runs"]["ista"][2]) - lasso["f_ref"][:, None]
    gap_fista = np.asarray(lasso["runs"]["fista"][2]) - lasso["f_ref"][:, None]
    assert np.all(gap_ista <= lip * r2 / (2 * k) + 1e-12)
    assert np.all(gap_fista <= 2 * lip * r2 / (k + 1) ** 2 + 1e-12)
    assert np.all(gap_fista[:, 99] < 1e-2 * gap_ista[:, 99])


@pytest.mark.parametrize("name", ["ista", "fista"])
def test_backtracking_without_knowing_lipschitz(lasso, name):
    with jax.enable_x64(True):
        lip, lam, shrink = lasso["lip"], lasso["lams"][0], 0.5
        make = {"ista": optim.ista_l1, "fista": optim.fista_l1}[name]
        _, state, values = jax.jit(
            lambda: lasso["trajectory"](
                lambda lam: make(10 / lip, lam=lam, backtracking=True, shrink_factor=shrink),
                lam,
                1500,
            )
        )()
        # the step shrank from 10/L but never below shrink/L, where the test always passes.
        assert shrink / lip <= float(state.step) < 10 / lip
        k = np.arange(1, 1501)
        gap = np.asarray(values) - lasso["f_ref"][0]
        r2 = np.sum(lasso["coefs"][0] ** 2)
        bound = {"ista": lip / shrink * r2 / (2 * k), "fista": 2 * lip / shrink * r2 / (k + 1) ** 2}
        assert np.all(gap <= bound[name] + 1e-12)
        assert abs(gap[-1]) < 1e-10


def test_fista_two_steps_by_hand(lasso):
    with jax.enable_x64(True):
        x_mat, y, n, lam = lasso["x"], lasso["y"], lasso["n"], lasso["lams"][1]
        s = 1 / lasso["lip"]

        def grad(w):
            return x_mat.T @ (x_mat @ w - y) / n

        def soft(v, t):
            return np.sign(v) * np.maximum(np.abs(v) - t, 0)

        x0 = np.linspace(-1, 1, lasso["d"])
        x1 = soft(x0 - s * grad(x0), lam * s)  # y_1 = x_0, t_1 = 1, so y_2 = x_1
        t2 = (1 + np.sqrt(5)) / 2
        x2 = soft(x1 - s * grad(x1), lam * s)
        t3 = (1 + np.sqrt(1 + 4 * t2**2)) / 2
        y3 = x2 + (t2 - 1) / t3 * (x2 - x1)

        opt = optim.fista_l1(s, lam=lam)
        params, state, _ = _run(
            opt, jnp.asarray(x0), 2, grad_fn=jax.grad(lasso["smooth"]), value_fn=lasso["smooth"]
        )
        np.testing.assert_allclose(params, y3, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(optim.get_fista_iterate(state), x2, rtol=1e-12, atol=1e-14)
        assert float(state.momentum) == pytest.approx(t3)

        ista = optim.ista_l1(s, lam=lam)
        updates, _ = jax.jit(ista.update)(
            jax.grad(lasso["smooth"])(jnp.asarray(x0)), ista.init(jnp.asarray(x0)), jnp.asarray(x0)
        )
        np.testing.assert_allclose(updates, x1 - x0, rtol=1e-12, atol=1e-14)


def test_fista_on_dict_pytree_inside_chain_matches_array(lasso):
    with jax.enable_x64(True):
        x_mat, y, n, lam, s = lasso["x"], lasso["y"], lasso["n"], lasso["lams"][1], 1 / lasso["lip"]

        def smooth(p):
            w = jnp.concatenate([p["a"], p["b"]])
            return jnp.sum((y - x_mat @ w) ** 2) / (2 * n)

        opt = optax.chain(optax.identity(), optim.fista_l1(s, lam=lam))
        params = {"a": jnp.zeros(4), "b": jnp.zeros(lasso["d"] - 4)}
        _, state, _ = jax.jit(
            lambda p: _run(opt, p, 3000, grad_fn=jax.grad(smooth), value_fn=smooth)
        )(params)
        x = optim.get_fista_iterate(state)
        np.testing.assert_allclose(jnp.concatenate([x["a"], x["b"]]), lasso["coefs"][1], atol=1e-7)


def test_fista_generic_prox_reaches_sklearn_elastic_net(lasso):
    with jax.enable_x64(True):
        x_mat, y = lasso["x"], lasso["y"]
        alpha, l1_ratio = 0.05, 0.5
        ref = ElasticNet(
            alpha=alpha, l1_ratio=l1_ratio, fit_intercept=False, tol=1e-12, max_iter=100_000
        ).fit(x_mat, y)
        # sklearn: (1/2n)||y - Xw||^2 + alpha (l1_ratio ||w||_1 + (1 - l1_ratio) ||w||^2 / 2).
        opt = optim.fista(
            1 / lasso["lip"],
            lambda w, t: prox.prox_elastic_net(w, alpha * t, l1_ratio=l1_ratio),
        )
        _, state, _ = jax.jit(
            lambda p: _run(
                opt, p, 3000, grad_fn=jax.grad(lasso["smooth"]), value_fn=lasso["smooth"]
            )
        )(jnp.zeros(lasso["d"]))
        np.testing.assert_allclose(optim.get_fista_iterate(state), ref.coef_, atol=1e-7)


@pytest.mark.parametrize("make", [optim.ista_l1, optim.fista_l1])
def test_prox_gradient_bad_arguments(make):
    for bad in (0.0, -0.5, float("nan")):
        with pytest.raises(ValueError, match="step"):
            make(bad, lam=0.1)
    with pytest.raises(ValueError, match="lam"):
        make(0.1, lam=-1.0)
    with pytest.raises(ValueError, match="shrink_factor"):
        make(0.1, lam=0.1, shrink_factor=1.5)
    with pytest.raises(ValueError, match="max_backtracking_steps"):
        make(0.1, lam=0.1, max_backtracking_steps=0)
    opt = make(0.1, lam=0.1)
    with pytest.raises(ValueError, match="params"):
        opt.update(jnp.ones(3), opt.init(jnp.zeros(3)))
    opt = make(0.1, lam=0.1, backtracking=True)
    with pytest.raises(ValueError, match="value_fn"):
        opt.update(jnp.ones(3), opt.init(jnp.zeros(3)), jnp.zeros(3))


@pytest.mark.parametrize("make", [optim.ista, optim.fista])
def test_prox_must_be_callable(make):
    with pytest.raises(TypeError, match="prox"):
        make(0.1, "soft_threshold")
    with pytest.raises(ValueError, match="fista_iterate|FistaState"):
        optim.get_fista_iterate(optim.ista_l1(0.1, lam=0.1).init(jnp.zeros(2)))
