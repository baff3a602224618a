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
    """

    init: Callable[..., Problem]
    loss: Callable[..., Any]
    evaluate: Callable[..., Mapping[str, Any]] | None = None
    args: Mapping[str, Any] = dataclasses.field(default_factory=dict)


class TrainState(eqx.Module):
    """Everything a checkpoint holds: enough to continue bitwise-identically."""

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
