"""The convergence study: tail slopes against theory, bounds, certificates and the fit itself."""

import json
from pathlib import Path

import _studies
import numpy as np
import pytest
import scipy.optimize

from l1jax import runner

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs/convergence/smoke.yaml")


@pytest.fixture(scope="module")
def study():
    return _studies.load("convergence")


@pytest.fixture(scope="module")
def module(study):
    return _studies.module(study)


@pytest.fixture(scope="module")
def stdout():
    return {}


@pytest.fixture(scope="module")
def smoke_run(study, tmp_path_factory, stdout):
    workdir = tmp_path_factory.mktemp("convergence_smoke")
    summary, stdout[study.name] = _studies.run(study, SMOKE, workdir)
    return workdir, summary


# --- the analysis helpers on synthetic curves ---------------------------------------------------


def test_tail_slope_recovers_a_power_law_and_stops_at_the_floor(module):
    k = np.arange(1, 10_001)
    slope, lo, hi = module.tail_slope(k, 3.0 * k**-1.5, floor=0.0)
    assert slope == pytest.approx(-1.5, abs=1e-12)
    assert (lo, hi) == (1000, 10_000)
    # k^-2 reaches 1e-4 at k = 100: the fit covers [10, 99] and ignores the flat floor after.
    gap = np.maximum(k**-2.0, 1e-4 * (1 - 1e-9))
    slope, lo, hi = module.tail_slope(k, gap, floor=1e-4)
    assert slope == pytest.approx(-2.0, abs=1e-12)
    assert (lo, hi) == (10, 99)
    assert np.isnan(module.tail_slope(k, np.zeros(k.shape), floor=1e-12)[0])


def test_decade_slopes(module):
    k = np.arange(1, 1001)
    gap = np.where(k <= 100, 1.0 / k, 1e-2 * (k / 100.0) ** -3)
    out = module.decade_slopes(k, gap, floor=0.0)
    assert out["1-10"] == pytest.approx(-1.0)
    assert out["10-100"] == pytest.approx(-1.0)
    assert out["100-1000"] == pytest.approx(-3.0)
    assert module.decade_slopes(k, gap, floor=1e-4)["100-1000"] is None


def test_smoothed_lad_min_matches_scipy(module):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 3))
    y = X @ np.array([1.0, -2.0, 0.5]) + rng.laplace(size=40)
    mu = 0.1

    def f(w):
        r = y - X @ w
        a = np.abs(r)
        return np.mean(np.where(a < mu, 0.5 * r * r / mu, a - 0.5 * mu))

    def grad(w):
        return -(X.T @ np.clip((y - X @ w) / mu, -1, 1)) / len(y)

    ref = scipy.optimize.minimize(f, np.zeros(3), jac=grad, method="BFGS", options={"gtol": 1e-12})
    value, grad_norm = module.smoothed_lad_min(X, y, mu)
    assert grad_norm < 1e-12
    assert value <= ref.fun + 1e-12
    assert value == pytest.approx(ref.fun, abs=1e-10)


# --- the smoke run ------------------------------------------------------------------------------


def test_subgradient_inv_sqrt_slope_is_minus_one_half(smoke_run):
    _, s = smoke_run
    m = s["methods"]["subgradient_inv_sqrt"]
    assert m["theory_slope"] == -0.5
    assert -0.8 <= m["tail_slope_mean"] <= -0.3
    assert all(-1.0 <= v <= -0.25 for v in m["tail_slopes"])


def test_ista_slope_is_minus_one_and_fista_is_faster(smoke_run):
    _, s = smoke_run
    ista, fista = s["methods"]["ista"], s["methods"]["fista"]
    assert ista["tail_slope_mean"] == pytest.approx(-1.0, abs=0.3)
    assert fista["tail_slope_mean"] < -1.5
    # The accelerated gap is orders of magnitude smaller after the same number of steps.
    assert fista["final_gap_geomean"] < 1e-3 * ista["final_gap_geomean"]


