"""The training loop: convergence, determinism, compile-once, resume after a crash or Ctrl-C
(bitwise), NaN handling, EMA, clipping, metrics and sweeps."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from _runner_tasks import B_TRUE, TASK, config

from l1jax.runner import (
    ConfigError,
    NonFiniteLossError,
    TrainingInterrupted,
    checkpoint,
    parallel,
    program,
    progress,
    train,
)


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def assert_bitwise(a, b):
    la, lb = leaves(a), leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb, strict=True):
        assert x.dtype == y.dtype and x.shape == y.shape
        np.testing.assert_array_equal(x, y)


@pytest.fixture(scope="module")
def reference():
    """The uninterrupted base run (no workdir)."""
    return train(TASK, config())


def test_training_converges_to_least_squares(reference):
    x, y = (np.asarray(reference.problem.data[k], np.float64) for k in ("x", "y"))
    a = np.concatenate([x, np.ones((len(x), 1))], axis=1)
    exact = np.linalg.lstsq(a, y, rcond=None)[0]
    got = np.append(np.asarray(reference.params.weight), np.asarray(reference.params.bias))
    # Adam with a cosine decay to 0 over 60 steps lands close to the minimiser.
    np.testing.assert_allclose(got, exact, atol=0.02)
    assert reference.evals["coef_error"] < 0.1
    assert int(reference.state.step) == 60


def test_same_config_gives_bitwise_identical_parameters(reference):
    again = train(TASK, config())
    assert_bitwise(again.state, reference.state)


def test_step_compiles_once_for_all_chunk_lengths(reference, tmp_path):
    # steps=60 with steps_per_call=16 and stops at 20/30/40: chunks of 16, 4, 10, 6, ...
    prog = program.program(TASK, config(), parallel.make_mesh(None), None)
    train(TASK, config(), workdir=tmp_path)
    assert prog.chunk_traces == 1


def test_resume_after_crash_is_bitwise_identical(reference, tmp_path):
    class Crash(Exception):
        pass

    def crash_at_45(step, state):
        if step >= 45:
            raise Crash

    with pytest.raises(Crash):
        train(TASK, config(), workdir=tmp_path, hooks=[crash_at_45])
    # Host calls end at 16, 20, 30, 40, 56, 60: the crash comes after step 56, past the
    # last checkpoint (40).
    assert checkpoint.latest(tmp_path / "checkpoints" / "main").step == 40
    resumed = train(TASK, config(), workdir=tmp_path)
    assert resumed.resumed_from == 40
    assert_bitwise(resumed.state, reference.state)
    steps = [
        r["step"]
        for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().split("\n")[:-1])
        if "loss" in r
    ]
    assert steps == [10, 20, 30, 40, 50, 60]  # lines after the checkpoint were not duplicated


def test_ctrl_c_saves_a_checkpoint_and_resumes_bitwise(reference, tmp_path):
    def interrupt(step, state):
        if step == 56:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted) as info:
        train(TASK, config(), workdir=tmp_path, hooks=[interrupt])
    assert info.value.step == 56
    assert "interrupted at step 56 of 60" in str(info.value)
    assert checkpoint.latest(tmp_path / "checkpoints" / "main").step == 56
    # Bookkeeping keys may change on resume; the result does not (bitwise).
    bookkeeping = {
        "train.steps_per_call": 3,
        "train.checkpoint_every": 0,
        "train.log_every": 1,
        "distributed.process_id": 0,
    }
    resumed = train(TASK, config(**bookkeeping), workdir=tmp_path)
    assert resumed.resumed_from == 56
    assert_bitwise(resumed.state, reference.state)


def test_finished_run_resumes_to_the_same_result(reference, tmp_path):
    train(TASK, config(), workdir=tmp_path)
    done = checkpoint.latest(tmp_path / "checkpoints" / "main")
    assert done.step == 60 and done.metadata["finished"]
    again = train(TASK, config(), workdir=tmp_path)
    assert again.resumed_from == 60
    assert_bitwise(again.state, reference.state)
    assert again.evals["coef_error"] == reference.evals["coef_error"]


def test_checkpoint_from_another_config_is_refused(tmp_path):
    train(TASK, config(), workdir=tmp_path)
    for change in ({"seed": 1}, {"train.steps": 61}, {"optimizer.learning_rate": 0.1}):
        with pytest.raises(ConfigError, match="different config"):
            train(TASK, config(**change), workdir=tmp_path)


def test_non_finite_loss_stops_and_keeps_last_good_checkpoint(reference, tmp_path):
    # The bias starts at 0 and climbs towards 0.75; the loss turns NaN once it passes 0.5.
    cfg = config(nan_above=0.5, **{"optimizer.learning_rate": 0.02})
    with pytest.raises(NonFiniteLossError) as info:
        train(TASK, cfg, workdir=tmp_path)
    err = info.value
    ckpts = checkpoint.all_checkpoints(tmp_path / "checkpoints" / "main")
    assert err.checkpoint_step == ckpts[-1].step
    assert all(c.step < err.step for c in ckpts)
    assert f"at step {err.step}" in str(err) and "kept the last good checkpoint" in str(err)
    assert B_TRUE > 0.5  # the premise: training pushes the bias past the threshold
    saved = checkpoint.restore(ckpts[-1], like=reference.state)  # same structure
    assert 0 < float(saved.params.bias) <= 0.5
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert lines[-1] == {"step": err.step, "event": "non_finite_loss"}
    assert all(r["step"] < err.step for r in lines[:-1])
    assert all(r["bias"] <= 0.5 for r in lines[:-1] if "bias" in r)


def test_ema_and_clipping():
    cfg = config(
        **{
            "optimizer": {"name": "sgd", "learning_rate": 1.0},
            "schedule": {"name": "constant"},
            "train.steps": 3,
            "train.steps_per_call": 1,
            "train.clip_norm": 1e-3,
            "train.ema_decay": 0.5,
            "train.eval_every": 0,
        }
    )
    seen = []
    result = train(TASK, cfg, hooks=[lambda step, state: seen.append(state)])
    p = [np.append(np.zeros(3), 0.0)] + [
        np.append(np.asarray(s.params.weight), np.asarray(s.params.bias)) for s in seen
    ]
    # Gradients at these points are far larger than 1e-3: each SGD step has norm lr * clip.
    for a, b in zip(p[:-1], p[1:], strict=True):
        np.testing.assert_allclose(np.linalg.norm(b - a), 1e-3, rtol=1e-4)
    ema = p[0]
    for q in p[1:]:
        ema = 0.5 * ema + 0.5 * q
    got = np.append(np.asarray(result.state.ema.weight), np.asarray(result.state.ema.bias))
    np.testing.assert_allclose(got, ema, rtol=1e-6, atol=1e-9)
    assert set(result.evals) == {"coef_error", "train_loss", "ema/coef_error", "ema/train_loss"}


def test_metrics_lines(reference, tmp_path):
    train(TASK, config(), workdir=tmp_path)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    train_lines = [r for r in lines if "loss" in r]
    assert [r["step"] for r in train_lines] == [10, 20, 30, 40, 50, 60]
    assert set(train_lines[0]) == {
        "step",
        "loss",
        "grad_norm",
        "learning_rate",
        "bias",
        "steps_per_s",
    }
    # The learning rate of update 10 (count 9) under the cosine schedule over 60 steps.
    assert train_lines[0]["learning_rate"] == pytest.approx(0.1 * (1 + np.cos(np.pi * 9 / 60)))
    evals = [r for r in lines if "eval/coef_error" in r]
    assert [r["step"] for r in evals] == [30, 60]
    assert evals[-1]["eval/coef_error"] == pytest.approx(float(reference.evals["coef_error"]))
    losses = [r["loss"] for r in train_lines]
    assert losses[-1] < losses[0]


def test_progress_is_off_under_pytest():
    assert progress.progress_mode(None, config()) is None


def test_sweep_matches_single_runs(reference):
    cfg = config(sweep={"seed": [1, 0], "optimizer.learning_rate": [0.05, 0.2]})
    result = train(TASK, cfg)
    assert [p for p in result.grid.points] == [
        {"seed": 1, "optimizer.learning_rate": 0.05},
        {"seed": 1, "optimizer.learning_rate": 0.2},
        {"seed": 0, "optimizer.learning_rate": 0.05},
        {"seed": 0, "optimizer.learning_rate": 0.2},
    ]
    assert result.grid.shape == (2, 2)
    assert result.params.weight.shape == (4, 3)
    # The last point is the reference run's config: the vmapped program reproduces it.
    np.testing.assert_allclose(
        result.params.weight[3], reference.params.weight, rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(
        result.evals["coef_error"][3], reference.evals["coef_error"], rtol=1e-4
    )
    # Different seeds draw different data and learning rates give different fits.
    w = np.asarray(result.params.weight)
    assert len({tuple(np.round(row, 6)) for row in w}) == 4
    x = np.asarray(result.problem.data["x"])
    assert not np.allclose(x[0], x[3]) and np.array_equal(x[0], x[1])


@pytest.mark.parametrize(
    "sweep, match",
    [
        ({"loss.name": ["l1", "mse"]}, "strings cannot be vmapped"),
        ({"seeed": [0, 1]}, "unknown key"),
        ({"seed": 3}, "a non-empty list"),
        ({"seed": [0.5]}, "a list of int"),
        ({"n": [16, 32]}, "shape or in Python control flow"),
    ],
)
def test_sweep_errors(sweep, match):
    with pytest.raises(ConfigError, match=match):
        train(TASK, config(sweep=sweep, **{"train.steps": 2}))


@pytest.mark.parametrize(
    "changes, key",
    [
        ({"optimizer": {"name": "adamm", "learning_rate": 0.1}}, "optimizer.name"),
        ({"optimizer": {"name": "adam", "learning_rate": 0.1, "bb1": 0.9}}, "optimizer"),
        ({"schedule": {"name": "cosin"}}, "schedule.name"),
        ({"train.steps_per_call": 0}, "train.steps_per_call"),
        ({"train.ema_decay": 1.0}, "train.ema_decay"),
    ],
)
def test_bad_runner_sections_name_the_key(changes, key):
    with pytest.raises(ConfigError) as info:
        train(TASK, config(**changes))
    assert info.value.key == key


def test_cli_exit_codes(tmp_path, capsys):
    from _runner_tasks import study

    from l1jax import runner

    path = tmp_path / "nan.yaml"
    path.write_text(
        "nan_above: 0.5\noptimizer: {name: adam, learning_rate: 0.02}\nschedule: {name: cosine}\n"
    )
    argv = ["--config", str(path), "--workdir", str(tmp_path / "w")]
    assert runner.main(study(), argv) == runner.EXIT_NONFINITE
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: non-finite loss nan")
    assert "kept the last good checkpoint (step 20)" in err[0]
    assert not (tmp_path / "w" / "summary.json").exists()
    assert runner.main(study(), [*argv, "--overwrite", "--set", "nan_above=null"]) == 0
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert np.isfinite(summary["coef_error"]) and summary["run"]["devices"].startswith("8 x")
