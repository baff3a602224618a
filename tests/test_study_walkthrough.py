"""The walkthrough study: closed-form minimisers, the L1 step-function derivative, GD, outliers."""

import json
from pathlib import Path

import _studies
import numpy as np
import pytest

from l1jax import runner
from l1jax.solvers import reference

ROOT = Path(__file__).resolve().parents[1]
SMOKE = str(ROOT / "configs/walkthrough/smoke.yaml")


@pytest.fixture(scope="module")
def study():
    return _studies.load("walkthrough")


@pytest.fixture(scope="module")
def module(study):
    return _studies.module(study)


@pytest.fixture(scope="module")
def stdout():
    return {}


@pytest.fixture(scope="module")
def smoke_run(study, tmp_path_factory, stdout):
    workdir = tmp_path_factory.mktemp("walkthrough_smoke")
    summary, stdout[study.name] = _studies.run(study, SMOKE, workdir)
    return workdir, summary


def _l1_subgradient(x, y, w):
    """``sum_i -x_i sign(y_i - w x_i)`` with sign(0) = 0, in NumPy."""
    return np.sum(-x * np.sign(y - w * x))


@pytest.mark.parametrize("seed", range(6))
def test_weighted_median_is_the_lad_lp_solution(module, seed):
    rng = np.random.default_rng(seed)
    n = 3 + seed
    # Negative x too: the weights are |x_i|, the points y_i / x_i.
    x = rng.uniform(-3, 3, n)
    y = 1.5 * x + rng.standard_normal(n)
    w = module.l1_minimiser(x, y)
    coef, f_star = reference.lad_lp(x[:, None], y)
    assert np.mean(np.abs(y - w * x)) == pytest.approx(f_star, rel=1e-12, abs=1e-12)
    # The minimum of a convex piecewise-linear function is at a kink: check against all of them.
    kinks = y / x
    values = [np.sum(np.abs(y - k * x)) for k in kinks]
    assert w == kinks[int(np.argmin(values))]
    assert w == pytest.approx(coef[0], abs=1e-9)


def test_weighted_median_tie_gives_the_lower_end(module):
    # Weights 1, 1: every point of [1, 3] minimises |1 - m| + |3 - m|.
    assert module.weighted_median(np.array([3.0, 1.0]), np.array([1.0, 1.0])) == 1.0


def test_minimisers_match_closed_forms_and_references(smoke_run):
    _, s = smoke_run
    x = np.asarray(s["x"])
    for key in ("clean", "outlier_data"):
        d = s[key]
        y = np.asarray(d["y"])
        ratios = y / x
        order = np.argsort(ratios)
        cum = np.cumsum(x[order])
        assert d["l1_minimiser"] == pytest.approx(ratios[order][np.argmax(cum >= cum[-1] / 2)])
        assert d["l1_minimiser"] == pytest.approx(reference.lad_lp(x[:, None], y)[0][0], abs=1e-9)
        assert d["l2_minimiser"] == pytest.approx(np.sum(x * y) / np.sum(x * x), rel=1e-12)
        assert d["l2_minimiser"] == pytest.approx(
            np.linalg.lstsq(x[:, None], y, rcond=None)[0][0], rel=1e-10
        )
        # The grid argmin agrees to the grid spacing (smoke grid: 401 points on [0, 7]).
        spacing = 7.0 / 400
        assert abs(d["l1_grid_argmin"] - d["l1_minimiser"]) <= spacing
        assert abs(d["l2_grid_argmin"] - d["l2_minimiser"]) <= spacing


def test_outlier_moves_l2_far_more_than_l1(smoke_run):
    _, s = smoke_run
    # L2: shift * x_j / sum x^2 exactly (the normal equation is linear in y).
    assert s["l2_shift"] == pytest.approx(s["l2_shift_predicted"], rel=1e-10)
    assert s["l2_shift"] == pytest.approx(20.0 * 5.0 / 55.0, rel=1e-10)
    # L1: the weighted median can only move to a neighbouring ratio y_i / x_i of the clean data.
    clean_ratios = np.asarray(s["clean"]["y"]) / np.asarray(s["x"])
    assert s["l1_shift"] <= np.ptp(clean_ratios)
    assert s["l2_shift"] > 5 * s["l1_shift"]
    assert s["l2_loss_ratio_at_clean_fit"] > 10 * s["l1_loss_ratio_at_clean_fit"]


