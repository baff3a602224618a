"""The influence study: d coef / d y_i of least squares, LAD, quantile and Huber regression."""

import json
from pathlib import Path

import _studies
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l1jax import datasets, runner, solvers
from l1jax.runner import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs/influence/smoke.yaml")


@pytest.fixture(scope="module")
def study():
    return _studies.load("influence")


@pytest.fixture(scope="module")
def module(study):
    return _studies.module(study)


@pytest.fixture(scope="module")
def stdout():
    return {}


@pytest.fixture(scope="module")
def smoke(study, tmp_path_factory, stdout):
    workdir = tmp_path_factory.mktemp("influence_smoke")
    summary, stdout[study.name] = _studies.run(study, SMOKE, workdir)
    return workdir, summary, runner.load_study_config(study, SMOKE)


@pytest.fixture(scope="module")
def problem(smoke):
    """The smoke run's data: ``X = [1, x]``, ``y`` and the outlier mask (float64)."""
    _, _, cfg = smoke
    d = cfg.data
    with jax.enable_x64(True):
        data, _ = datasets.contaminated_linear(
            jax.random.key(cfg.seed), n=d.n, d=d.d, fraction=d.fraction, noise=d.noise,
            outliers=d.outliers, outlier_scale=d.outlier_scale, leverage=d.leverage,
        )  # fmt: skip
        X = jnp.concatenate([jnp.ones((d.n, 1)), data["x"]], axis=1)
        return X, data["y"], np.asarray(data["outlier"])


def test_smoke_lad_and_quantile_move_with_exactly_p_observations(smoke):
    _, summary, cfg = smoke
    n, p = cfg.data.n, cfg.data.d + 1
    assert summary["p"] == p and summary["num_outliers"] == round(cfg.data.fraction * n)
    for m in ("lad", "quantile"):
        r = summary["methods"][m]
        assert r["nonzero_columns"] == p and r["exactly_zero_columns"] == n - p
        assert len(r["basis"]) == p
        assert r["outliers_with_influence"] == 0  # response outliers are never in the basis
        assert not set(r["basis"]) & set(summary["outlier_rows"])
        # The basis observations are interpolated, and J_B = X_B^{-1}.
        assert r["basis_max_abs_residual"] < 1e-9
        assert r["max_abs_JB_minus_XB_inverse"] < 1e-9
        # sum_i d coef / d y_i = X_B^{-1} 1 = e_intercept.
        np.testing.assert_allclose(r["XB_inverse_ones"], np.eye(p)[0], atol=1e-10)


def test_smoke_least_squares_moves_with_every_observation_and_the_outliers_carry_its_error(smoke):
    _, summary, cfg = smoke
    r = summary["methods"]["least_squares"]
    assert r["nonzero_columns"] == cfg.data.n and r["exactly_zero_columns"] == 0
    assert r["max_abs_J_minus_pinv"] < 1e-12  # (X^T X)^{-1} X^T
    # Response outliers have ordinary leverage: their d coef / d y_i is like anyone's ...
    assert 0.5 < r["influence_mean_outliers"] / r["influence_mean_clean"] < 2
    # ... but their errors are gross: they account for most of coef - truth = J e.
    assert r["contribution_share_outliers"] > 0.8
    assert r["error_from_outliers"] > 10 * r["error_from_clean"]
    assert r["coef_error"] > 10 * summary["methods"]["lad"]["coef_error"]


def test_smoke_huber_gives_outliers_zero_influence(smoke):
    _, summary, cfg = smoke
    r = summary["methods"]["huber"]
    assert r["delta"] == pytest.approx(cfg.huber.k * cfg.data.noise)
    assert r["nonzero_columns_are_inliers"]  # exactly the observations with |r_i| <= delta
    assert r["nonzero_columns"] == r["inliers"] < cfg.data.n - summary["num_outliers"] + 1
    assert r["outliers_with_influence"] == 0
    assert r["max_abs_J_minus_closed_form"] < 1e-10  # (X^T W X)^{-1} X^T W
    assert r["max_abs_coef_minus_scipy"] < 1e-8  # solvers.reference.huber_fit (BFGS)
    assert r["gradient_norm"] < 1e-12


def test_smoke_identities_hold_for_every_method(smoke):
    _, summary, cfg = smoke
    p = cfg.data.d + 1
    for m, r in summary["methods"].items():
        assert r["max_abs_JX_minus_I"] < 1e-10, m  # regression equivariance
        np.testing.assert_allclose(r["column_sum"], np.eye(p)[0], atol=1e-10, err_msg=m)
        if m != "huber":  # positively homogeneous estimators: coef = J y
            assert r["max_abs_coef_minus_Jy"] < 1e-10, m


