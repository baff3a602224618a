"""What a study hands the runner: a :class:`Task` (three pure functions of the config) and what
comes back, a :class:`TrainResult`."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import equinox as eqx
import jax
import numpy as np

from l1jax.runner.sweeps import Grid

__all__ = ["Problem", "Task", "TrainState", "TrainResult"]

PyTree = Any


class Problem(NamedTuple):
    """What :attr:`Task.init` returns for one config.

    Attributes:
      params: the initial model (an ``eqx.Module`` or any pytree); its inexact arrays are trained.
      data: the training examples: a pytree whose array leaves share a leading example axis. It
        is sharded over the mesh's ``batch`` axis, and each step's batch is drawn from it.
      consts: anything else the loss or evaluation needs (ground truth, a validation set);
        replicated on every device.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import runner
      >>> from l1jax.models import Linear
      >>> x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      >>> problem = runner.Problem(
      ...     params=Linear(1, key=jax.random.key(0)),
      ...     data={"x": x, "y": 2 * x[:, 0]},  # 16 examples: split over the devices
      ...     consts={"slope": jnp.array(2.0)},  # replicated
      ... )
      >>> problem.data["x"].shape, float(problem.consts["slope"])
      ((16, 1), 2.0)
    """

    params: PyTree
    data: PyTree = None
    consts: PyTree = None


@dataclasses.dataclass(frozen=True, eq=False)
class Task:
    """A training problem as three pure functions of the config.

    Every function receives the config of one run (inside a sweep: with the swept values bound
    in as traced scalars, see :mod:`l1jax.runner.sweeps`), so a task reads its swept
    hyperparameters from ``cfg``. What a study chooses outside the config (the loss it is
    training, in a study that trains several) is closed over and named in ``args``. Tasks
    compare by identity: build each once (at module level, or in a cached factory) so that
    repeated runs reuse the compiled program.

    Attributes:
      init: ``(cfg, key) -> Problem``: the initial parameters, the data and constants.
      loss: ``(cfg, params, batch, consts, key) -> loss`` or ``(loss, {name: scalar})``: the
        scalar to minimise on one batch (a mean over the batch, so that data parallelism is
        exact), with optional extra metrics to log.
      evaluate: optional ``(cfg, params, data, consts) -> {name: scalar}``, run every
        ``train.eval_every`` steps and at the end (also on the EMA parameters, as ``ema/<name>``).
      args: what the functions were built with besides the config, as JSON-serialisable data
        (``{"loss": {"name": "huber", "delta": 0.5}}``): stored with every checkpoint, and a
        resume requires the same (a checkpoint of another loss is refused like one of another
        config).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses, runner
      >>> from l1jax.models import Linear
      >>> def init(cfg, key):  # y = 2 x on 16 points; the slope to recover is a constant
      ...     x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      ...     data = {"x": x, "y": 2 * x[:, 0]}
      ...     return runner.Problem(params=Linear(1, key=key), data=data, consts=jnp.array(2.0))
      >>> def loss(cfg, model, batch, consts, key):  # a mean over the batch, and a metric
      ...     return losses.l1(model(batch["x"]), batch["y"]), {"bias": model.bias}
      >>> def evaluate(cfg, model, data, consts):
      ...     return {"slope_error": jnp.abs(model.weight[0] - consts)}
      >>> task = runner.Task(init=init, loss=loss, evaluate=evaluate, args={"loss": "l1"})
      >>> cfg = runner.RunConfig(
      ...     optimizer={"name": "sgd", "learning_rate": 1.0},
      ...     train=runner.TrainConfig(steps=3, progress=False),
      ... )
      >>> result = runner.train(task, cfg)
      >>> round(float(result.evals["slope_error"]), 4)  # 2 - 3 x 0.5333
      0.4
    """

    init: Callable[..., Problem]
    loss: Callable[..., Any]
    evaluate: Callable[..., Mapping[str, Any]] | None = None
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class TrainState(eqx.Module):
    """Everything a checkpoint holds: enough to continue bitwise-identically.

    Attributes:
      params: the trained parameters.
      opt_state: the optimizer's state.
      ema: the parameters' moving average (``train.ema_decay``), or None.
      step: the number of updates applied so far (int32).
      key: the raw data (``jax.random.key_data``, uint32) of the training's PRNG key.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses, runner
      >>> from l1jax.models import Linear
      >>> def init(cfg, key):  # y = 2 x on 16 points
      ...     x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      ...     return runner.Problem(params=Linear(1, key=key), data={"x": x, "y": 2 * x[:, 0]})
      >>> task = runner.Task(init=init, loss=lambda cfg, m, b, c, k: losses.l1(m(b["x"]), b["y"]))
      >>> cfg = runner.RunConfig(train=runner.TrainConfig(steps=3, ema_decay=0.9, progress=False))
      >>> state = runner.train(task, cfg).state
      >>> int(state.step), state.key.dtype, state.ema is None
      (3, dtype('uint32'), False)
    """

    params: PyTree
    opt_state: PyTree
    ema: PyTree  # None without train.ema_decay
    step: jax.Array  # int32: updates applied so far
    key: jax.Array  # uint32 raw PRNG key data (jax.random.key_data), for serialisation


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns.

    Attributes:
      state: the final :class:`TrainState` (leading grid axis on every array in a sweep).
      problem: the task's :class:`Problem` without ``params`` (its data and constants).
      evals: the final evaluation as NumPy arrays (shape ``(len(grid),)`` in a sweep).
      grid: the sweep's :class:`~l1jax.runner.sweeps.Grid`, or None.
      steps_per_second: training throughput over this call, compilation excluded (0 if no
        step ran after the first compiled call).
      resumed_from: the step of the run's own checkpoint this call resumed from, or None.
      loop: how the steps ran ("device" or "host"; ``train.loop`` with "auto" decided).
      sweep_mode: how a sweep's points ran ("vmap" or "unroll"; ``train.sweep_mode`` decided).
      initialized_from: the checkpoint a warm start (``train.init_from``) began from, or None.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses, runner
      >>> from l1jax.models import Linear
      >>> def init(cfg, key):  # y = 2 x on 16 points
      ...     x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      ...     return runner.Problem(params=Linear(1, key=key), data={"x": x, "y": 2 * x[:, 0]})
      >>> def evaluate(cfg, model, data, consts):
      ...     return {"weight": model.weight[0]}
      >>> loss = lambda cfg, m, b, c, k: losses.l1(m(b["x"]), b["y"])
      >>> task = runner.Task(init=init, loss=loss, evaluate=evaluate)
      >>> cfg = runner.RunConfig(
      ...     optimizer={"name": "sgd", "learning_rate": 0.1},
      ...     train=runner.TrainConfig(steps=2, progress=False),
      ...     sweep={"optimizer.learning_rate": [0.1, 0.5]},  # two trainings at once
      ... )
      >>> result = runner.train(task, cfg)
      >>> result.grid.points
      ({'optimizer.learning_rate': 0.1}, {'optimizer.learning_rate': 0.5})
      >>> result.evals["weight"].round(4)  # one per grid point
      array([0.1067, 0.5333], dtype=float32)
      >>> result.params.weight.shape, result.loop, result.sweep_mode, result.resumed_from
      ((2, 1), 'device', 'vmap', None)
    """

    state: TrainState
    problem: Problem
    evals: dict[str, np.ndarray]
    grid: Grid | None
    steps_per_second: float
    resumed_from: int | None
    loop: str = "device"
    sweep_mode: str = "vmap"
    # The checkpoint file a warm start (train.init_from) began from, or None.
    initialized_from: str | None = None

    @property
    def params(self) -> PyTree:
        return self.state.params