def test_subgradient_gaps_respect_their_bounds(smoke_run):
    _, s = smoke_run
    c = s["constant_step"]
    # f_best - f* <= (R^2 + G^2 c^2 K) / (2 c K) with G an upper bound on every ||g_k||.
    assert all(g_obs <= g for g_obs, g in zip(c["G_observed_max"], c["G_bound"], strict=True))
    assert all(0 < gap <= b for gap, b in zip(c["best_gap_at_K"], c["bound_at_K"], strict=True))
    # The measured plateau of the iterates sits below the G^2 c / 2 bound.
    assert c["plateau_bound_over_measured_iterate"] > 1


def test_smoothing_bias_and_acceleration(smoke_run):
    _, s = smoke_run
    sm = s["smoothing"]
    mu = sm["mu"]
    # f - mu/2 <= f_mu <= f, so min f_mu lies in [f* - mu/2, f*].
    assert all(-mu / 2 - 1e-12 <= d <= 1e-12 for d in sm["f_mu_star_minus_f_star"])
    assert all(g < 1e-10 for g in sm["newton_grad_norm"])
    # Once f_mu is minimised, f is within mu/2 of f*.
    assert all(0 <= g <= mu / 2 for g in sm["f_gap_at_K_nesterov"])
    m = s["methods"]
    assert m["smoothing_nesterov"]["final_gap_geomean"] < m["smoothing_gd"]["final_gap_geomean"]


def test_certified_optima_are_lower_bounds(smoke_run):
    _, s = smoke_run
    f_star = min(s["lad"]["f_star"])
    F_star = min(s["lasso"]["F_star"])
    for name, m in s["methods"].items():
        scale = f_star if m["problem"] == "lad" else F_star
        assert m["min_signed_gap"] >= -1e-9 * scale, name


def test_lad_solvers_converge(smoke_run):
    _, s = smoke_run
    ipm = s["solvers"]["ipm"]
    # The polished interior point stops at the certified LP vertex: it is HiGHS's optimum.
    assert all(abs(g) <= 1e-12 for g in ipm["polished_gap"])
    assert all(n <= 30 for n in ipm["polished_num_steps"])
    m = s["methods"]
    assert m["ipm"]["final_gap_geomean"] < 1e-4 * min(s["lad"]["f_star"])
    irls = s["solvers"]["irls"]
    assert irls["max_steps"] == [4, 16, 64]
    # IRLS is a descent method: 64 steps are far better than 4.
    assert irls["gap_geomean"][2] < 0.05 * irls["gap_geomean"][0]


def test_prints_its_headline_numbers(smoke_run, stdout):
    _, s = smoke_run
    out = stdout["convergence"]
    for name in ("subgradient_inv_sqrt", "smoothing_gd", "ista", "fista"):
        m = s["methods"][name]
        assert f"{m['label']}: {m['tail_slope_mean']:.2f} +- {m['tail_slope_std']:.2f}" in out
    assert "smallest gap to the certified optimum" in out
    assert out.splitlines()[-1].startswith("results in ")


def test_outputs_written(smoke_run):
    workdir, s = smoke_run
    assert (workdir / "convergence.png").stat().st_size > 10_000
    rows = [json.loads(line) for line in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert {r["method"] for r in rows} == set(s["methods"])
    assert all(r["gap_min"] <= r["gap_geomean"] <= r["gap_max"] for r in rows)
    assert s["num_seeds"] == 4 and len(s["methods"]["ista"]["tail_slopes"]) == 4


@pytest.mark.parametrize(
    "override, key",
    [
        ("mu=0", "mu"),
        ("lad.d=500", "lad.d"),
        ("solver_steps={simplex: [1]}", "solver_steps"),
        ("num_steps=5", "num_steps"),
    ],
)
def test_bad_config_exits_2_naming_the_key(study, tmp_path, capsys, override, key):
    argv = ["--config", SMOKE, "--workdir", str(tmp_path), "--set", override]
    assert runner.main(study, argv) == 2
    assert key in capsys.readouterr().err