def test_smoke_jacobians_match_finite_differences(smoke):
    _, summary, cfg = smoke
    for m, r in summary["methods"].items():
        assert len(r["finite_difference"]) == cfg.fd_checks
        for c in r["finite_difference"]:
            assert c["max_abs_error"] < 1e-6 * max(1.0, c["column_norm"]), (m, c)
        if m in ("lad", "quantile"):  # one basis row and one off it
            assert [c["jacobian_column_zero"] for c in r["finite_difference"]] == [False, True]
            assert r["finite_difference"][1]["max_abs_error"] == 0.0


def test_moving_an_outlier_further_leaves_lad_unchanged(smoke, problem):
    # Off the basis only the residual's sign matters: push every outlier 100 further out.
    X, y, outlier = problem
    with jax.enable_x64(True):
        coef = np.asarray(solvers.lad(X, y).coef)
        r = np.asarray(y - X @ coef)
        y_far = y + 100.0 * jnp.asarray(np.where(outlier, np.sign(r), 0.0))
        coef_far = np.asarray(solvers.lad(X, y_far).coef)
        ls, ls_far = (np.asarray(jnp.linalg.lstsq(X, v)[0]) for v in (y, y_far))
    np.testing.assert_allclose(coef_far, coef, rtol=0, atol=1e-10)
    # Least squares moves by exactly J (y_far - y): it is linear in y.
    J = np.linalg.pinv(np.asarray(X))
    np.testing.assert_allclose(ls_far - ls, J @ np.asarray(y_far - y), atol=1e-9)
    assert np.linalg.norm(ls_far - ls) > 1.0


def test_huber_derivative_in_x_matches_finite_differences(smoke, module, problem):
    # custom_root differentiates in everything the optimality condition closes over, X too.
    _, _, cfg = smoke
    X, y, _ = problem
    delta = cfg.huber.k * cfg.data.noise
    kw = {"irls_steps": cfg.huber.irls_steps, "newton_steps": cfg.huber.newton_steps}
    with jax.enable_x64(True):
        dX = jax.random.normal(jax.random.key(1), X.shape).at[:, 0].set(0.0)
        jvp = jax.jit(lambda X, dX: jax.jvp(lambda X: module.huber(X, y, delta, **kw), (X,), (dX,)))
        _, tangent = jvp(X, dX)
        h = 1e-6
        up, down = (module.huber_fit(X + s * h * dX, y, delta, **kw)[0] for s in (1, -1))
        np.testing.assert_allclose(tangent, (up - down) / (2 * h), atol=1e-6)


def test_smoke_prints_its_headline_and_writes_the_plot_and_metrics(smoke, stdout):
    workdir, summary, cfg = smoke
    out = stdout["influence"]
    lad = summary["methods"]["lad"]
    assert f"LAD {lad['nonzero_columns']} ({lad['outliers_with_influence']} outliers)" in out
    assert f"of n = {cfg.data.n} with {summary['num_outliers']} outliers" in out
    assert (workdir / "influence.png").stat().st_size > 10_000
    lines = [json.loads(s) for s in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["method"] for r in lines if r.get("tag") == "method"] == list(summary["methods"])


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.outliers=both", "data.outliers"),
        ("tau=1.0", "tau"),
        ("data.n=3", "data.n"),
        ("huber.k=0", "huber.k"),
        ("data.fraction=0.6", "data.fraction"),
    ],
)
def test_bad_config_exits_2_with_one_line(study, tmp_path, capsys, override, key):
    argv = ["--config", SMOKE, "--workdir", str(tmp_path), "--set", override]
    assert runner.main(study, argv) == 2
    err = capsys.readouterr().err
    assert key in err and len(err.strip().splitlines()) == 1


def test_configs_load(study):
    cfg = runner.load_study_config(study, ROOT / "configs/influence/default.yaml")
    assert (cfg.data.n, cfg.data.d, cfg.data.outliers, cfg.tau) == (200, 5, "response", 0.25)
    lev = runner.load_study_config(study, ROOT / "configs/influence/leverage.yaml")
    assert lev.data.outliers == "leverage" and lev.data.n == 200
    with pytest.raises(ConfigError, match=r"fd_step"):
        runner.load_study_config(study, SMOKE, ["fd_step=-1.0"])
