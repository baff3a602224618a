"""The hyperparameter study: lambda by descent on the implicit hypergradient vs grid vs LassoCV."""

import json
from pathlib import Path

import _studies
import jax
import numpy as np
import pytest

from l1jax import runner
from l1jax.runner import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs/hyperparameter/smoke.yaml")


@pytest.fixture(scope="module")
def study():
    return _studies.load("hyperparameter")


@pytest.fixture(scope="module")
def module(study):
    return _studies.module(study)


@pytest.fixture(scope="module")
def stdout():
    return {}


@pytest.fixture(scope="module")
def smoke(study, tmp_path_factory, stdout):
    workdir = tmp_path_factory.mktemp("hyperparameter_smoke")
    summary, stdout[study.name] = _studies.run(study, SMOKE, workdir)
    return workdir, summary, runner.load_study_config(study, SMOKE)


def test_smoke_descent_gets_within_a_percent_of_the_grid_and_stops_at_a_stationary_point(smoke):
    _, summary, cfg = smoke
    assert list(summary["datasets"]) == cfg.datasets == ["simulated", "diabetes"]
    for res in summary["datasets"].values():
        for m in (res["lasso"]["descent"], res["elastic_net"]["descent"]):
            assert abs(m["vs_grid_rel"]) < 1e-2, m["vs_grid_rel"]
            # The best iterate is (nearly) stationary: its hypergradient is small next to the first.
            assert np.all(np.abs(m["grad_at_best"]) < 1e-2 * np.max(np.abs(m["grad_at_start"])))
            assert m["val_loss"] <= m["path_val_loss"][0]
        for s in res["lasso"]["descent_sensitivity"]:
            assert abs(s["grad_at_best"]) < 1e-2 * abs(s["grad_at_start"])


def test_smoke_rprop_matches_the_grid_on_the_simulated_problem(smoke):
    # One local minimum on the simulated problem: the sign-based steps land on it (below the
    # grid's best, which is a grid point next to it).
    _, summary, _ = smoke
    (s,) = summary["datasets"]["simulated"]["lasso"]["descent_sensitivity"]
    assert s["optimizer"] == "rprop"
    assert s["vs_grid_rel"] < 1e-4
    assert s["solves_to_match_grid"] is not None and s["solves_to_match_grid"] <= 50


def test_smoke_diabetes_validation_curve_is_not_convex(smoke):
    # Several local minima along lambda: what a local method can get caught in.
    _, summary, _ = smoke
    minima = summary["datasets"]["diabetes"]["lasso"]["grid"]["local_minima"]
    assert len(minima) >= 2
    assert len(summary["datasets"]["simulated"]["lasso"]["grid"]["local_minima"]) == 1


def test_smoke_hypergradient_matches_finite_differences(smoke):
    _, summary, cfg = smoke
    for res in summary["datasets"].values():
        checks = res["lasso"]["hypergradient_checks"]
        assert len(checks) == cfg.fd_checks
        for c in checks:
            assert c["max_rel_error"] < 1e-6, c
        assert res["elastic_net"]["hypergradient_check"]["max_rel_error"] < 1e-5


def test_hypergradient_is_the_kkt_formula(smoke, module):
    # d b_S / d lam = -n (X_S^T X_S)^{-1} sign(b_S), so d V / d log lam = lam (2 / n_val)
    # r_val^T X_val,S n (X_S^T X_S)^{-1} sign(b_S), with r_val = y_val - X_val b.
    _, summary, cfg = smoke
    sp = module.diabetes(np.random.default_rng([cfg.seed, 1]), cfg.diabetes)
    lmax = module.lam_max(sp.X_train, sp.y_train)
    assert lmax == pytest.approx(summary["datasets"]["diabetes"]["lasso"]["lam_max"], rel=1e-12)
    with jax.enable_x64(True):
        problem = module.Problem(sp)
        for ratio in (0.3, 0.05, 0.004):
            lam = ratio * lmax
            value, grad, coef = problem.value(np.log(lam))
            S = coef != 0
            XS = sp.X_train[:, S]
            db = -len(sp.y_train) * np.linalg.solve(XS.T @ XS, np.sign(coef[S]))
            r_val = sp.y_val - sp.X_val @ coef
            expected = lam * (-2 / len(sp.y_val)) * r_val @ sp.X_val[:, S] @ db
            assert value == pytest.approx(np.mean(r_val**2), rel=1e-12)
            assert float(grad) == pytest.approx(expected, rel=1e-8)


