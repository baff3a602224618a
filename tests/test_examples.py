"""The worked examples in examples/ (pages under docs/examples/) run and show what they say."""

import runpy
from pathlib import Path

import numpy as np
import pytest

from l1jax.solvers import reference

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main_of(name):
    return runpy.run_path(str(EXAMPLES / f"{name}.py"), run_name="example")["main"]


def test_robust_mlp_l1_follows_the_clean_function_and_mse_the_outliers(capsys):
    errors = main_of("robust_mlp")(["--steps", "400", "--n", "128"])
    # 20% of the responses are shifted by +8: least squares moves by about 0.2 * 8 = 1.6.
    assert errors["l1"] < 0.25 < 1.0 < errors["mse"], errors
    assert "l1" in capsys.readouterr().out


def test_engel_quantiles_match_the_lp_and_their_intervals_cover_them():
    from statsmodels.datasets import engel

    rows = main_of("engel_quantiles")([])
    data = engel.load_pandas().data
    X = np.column_stack([np.ones(len(data)), data["income"].to_numpy()])
    y = data["foodexp"].to_numpy()
    for tau, b0, b1, se, lo, hi in rows:
        lp, _ = reference.quantile_lp(X, y, tau)
        np.testing.assert_allclose([b0, b1], lp, rtol=1e-6)
        assert se > 0 and lo < b1 < hi


def test_lasso_path_starts_empty_and_takes_the_true_coefficients_first():
    out = main_of("lasso_path")([])
    assert out["active"][0] == 0 and out["active"][-1] > 5
    assert min(out["enters"]) > out["first_false"], out


def test_fista_and_polyak_reach_the_solvers_optima():
    gaps = main_of("fista_polyak")(["--steps", "300"])
    assert abs(gaps["fista_gap"]) < 1e-8, gaps
    assert -1e-12 <= gaps["polyak_gap"] < 1e-3, gaps


@pytest.mark.parametrize("name", ["robust_mlp", "engel_quantiles", "lasso_path", "fista_polyak"])
def test_every_example_has_a_page(name):
    page = EXAMPLES.parent / "docs" / "examples" / f"{name}.md"
    assert f"examples/{name}.py" in page.read_text()
