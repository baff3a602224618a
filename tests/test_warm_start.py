"""Warm starts (``train.init_from``): a second phase continues another run's state bit for bit,
``params_only`` takes its parameters with a fresh optimizer, the task's args guard resumes, and
every bad ``init_from`` is one ConfigError before any step."""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from _runner_tasks import TASK, config

from l1jax.runner import ConfigError, InitFrom, Task, checkpoint, train


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def assert_bitwise(a, b):
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)


def warm(**init) -> object:
    return config(**{"train.init_from": InitFrom(**init)})


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A 60-step run that keeps its checkpoints at steps 20, 40 and 60."""
    workdir = tmp_path_factory.mktemp("source")
    result = train(TASK, config(**{"train.keep_checkpoints": 3}), workdir=workdir)
    return workdir, result


def test_continuing_from_a_checkpoint_equals_the_uninterrupted_run(source, tmp_path):
    workdir, full = source
    cont = train(TASK, warm(path=str(workdir), step=20), workdir=tmp_path)
    # Steps 21..60 on the restored state (parameters, Adam moments, step, PRNG key).
    assert_bitwise(cont.state, full.state)
    assert cont.initialized_from.endswith("step_000000020.json") and cont.resumed_from is None
    steps = [
        r["step"] for r in map(json.loads, (tmp_path / "metrics.jsonl").read_text().splitlines())
    ]
    assert steps and min(steps) > 20
    # Its own checkpoints start after the warm start's step.
    assert [c.step for c in checkpoint.all_checkpoints(tmp_path / "checkpoints" / "main")] == [
        40,
        60,
    ]


def test_a_resumed_warm_start_continues_from_its_own_checkpoint(source, tmp_path):
    workdir, full = source
    cfg = warm(path=str(workdir), step=20)

    def stop(step, state):
        if step >= 40:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TASK, cfg, workdir=tmp_path, hooks=[stop])
    again = train(TASK, cfg, workdir=tmp_path)
    assert again.resumed_from == 40 and again.initialized_from is None
    assert_bitwise(again.state, full.state)


def test_params_only_takes_the_parameters_with_a_fresh_optimizer(source, tmp_path):
    workdir, full = source
    # train.steps = 0: nothing is trained, so the result is the warm start itself.
    got = train(
        TASK,
        config(
            **{"train.steps": 0, "train.init_from": InitFrom(path=str(workdir), params_only=True)}
        ),
    )
    assert_bitwise(got.params, full.params)
    assert int(got.state.step) == 0
    fresh = train(TASK, config(**{"train.steps": 0}))
    assert_bitwise(got.state.opt_state, fresh.state.opt_state)


@pytest.mark.parametrize(
    "init, message",
    [
        ({"path": "{src}/nowhere"}, r"train\.init_from: .*nowhere does not exist"),
        ({"path": "{src}", "tag": "l1"}, r"has no tag 'l1'; it has main"),
        ({"path": "{src}", "step": 30}, r"has no checkpoint of step 30; it has steps 20, 40, 60"),
        ({"path": "{src}", "step": 60}, r"is at step 60, and train\.steps is 60"),
        (
            {"path": "{src}/checkpoints/main/step_000000040.json", "step": 20},
            r"is the checkpoint of step 40, not 20",
        ),
    ],
)
def test_bad_init_from_is_one_config_error(source, init, message):
    workdir, _ = source
    init = {k: v.format(src=workdir) if isinstance(v, str) else v for k, v in init.items()}
    with pytest.raises(ConfigError, match=message):
        train(TASK, warm(**init))


def test_a_checkpoint_of_another_shape_is_refused(source):
    workdir, _ = source
    cfg = config(**{"sweep": {"seed": [0, 1]}, "train.init_from": InitFrom(path=str(workdir))})
    with pytest.raises(ConfigError, match=r"do not fit this run's model, optimizer or sweep"):
        train(TASK, cfg)


def test_bad_init_from_values_fail_before_any_work():
    with pytest.raises(ConfigError, match=r"train\.init_from\.step: expected null or an int >= 0"):
        train(TASK, warm(path="x", step=-1))
    with pytest.raises(ConfigError, match=r"train\.init_from\.tag: .*plain name"):
        train(TASK, warm(path="x", tag="../up"))


def test_a_checkpoint_of_another_task_args_is_not_resumed(tmp_path):
    train(TASK, config(**{"train.steps": 20}), workdir=tmp_path)
    other = Task(init=TASK.init, loss=TASK.loss, evaluate=TASK.evaluate, args={"loss": "l1"})
    with pytest.raises(ConfigError, match="written by a different config"):
        train(other, config(**{"train.steps": 20}), workdir=tmp_path)