def test_smoke_sklearn_has_the_same_objective_scaling(smoke):
    _, summary, _ = smoke
    for res in summary["datasets"].values():
        assert res["lasso"]["sklearn_lasso_max_abs_coef_diff"] < 1e-8
        assert res["elastic_net"]["sklearn_enet_max_abs_coef_diff"] < 1e-8
        cv = res["lasso"]["lassocv"]
        # LassoCV's own validation MSE (coordinate descent at tol=1e-4) against the exact one.
        assert cv["val_loss"] == pytest.approx(cv["val_loss_exact"], rel=1e-3)
        assert cv["val_loss_exact"] >= res["lasso"]["descent"]["val_loss"] * (1 - 1e-2)


def test_smoke_counts_solves_and_certifies_the_grid(smoke):
    _, summary, cfg = smoke
    for res in summary["datasets"].values():
        m = res["lasso"]
        assert m["grid"]["solves"] == cfg.grid.num == len(m["grid"]["val_losses"])
        assert m["grid"]["all_converged"]
        assert m["descent"]["solves"] == cfg.descent.steps == len(m["descent"]["path_lam"])
        assert m["lassocv"]["solves"] == 101  # its 100-value path and the refit
        assert m["lassocv"]["convergence_warnings"] == 0
        e = res["elastic_net"]
        assert e["grid"]["solves"] == cfg.elastic_net.num_lam1 * cfg.elastic_net.num_lam2
        assert e["descent"]["solves"] == cfg.elastic_net.steps
        assert e["elasticnetcv"]["solves"] == 100 * len(cfg.elastic_net.l1_ratios) + 1
        for method in ("grid", "descent", "lassocv"):
            assert m[method]["seconds"] >= 0 and np.isfinite(m[method]["test_loss"])
    sim = summary["datasets"]["simulated"]
    assert (sim["n_train"], sim["n_val"], sim["n_test"], sim["d"]) == (221, 110, 111, 10)
    assert summary["datasets"]["diabetes"]["n_test"] == 442 - 221 - 110


def test_smoke_prints_its_headline_and_writes_plots_and_metrics(smoke, stdout):
    workdir, summary, _ = smoke
    out = stdout["hyperparameter"]
    for name, res in summary["datasets"].items():
        d = res["lasso"]["descent"]
        assert f"{name}: validation MSE descent {d['val_loss']:.5g} ({d['solves']} solves" in out
    for png in ("hyperparameter.png", "hyperparameter_enet.png"):
        assert (workdir / png).stat().st_size > 10_000
    lines = [json.loads(s) for s in (workdir / "metrics.jsonl").read_text().splitlines()]
    lasso = [(r["data"], r["method"]) for r in lines if r.get("tag") == "lasso"]
    assert lasso == [
        (d, m) for d in ("simulated", "diabetes") for m in ("grid", "descent", "lassocv")
    ]


@pytest.mark.parametrize(
    "override, key",
    [
        ("descent.optimizer=newton", "descent.optimizer"),
        ("grid.num=1", "grid.num"),
        ("datasets=[mnist]", "datasets"),
        ("diabetes.n_train=400", "diabetes.n_val"),
        ("simulated.k=500", "simulated.k"),
        ("grid.ratio_min=2.0", "grid.ratio_min"),
        ("elastic_net.l1_ratios=[0.0]", "elastic_net.l1_ratios"),
    ],
)
def test_bad_config_exits_2_with_one_line(study, tmp_path, capsys, override, key):
    argv = ["--config", SMOKE, "--workdir", str(tmp_path), "--set", override]
    assert runner.main(study, argv) == 2
    err = capsys.readouterr().err
    assert key in err and len(err.strip().splitlines()) == 1


def test_bad_values_name_the_key(study):
    with pytest.raises(ConfigError, match=r"descent\.sensitivity_optimizers"):
        runner.load_study_config(study, SMOKE, ["descent.sensitivity_optimizers=[bfgs]"])
    with pytest.raises(ConfigError, match=r"elastic_net\.lam2_max"):
        runner.load_study_config(study, SMOKE, ["elastic_net.lam2_max=1e-5"])


def test_default_config_loads(study):
    cfg = runner.load_study_config(study, ROOT / "configs/hyperparameter/default.yaml")
    assert cfg.grid.num == 100 and cfg.descent.optimizer == "adam"
    assert (cfg.simulated.n_train, cfg.simulated.d) == (100, 200)
    assert cfg.elastic_net.enabled
