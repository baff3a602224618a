"""The phase-transition study: the theoretical curve, the 50% estimator, padding, a smoke run."""

import json
import math
from pathlib import Path

import _studies
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, optimize

from l1jax import runner
from l1jax.runner import ConfigError

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs/phase_transition/smoke.yaml")


@pytest.fixture(scope="module")
def study():
    return _studies.load("phase_transition")


@pytest.fixture(scope="module")
def module(study):
    return _studies.module(study)


@pytest.fixture(scope="module")
def stdout():
    return {}


@pytest.fixture(scope="module")
def smoke(study, tmp_path_factory, stdout):
    workdir = tmp_path_factory.mktemp("phase_transition_smoke")
    summary, stdout[study.name] = _studies.run(study, SMOKE, workdir)
    return workdir, summary


# --- theory ------------------------------------------------------------------------------------


@pytest.mark.parametrize("t", [0.0, 0.3, 1.0, 2.5])
def test_tail_moment_matches_quadrature(module, t):
    # E[(|g| - t)_+^2] = sqrt(2/pi) int_t^inf (u - t)^2 exp(-u^2/2) du.
    value, _ = integrate.quad(lambda u: (u - t) ** 2 * np.exp(-u * u / 2), t, np.inf)
    assert module._tail_moment(t) == pytest.approx(math.sqrt(2 / math.pi) * value, rel=1e-10)


def test_statistical_dimension_endpoints_and_monotonicity(module):
    assert module.statistical_dimension(1e-12) == pytest.approx(0.0, abs=1e-9)
    assert module.statistical_dimension(1.0) == 1.0
    values = [module.statistical_dimension(e) for e in np.linspace(0.01, 0.99, 12)]
    assert np.all(np.diff(values) > 0)
    assert all(e < v < 1 for e, v in zip(np.linspace(0.01, 0.99, 12), values, strict=True))


@pytest.mark.parametrize("delta", [0.1, 0.25, 0.5, 0.75, 0.9])
def test_parametric_curve_matches_direct_minimisation(module, delta):
    # Independent route: solve psi(eps) = delta with psi minimised numerically, rho = eps / delta.
    eps = optimize.brentq(
        lambda e: module.statistical_dimension(e) - delta, 1e-9, 1 - 1e-9, xtol=1e-13
    )
    assert float(module.theory_rho(delta)) == pytest.approx(eps / delta, rel=1e-6)


def test_theory_at_delta_half_is_the_donoho_tanner_value(module):
    # The weak threshold of the cross-polytope at delta = 1/2 (Donoho and Tanner 2009): 0.386.
    assert float(module.theory_rho(0.5)) == pytest.approx(0.3857, abs=5e-4)
    rho = module.theory_rho(np.linspace(0.02, 0.98, 25))
    assert np.all(np.diff(rho) > 0) and np.all((rho > 0) & (rho < 1))


# --- the 50% estimator -------------------------------------------------------------------------


def test_rho50_interpolates_a_step(module):
    rho = np.array([0.1, 0.2, 0.3, 0.4])
    trials = np.full(4, 10)
    assert module.rho50(rho, np.array([10, 10, 0, 0]), trials) == pytest.approx(0.25)
    assert module.rho50(rho, np.array([10, 8, 2, 0]), trials) == pytest.approx(0.25)


def test_rho50_pools_duplicates_and_repairs_non_monotone_rates(module):
    # Rates 1, 0.4, 0.6, 0: pooled into 1, 0.5, 0.5, 0 -> first rate < 1/2 is the last point.
    rho = np.array([0.1, 0.2, 0.3, 0.4])
    got = module.rho50(rho, np.array([10, 4, 6, 0]), np.full(4, 10))
    assert got == pytest.approx(0.3 + (0.5 - 0.5) / 0.5 * 0.1)
    # Duplicated rho values (k rounds to the same integer) count as one pooled point.
    rho = np.array([0.1, 0.1, 0.3])
    assert module.rho50(rho, np.array([10, 10, 0]), np.full(3, 10)) == pytest.approx(0.2)


def test_rho50_is_nan_outside_the_grid(module):
    rho = np.array([0.1, 0.2])
    assert math.isnan(module.rho50(rho, np.array([1, 0]), np.full(2, 10)))
    assert math.isnan(module.rho50(rho, np.array([10, 9]), np.full(2, 10)))


# --- padding -----------------------------------------------------------------------------------