def test_l1_derivative_is_the_step_function_with_the_mid_jump_at_kinks(module, smoke_run, x64):
    _, s = smoke_run
    x = np.asarray(s["x"])
    for key in ("clean", "outlier_data"):
        y = np.asarray(s[key]["y"])
        kinks = np.asarray(s[key]["kinks"])
        # Away from kinks jax.grad is sum -x_i sign(y_i - w x_i).
        w = np.linspace(0.0, 7.0, 57)
        w = w[np.min(np.abs(w[:, None] - kinks[None, :]), axis=1) > 1e-6]
        got = np.asarray(module.l1_grad(w, x, y, reduction="sum"))
        np.testing.assert_allclose(got, [_l1_subgradient(x, y, v) for v in w], rtol=0, atol=1e-12)
        # At a kink: exactly where the residual is 0, the middle of the one-sided derivatives.
        assert all(s[key]["kink_is_exact"])
        assert np.all(kinks * x[np.argsort(y / x)] == y[np.argsort(y / x)])
        at = np.asarray(s[key]["grad_at_kinks"])
        left = [_l1_subgradient(x, y, k - 1e-9) for k in kinks]
        right = [_l1_subgradient(x, y, k + 1e-9) for k in kinks]
        np.testing.assert_allclose(at, (np.array(left) + np.array(right)) / 2, atol=1e-12)
        np.testing.assert_allclose(
            np.asarray(s[key]["subdifferential_at_kinks"]),
            np.stack([left, right], axis=1),
            atol=1e-12,
        )
        # 0 is a subgradient exactly at the minimiser's kink.
        mn = np.asarray(s[key]["min_norm_subgradient_at_kinks"])
        assert np.sum(mn == 0) == 1
        assert kinks[mn == 0][0] == s[key]["l1_minimiser"]


def test_gradient_descent_l2_converges_l1_zigzags(smoke_run):
    _, s = smoke_run
    x = np.asarray(s["x"])
    lr_l1 = 0.01
    for key in ("clean", "outlier_data"):
        d = s[key]
        assert d["gd_l2_final"] == pytest.approx(d["l2_minimiser"], abs=1e-9)
        assert d["gd_l2_last10_range"] < 1e-9
        # Constant-step subgradient descent ends within one step (lr * sum|x|) of the minimiser
        # and keeps moving.
        assert abs(d["gd_l1_final"] - d["l1_minimiser"]) <= lr_l1 * np.sum(np.abs(x))
        assert d["gd_l1_last10_range"] > 0


def test_prints_its_headline_numbers(smoke_run, stdout):
    _, s = smoke_run
    out = stdout["walkthrough"]
    assert f"L1 {s['l1_shift']:.4g}, L2 {s['l2_shift']:.4g}" in out
    assert f"({s['l2_shift_over_l1_shift']:.1f} times the L1 shift)" in out


def test_outputs_written(smoke_run):
    workdir, _ = smoke_run
    assert (workdir / "walkthrough.png").stat().st_size > 10_000
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == 61
    assert json.loads(lines[0])["w_l1_clean"] == 0.0


@pytest.mark.parametrize(
    "override, key",
    [
        ("reduction=median", "reduction"),
        ("outlier_index=9", "outlier_index"),
        ("w_max=-1", "w_max"),
        ("x=[0.0,0.0]", "x"),
    ],
)
def test_bad_config_exits_2_naming_the_key(study, tmp_path, capsys, override, key):
    argv = ["--config", SMOKE, "--workdir", str(tmp_path), "--set", override]
    assert runner.main(study, argv) == 2
    assert key in capsys.readouterr().err
