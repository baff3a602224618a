"""Results you can read: metrics lines name their sweep coordinates, load_run reads a run back
as a table, training runs plot their learning curves, progress is printed as plain lines when
stdout is a file, and a --set of a key a study does not use is an error."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import _studies
import numpy as np
import pytest
from _runner_tasks import TASK, config

from l1jax import runner
from l1jax.runner import ConfigError, progress, train

REPO = Path(__file__).resolve().parents[1]
PNG = b"\x89PNG\r\n\x1a\n"


# --- metrics lines name their sweep point -------------------------------------------------------


def test_sweep_lines_name_their_coordinates(tmp_path):
    cfg = config(
        sweep={"seed": [3, 4], "optimizer.learning_rate": [0.05, 0.1, 0.2]},
        **{"train.steps": 20, "train.eval_every": 0},
    )
    result = train(TASK, cfg, workdir=tmp_path)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in lines if "loss" in r]
    assert [(r["step"], r["point"]) for r in train_lines] == [
        (s, i) for s in (10, 20) for i in range(6)
    ]
    for r in lines:
        assert r["coords"] == result.grid.points[r["point"]]
        assert all(np.ndim(v) == 0 for k, v in r.items() if k != "coords")  # no lists
    # Each point's line holds that point's values.
    evals = [r for r in lines if "eval/coef_error" in r]
    assert [r["point"] for r in evals] == list(range(6))
    np.testing.assert_allclose(
        [r["eval/coef_error"] for r in evals], result.evals["coef_error"], rtol=1e-6
    )
    np.testing.assert_allclose(
        [r["learning_rate"] for r in train_lines[6:]],
        [0.05 * (1 + np.cos(np.pi * 19 / 20)) / 2 * f for f in (1, 2, 4, 1, 2, 4)],
        rtol=1e-5,
    )


def test_metrics_frame_has_a_column_per_swept_key():
    records = [
        {
            "tag": "a",
            "step": 10,
            "point": 0,
            "coords": {"seed": 0, "data.fraction": 0.5},
            "loss": 1.0,
        },
        {
            "tag": "a",
            "step": 10,
            "point": 1,
            "coords": {"seed": 1, "data.fraction": 0.5},
            "loss": 2.0,
        },
        {"method": "ista", "k": 3, "gap": 0.1},  # a study's own line
    ]
    frame = runner.metrics.metrics_frame(records)
    assert list(frame.columns[:5]) == ["tag", "step", "point", "seed", "data.fraction"]
    assert frame["tag"].tolist() == ["a", "a", ""]
    assert frame["seed"].tolist()[:2] == [0, 1] and frame["loss"].tolist()[:2] == [1.0, 2.0]
    assert frame["step"].isna().tolist() == [False, False, True]
    assert frame.loc[2, "method"] == "ista"


def test_a_run_without_metrics_reads_back_as_an_empty_frame(tmp_path):
    frame = runner.metrics.metrics_frame([])
    assert list(frame.columns) == ["tag", "step"] and len(frame) == 0
    assert str(frame["step"].dtype) == "Int64"
    (tmp_path / "config.yaml").write_text("seed: 0\n")  # a study that trains nothing
    assert runner.load_run(tmp_path).metrics.empty


def test_read_metrics_skips_a_torn_last_line_and_names_a_damaged_one(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "loss": 1.0}\n{"step": 2, "lo')
    assert runner.metrics.read_metrics(path) == [{"step": 1, "loss": 1.0}]
    path.write_text('{"step": 1}\nnot json\n{"step": 2}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2: not a JSON object"):
        runner.metrics.read_metrics(path)


def test_load_run_needs_a_run_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.yaml"):
        runner.load_run(tmp_path)


# --- a robustness smoke run, stdout redirected to a file ----------------------------------------


@pytest.fixture(scope="module")
def logged_run(tmp_path_factory):
    """The robustness smoke profile (two losses, 200 steps) as a script whose stdout is a file,
    outside pytest (so progress is on), printing a line after every host call."""
    root = tmp_path_factory.mktemp("logged")
    workdir, log = root / "run", root / "stdout.log"
    env = {k: v for k, v in os.environ.items() if k != "PYTEST_CURRENT_TEST"}
    cmd = [
        sys.executable,
        str(REPO / "experiments" / "robustness.py"),
        "--config",
        str(REPO / "configs" / "robustness" / "smoke.yaml"),
        "--set",
        "losses=[{name: l1}, {name: mse}]",
        "--set",
        "train.steps=200",
        "--set",
        "train.progress_every=0",
        "--workdir",
        str(workdir),
    ]
    with open(log, "w") as out:
        proc = subprocess.run(
            cmd, stdout=out, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO, timeout=300
        )
    assert proc.returncode == 0, proc.stderr
    return workdir, log.read_text(), proc.stderr


def test_progress_is_plain_lines_when_stdout_is_a_file(logged_run):
    _, out, err = logged_run
    line = re.compile(
        r"^(l1|mse): step (\d+)/200 \(\d+%\)  loss [-+.e\d]+  [\d.]+ steps/s  "
        r"elapsed \d+:\d\d:\d\d  eta (\d+:\d\d:\d\d|\?)$"
    )
    progress = [m.groups()[:2] for m in map(line.match, out.splitlines()) if m]
    # One line per host call (train.steps_per_call is 100), in order, for each training.
    assert progress == [("l1", "100"), ("l1", "200"), ("mse", "100"), ("mse", "200")]
    assert "\r" not in out and "\r" not in err  # no tqdm bar in the log


def test_load_run_round_trip(logged_run):
    workdir, out, _ = logged_run
    data = runner.load_run(workdir)
    assert data.config["sweep"] == {"seed": [0, 1], "data.fraction": [0.0, 0.2, 0.4]}
    assert data.config["train"]["steps"] == 200
    summary = json.loads((workdir / "summary.json").read_text())
    assert data.summary == summary
    frame = data.metrics
    lines = (workdir / "metrics.jsonl").read_text().splitlines()
    assert len(frame) == len(lines)
    training = frame[frame["loss"].notna()]
    # step x sweep point for each tag: 4 logged steps (log_every 50) x 6 points.
    assert training.groupby("tag").size().to_dict() == {"l1": 24, "mse": 24}
    assert set(zip(training["seed"], training["data.fraction"], strict=True)) == {
        (s, f) for s in (0, 1) for f in (0.0, 0.2, 0.4)
    }
    # The final evaluation in the table is the summary's, point by point.
    for tag in ("l1", "mse"):
        final = frame[(frame["tag"] == tag) & frame["eval/coef_error"].notna()]
        for i, fraction in enumerate(summary["fractions"]):
            errors = final[final["data.fraction"] == fraction]["eval/coef_error"]
            assert len(errors) == 2
            assert errors.mean() == pytest.approx(summary["coef_error"][tag]["mean"][i], rel=1e-6)
    long = frame.melt(
        id_vars=["tag", "step", "point", "seed", "data.fraction"],
        value_vars=["loss", "grad_norm"],
        var_name="metric",
    ).dropna()
    assert len(long) == 2 * len(training)


def test_training_runs_write_a_learning_curve(logged_run):
    workdir, out, _ = logged_run
    png = workdir / runner.metrics.LEARNING_CURVE
    assert png.read_bytes()[:8] == PNG and png.stat().st_size > 10_000
    manifest = json.loads((workdir / "manifest.json").read_text())
    assert runner.metrics.LEARNING_CURVE in manifest["paths"]
    assert out.splitlines()[-1].startswith("results in ")


def test_progress_mode(monkeypatch):
    monkeypatch.delenv("PYTEST_CURRENT_TEST", raising=False)

    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    cfg = config()
    for out_tty, err_tty, mode in (
        (True, True, "bar"),
        (False, True, "lines"),
        (False, False, "lines"),
        (True, False, "lines"),
    ):
        monkeypatch.setattr(sys, "stdout", Stream(out_tty))
        monkeypatch.setattr(sys, "stderr", Stream(err_tty))
        assert progress.progress_mode(None, cfg) == mode
    assert progress.progress_mode(None, config(**{"train.progress": False})) is None
    assert progress.progress_mode(False, cfg) is None


# --- a --set of a key the study does not use ----------------------------------------------------


@pytest.mark.parametrize("name", ["convergence", "quantile", "phase_transition", "walkthrough"])
@pytest.mark.parametrize(
    "override, key",
    [
        ("train.steps=5", "train"),
        ("optimizer.learning_rate=0.1", "optimizer"),
        ("sweep={seed: [0, 1]}", "sweep"),
    ],
)
def test_set_of_a_key_the_study_does_not_use_is_an_error(name, override, key):
    study = _studies.load(name)
    smoke = REPO / "configs" / name / "smoke.yaml"
    with pytest.raises(ConfigError, match=rf"--set {re.escape(override)}: {key}\S*: unknown key"):
        runner.load_study_config(study, smoke, [override])


def test_a_training_study_still_takes_train_keys():
    study = _studies.load("robustness")
    cfg = runner.load_study_config(
        study, REPO / "configs" / "robustness" / "smoke.yaml", ["train.steps=5"]
    )
    assert cfg.train.steps == 5


def test_robustness_prints_its_table_of_errors(logged_run):
    workdir, out, _ = logged_run
    summary = json.loads((workdir / "summary.json").read_text())
    assert "coefficient error |w_hat - w_true| (mean over seeds)" in out
    for i, fraction in enumerate(summary["fractions"]):
        cells = [f"{summary['coef_error'][t]['mean'][i]:.4f}" for t in ("l1", "mse")]
        assert re.search(rf"^\s*{fraction}\s+{cells[0]}\s+{cells[1]}$", out, re.M), out