@pytest.mark.parametrize("m, k", [(3, 1), (6, 4), (8, 2)])
@pytest.mark.parametrize("signal", ["rademacher", "gaussian"])
def test_padded_problem_structure(module, m, k, signal):
    n, m_max, m_min = 12, 8, 3
    pad = m_max - m_min
    A, b, x = module.make_problem(
        jax.random.key(m * 10 + k),
        jnp.int32(m),
        jnp.int32(k),
        n=n,
        m_max=m_max,
        pad=pad,
        signal=signal,
    )
    A, b, x = map(np.asarray, (A, b, x))
    assert A.shape == (m_max, n + pad) and b.shape == (m_max,) and x.shape == (n,)
    assert np.count_nonzero(x) == k
    if signal == "rademacher":
        assert set(np.abs(x[x != 0])) == {1.0}
    np.testing.assert_allclose(b[:m], A[:m, :n] @ x, rtol=1e-6, atol=1e-6)
    assert np.all(A[:m, n:] == 0) and np.all(A[m:, :n] == 0)
    pins = np.zeros((m_max - m, pad))
    pins[:, : m_max - m] = np.eye(m_max - m)
    np.testing.assert_array_equal(A[m:, n:], pins)
    np.testing.assert_array_equal(b[m:], 1.0)
    assert np.linalg.matrix_rank(A) == m_max


# --- the smoke run -----------------------------------------------------------------------------


def test_smoke_success_far_from_the_curve(smoke):
    _, s = smoke
    assert s["well_below_curve"]["cells"] >= 5 and s["well_above_curve"]["cells"] >= 5
    assert s["well_below_curve"]["success_rate"] >= 0.9
    assert s["well_above_curve"]["success_rate"] <= 0.1
    rate = np.array(s["success_rate"])
    assert rate.shape == (len(s["delta"]), len(s["rho_nominal"]))
    # Every column goes from (near) always to never recovered as rho grows.
    assert np.all(rate[1:, 0] >= 0.9) and np.all(rate[:, -1] <= 0.1)


def test_smoke_empirical_transition_near_theory_at_delta_half(smoke, module):
    _, s = smoke
    half = s["rho50_at_delta_half"]
    assert half["theory"] == pytest.approx(float(module.theory_rho(0.5)), rel=1e-12)
    assert 0.25 <= half["empirical"] <= 0.5
    emp = np.array([np.nan if v is None else v for v in s["rho50_empirical"]])
    theo = np.array(s["rho50_theory"])
    ok = ~np.isnan(emp)
    assert ok.sum() >= len(emp) - 1
    assert np.all(np.abs(emp[ok] - theo[ok]) < 0.15)


def test_smoke_solver_agrees_with_highs_and_is_exact_on_the_pins(smoke):
    _, s = smoke
    assert s["reference"]["checked"] >= 5
    assert s["reference"]["agreement"] == 1.0
    assert s["solver"]["max_pin_error"] < 1e-8
    assert s["solver"]["converged_fraction"] >= 0.95
    # The 1e-3 threshold sits in an empty gap: errors are ~1e-12 or O(1).
    assert s["solver"]["ambiguous_errors"] <= 0.01 * s["solver"]["problems"]


def test_smoke_prints_its_headline_numbers(smoke, stdout):
    _, s = smoke
    out = stdout["phase_transition"]
    half = s["rho50_at_delta_half"]
    assert f"rho_50 at delta = 1/2: empirical {half['empirical']:.4f}, theory 0.3857" in out
    below = s["well_below_curve"]
    assert f"well below the curve {below['success_rate']:.3f} ({below['cells']} cells)" in out


def test_smoke_writes_plot_and_metrics(smoke):
    workdir, s = smoke
    assert (workdir / "phase_transition.png").stat().st_size > 10_000
    lines = [json.loads(t) for t in (workdir / "metrics.jsonl").read_text().splitlines()]
    assert [r["delta"] for r in lines if r.get("tag") == "delta"] == s["delta"]


@pytest.mark.parametrize(
    "override, key",
    [
        ("signal=sparse", "signal"),
        ("method=simplex", "method"),
        ("grid.delta_min=0.0", "grid.delta_min"),
        ("grid.rho_max=1.5", "grid.rho_min"),
        ("grid.trials=0", "grid.trials"),
        ("success_tol=0.0", "success_tol"),
    ],
)
def test_bad_configs_name_the_key(study, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        runner.load_study_config(study, SMOKE, [override])


@pytest.mark.parametrize("name", ["default", "full"])
def test_configs_load(study, name):
    cfg = runner.load_study_config(study, ROOT / f"configs/phase_transition/{name}.yaml")
    assert 0.5 in np.round(
        np.linspace(cfg.grid.delta_min, cfg.grid.delta_max, cfg.grid.num_delta), 12
    )
