"""The robustness study end to end on its smoke profile, through the CLI: results, plot,
the L1-vs-L2 claim, exact minimisers, workdir policy, and Ctrl-C + --resume (bitwise)."""

from __future__ import annotations

import json
from pathlib import Path

import _studies
import numpy as np
import pytest

from l1jax import runner

REPO = Path(__file__).resolve().parents[1]
SMOKE = str(REPO / "configs" / "robustness" / "smoke.yaml")


@pytest.fixture(scope="module")
def study():
    return _studies.load("robustness")


@pytest.fixture(scope="module")
def smoke(study, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("robustness") / "smoke"
    summary, _ = _studies.run(study, SMOKE, workdir)
    return workdir, summary


def test_writes_results_to_the_workdir(smoke):
    workdir, summary = smoke
    assert (workdir / "coef_error.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (
        (workdir / "config.yaml")
        .read_text()
        .startswith("# python experiments/robustness.py --config ")
    )
    tags = {json.loads(line).get("tag") for line in (workdir / "metrics.jsonl").open()}
    assert tags == {"l1", "mse", "huber-delta1.0", "smooth_l1-beta0.1"}
    for tag in tags:
        assert (workdir / "checkpoints" / tag).is_dir()
    assert summary["run"]["devices"].startswith("8 x")
    assert summary["fractions"] == [0.0, 0.2, 0.4] and summary["seeds"] == 2


def test_l1_stays_bounded_where_least_squares_does_not(smoke):
    _, summary = smoke
    err = {k: np.array(v["mean"]) for k, v in summary["coef_error"].items()}
    # Clean data: every loss recovers w to about the noise level.
    assert all(e[0] < 0.1 for e in err.values())
    # 40% outliers at distance 10: least squares moves by about 0.4 * 10; L1 stays well below 1.
    assert 3.0 < err["mse"][2] < 5.0
    assert err["l1"][2] < 0.6 and err["mse"][2] > 8 * err["l1"][2]
    assert np.all(np.diff(err["mse"]) > 0)


def test_fits_are_close_to_the_exact_minimisers(smoke):
    _, summary = smoke
    gaps = summary["max_distance_to_exact_minimiser"]
    # 300 Adam steps on the smoke problem: close to, not at, the minimisers.
    assert max(gaps.values()) < 0.2
    exact = summary["exact_minimiser_coef_error_mean"]
    for tag, row in summary["coef_error"].items():
        np.testing.assert_allclose(row["mean"], exact[tag]["mean"], atol=0.15)


def test_exact_l1_fit_satisfies_the_optimality_certificate(study):
    mod = _studies.module(study)

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 3))
    y = x @ np.array([1.0, -1.0, 2.0]) + 0.5 + rng.standard_t(1, size=40)
    beta = mod.exact_fit({"name": "l1"}, x, y)
    a = np.c_[x, np.ones(40)]
    r = a @ beta - y
    # A vertex of the LP interpolates p = 4 rows; beta minimises sum |r| iff some s in [-1, 1]
    # on those rows makes  A_Z^T s = -A_N^T sign(r_N)  (0 is in the subdifferential).
    zero = np.abs(r) < 1e-9
    assert zero.sum() == 4
    s = np.linalg.solve(a[zero].T, -a[~zero].T @ np.sign(r[~zero]))
    assert np.all(np.abs(s) <= 1 + 1e-9)


def test_existing_workdir_needs_resume_or_overwrite(study, smoke, capsys):
    workdir, _ = smoke
    argv = ["--config", SMOKE, "--workdir", str(workdir)]
    assert runner.main(study, argv) == 2
    assert "already holds a finished run; pass --resume" in capsys.readouterr().err
    assert runner.main(study, [*argv, "--resume", "--set", "data.noise=0.2"]) == 2
    assert "its config differs (data.noise: 0.1 -> 0.2)" in capsys.readouterr().err


def test_ctrl_c_then_resume_matches_the_uninterrupted_run(
    study, smoke, tmp_path, monkeypatch, capsys
):
    _, reference = smoke
    workdir = tmp_path / "run"
    argv = ["--config", SMOKE, "--workdir", str(workdir)]
    real_train = runner.train

    def interrupted_train(task, cfg, **kw):
        def ctrl_c(step, state):
            if kw.get("tag") == "mse" and step >= 200:
                raise KeyboardInterrupt

        return real_train(task, cfg, **{**kw, "hooks": [ctrl_c]})

    monkeypatch.setattr(runner.study, "train", interrupted_train)
    assert runner.main(study, argv) == runner.EXIT_INTERRUPTED
    err = capsys.readouterr().err
    assert "interrupted at step 200 of 300" in err
    assert f"--workdir {workdir} --resume" in err
    assert not (workdir / "summary.json").exists()
    monkeypatch.setattr(runner.study, "train", real_train)
    assert runner.main(study, [*argv, "--resume"]) == 0
    resumed = json.loads((workdir / "summary.json").read_text())
    assert resumed["coef_error"] == reference["coef_error"]  # exact float equality
    gaps = "max_distance_to_exact_minimiser"
    assert resumed[gaps] == reference[gaps]


def test_the_task_trains_with_x64_on_and_off(study):
    # x64 off (the GPU default) trains in float32, x64 on in float64, as JAX's own defaults
    # would (the data are drawn in that precision too, so the two problems differ): each run
    # lands as close to its own problem's exact minimiser as the smoke run does.
    import jax

    module = _studies.module(study)
    spec = {"name": "huber", "delta": 1.0}
    cfg = runner.load_study_config(study, SMOKE, ["sweep={seed: [0]}"])
    for on in (False, True):
        with jax.enable_x64(on):
            result = runner.train(module.task(spec), cfg)
        assert result.params.weight.dtype == (np.float64 if on else np.float32)
        fitted, exact, _ = module._exact_fits(spec, result)
        assert np.max(np.abs(fitted - exact)) < 0.2, (on, fitted, exact)
