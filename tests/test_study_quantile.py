"""The quantile study: coverage, non-crossing and slopes of seven levels fitted in one call."""

import dataclasses
import json
from pathlib import Path

import _studies
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats

from l1jax import runner
from l1jax.runner import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs/quantile/smoke.yaml")


@pytest.fixture(scope="module")
def study():
    return _studies.load("quantile")


@pytest.fixture(scope="module")
def module(study):
    return _studies.module(study)


@pytest.fixture(scope="module")
def stdout():
    return {}


@pytest.fixture(scope="module")
def smoke(study, tmp_path_factory, stdout):
    workdir = tmp_path_factory.mktemp("quantile_smoke")
    summary, stdout[study.name] = _studies.run(study, SMOKE, workdir)
    return workdir, summary, runner.load_study_config(study, SMOKE)


def test_smoke_coverage_within_binomial_tolerance(smoke):
    _, summary, cfg = smoke
    n_test, n_train = cfg.data.n_test, cfg.data.n_train
    assert [r["tau"] for r in summary["levels"]] == cfg.taus
    for r in summary["levels"]:
        tau = r["tau"]
        # Test-set noise plus the fit's own error (its coverage has SD ~ sqrt(tau(1-tau)/n_train)).
        tol = 4 * np.sqrt(tau * (1 - tau) * (1 / n_test + 1 / n_train)) + 0.005
        assert abs(r["coverage_test"] - tau) < tol, r
        assert r["converged"]
    assert summary["all_coverage_ok"]


def test_smoke_fitted_quantiles_do_not_cross_on_the_data_range(smoke):
    _, summary, _ = smoke
    assert summary["non_crossing"]
    assert summary["min_gap_on_data_range"] > 0
    lo, hi = summary["x_range"]
    assert 0 <= lo < 0.05 and 1.95 < hi <= 2.0
    ends = np.array([lo, hi])
    q = np.array([[r["intercept"] + r["slope"] * x for x in ends] for r in summary["levels"]])
    assert np.all(np.diff(q, axis=0) > 0)


def test_smoke_slopes_match_the_true_conditional_quantiles(smoke):
    _, summary, cfg = smoke
    d = cfg.data
    taus = np.array(cfg.taus)
    z = stats.norm.ppf(taus) * d.noise_scale
    true_slope = d.slope + d.scale_slope * z
    true_intercept = d.intercept + d.scale_intercept * z
    got = np.array([[r["intercept"], r["slope"]] for r in summary["levels"]])
    se = np.array([r["slope_se_theory"] for r in summary["levels"]])
    np.testing.assert_allclose([r["true_slope"] for r in summary["levels"]], true_slope, rtol=1e-12)
    assert np.all(np.abs(got[:, 1] - true_slope) < 4 * se + 0.02)
    assert np.all(np.abs(got[:, 0] - true_intercept) < 0.5)
    # Monte Carlo: unbiased and with the asymptotic spread.
    mc_mean = np.array([r["mc_slope_mean"] for r in summary["levels"]])
    mc_sd = np.array([r["mc_slope_sd"] for r in summary["levels"]])
    reps = summary["monte_carlo"]["replicates"]
    assert np.all(np.abs(mc_mean - true_slope) < 4 * se / np.sqrt(reps) + 0.02)
    assert np.all((mc_sd > 0.6 * se) & (mc_sd < 1.6 * se))
    mc_cov = np.array([r["mc_coverage_mean"] for r in summary["levels"]])
    cov_sd = np.array([r["coverage_sd_theory"] for r in summary["levels"]])
    assert np.all(np.abs(mc_cov - taus) < 4 * cov_sd / np.sqrt(reps) + 1e-3)
    assert summary["monte_carlo"]["converged_fraction"] == 1.0


def test_smoke_prints_its_headline_numbers(smoke, stdout):
    _, summary, cfg = smoke
    out = stdout["quantile"]
    ok = sum(r["coverage_ok"] for r in summary["levels"])
    assert f"within tolerance at {ok} of {len(cfg.taus)} levels" in out
    assert f"max |coverage - tau| = {summary['max_abs_coverage_error']:.4f}" in out
    assert f"non-crossing on the data range: {summary['non_crossing']}" in out
    assert f"crossing fraction {summary['monte_carlo']['crossing_fraction']:.3f}" in out


def test_smoke_writes_the_plot_and_metrics(smoke):
    workdir, summary, cfg = smoke
    assert (workdir / "quantile.png").stat().st_size > 10_000
    lines = [json.loads(s) for s in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["tau"] for r in lines if r.get("tag") == "level"] == cfg.taus


@pytest.mark.parametrize("noise", ["gaussian", "laplace"])
def test_true_lines_have_exact_population_coverage(module, noise):
    d = module.DataConfig(noise=noise, noise_scale=1.3)
    taus = np.array([0.05, 0.3, 0.5, 0.9])
    cover = module.population_coverage(d, module.true_lines(d, taus))
    np.testing.assert_allclose(cover, taus, atol=1e-12)
    # A line shifted up by c everywhere covers more: F is increasing.
    shifted = module.true_lines(d, taus) + np.array([0.1, 0.0])
    assert np.all(module.population_coverage(d, shifted) > taus)


@pytest.mark.parametrize("noise", ["gaussian", "laplace"])
def test_asymptotic_se_in_the_homoscedastic_closed_form(module, noise):
    # With sigma(x) = c0 the density f is constant: Var(slope) = tau(1-tau) / (n f^2 Var(x)) and
    # the coverage variance is tau(1-tau)/n (E[x]^T E[x x^T]^{-1} E[x] = 1 with an intercept).
    d = module.DataConfig(noise=noise, scale_intercept=0.7, scale_slope=0.0, x_max=3.0)
    taus = np.array([0.1, 0.5, 0.8])
    n = 500
    se_slope, se_cov = module.asymptotic_se(d, taus, n)
    dist = (stats.norm if noise == "gaussian" else stats.laplace)(scale=0.7)
    f = dist.pdf(dist.ppf(taus))
    var_x = d.x_max**2 / 12
    expected = np.sqrt(taus * (1 - taus) / (n * f**2 * var_x))
    np.testing.assert_allclose(se_slope, expected, rtol=1e-10)
    np.testing.assert_allclose(se_cov, np.sqrt(taus * (1 - taus) / n), rtol=1e-10)


def test_line_gaps_detect_a_crossing_inside_the_range(module):
    # Lines 0 + 1 x and 0.5 + 0 x cross at x = 0.5.
    coef = jnp.array([[0.0, 1.0], [0.5, 0.0]])
    gaps = np.asarray(module.line_gaps(coef, jnp.array(0.0), jnp.array(1.0)))
    np.testing.assert_allclose(gaps[:, 0], [0.5, -0.5])
    gaps = np.asarray(module.line_gaps(coef, jnp.array(0.0), jnp.array(0.4)))
    assert np.all(gaps > 0)


@pytest.mark.parametrize(
    "override, key",
    [
        ("data.noise=cauchy", "data.noise"),
        ("taus=[0.5,0.1]", "taus"),
        ("taus=[0.0,0.5]", "taus"),
        ("data.scale_intercept=0.0", "data.scale_intercept"),
        ("method=simplex", "method"),
    ],
)
def test_bad_configs_name_the_key(study, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        runner.load_study_config(study, SMOKE, [override])


def test_default_config_loads(study):
    cfg = runner.load_study_config(study, ROOT / "configs/quantile/default.yaml")
    assert dataclasses.asdict(cfg.data)["noise"] == "gaussian"
    assert cfg.taus == [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
