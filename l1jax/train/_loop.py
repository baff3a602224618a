"""The training loop: a jit-compiled device loop of optax steps, driven from the host in chunks
that log, evaluate and checkpoint."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from l1jax import parallel
from l1jax.checkpoint import CheckpointManager, damaged_checkpoints
from l1jax.config import ConfigError, check_name, identity, to_yaml
from l1jax.registry import OPTIMIZERS, UnknownNameError, split_spec
from l1jax.train._schedules import make_schedule
from l1jax.train._sweep import Grid, bind, make_grid

__all__ = [
    "Problem",
    "Task",
    "TrainState",
    "TrainResult",
    "NonFiniteLossError",
    "TrainingInterrupted",
    "MetricsLog",
    "metric_records",
    "make_optimizer",
    "check_config",
    "train",
]

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
    in as traced scalars, see :mod:`l1jax.train._sweep`), so a task must read its
    hyperparameters from ``cfg`` and never close over them. Tasks compare by identity: build one
    at module level so repeated runs reuse the compiled program.

    Attributes:
      init: ``(cfg, key) -> Problem``: the initial parameters, the data and constants.
      loss: ``(cfg, params, batch, consts, key) -> loss`` or ``(loss, {name: scalar})``: the
        scalar to minimise on one batch (a mean over the batch, so that data parallelism is
        exact), with optional extra metrics to log.
      evaluate: optional ``(cfg, params, data, consts) -> {name: scalar}``, run every
        ``train.eval_every`` steps and at the end (also on the EMA parameters, as ``ema/<name>``).
    """

    init: Callable[..., Problem]
    loss: Callable[..., Any]
    evaluate: Callable[..., Mapping[str, Any]] | None = None


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
      grid: the sweep's :class:`~l1jax.train.Grid`, or None.
      steps_per_second: training throughput over this call, compilation excluded (0 if no
        step ran after the first compiled call).
      resumed_from: the checkpoint step this call started from, or None.
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

    @property
    def params(self) -> PyTree:
        return self.state.params


class NonFiniteLossError(FloatingPointError):
    """The loss (or gradient norm) became NaN or infinite; nothing after it was saved."""

    def __init__(self, message: str, *, step: int, checkpoint_step: int | None):
        super().__init__(message)
        self.step, self.checkpoint_step = step, checkpoint_step


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C during training; a checkpoint of the last completed step was saved."""

    def __init__(self, message: str, *, step: int, checkpoint_dir: Path | None):
        super().__init__(message)
        self.step, self.checkpoint_dir = step, checkpoint_dir


# --- optimizer -------------------------------------------------------------------------------


def make_optimizer(cfg: Any) -> tuple[optax.GradientTransformation, Callable]:
    """The optax optimizer of ``cfg.optimizer`` with ``cfg.schedule`` and ``train.clip_norm``.

    Returns:
      ``(optimizer, learning_rate)`` where ``learning_rate(count)`` is the scheduled rate.

    Raises:
      UnknownNameError, TypeError, ValueError: for a bad optimizer or schedule spec.
    """
    name, kwargs = split_spec(cfg.optimizer, "optimizer")
    base_lr = kwargs.pop("learning_rate", None)
    if base_lr is None:
        raise TypeError(f"optimizer {name!r} needs a learning_rate")
    if isinstance(base_lr, (bool, str)) or (
        isinstance(base_lr, (int, float)) and not (math.isfinite(base_lr) and base_lr > 0)
    ):
        raise ConfigError(
            key="optimizer.learning_rate",
            expected="a number > 0",
            given=f"{base_lr!r} ({type(base_lr).__name__})",
        )
    lr = make_schedule(cfg.schedule, total_steps=cfg.train.steps, learning_rate=base_lr)
    sched_name, sched_kwargs = split_spec(cfg.schedule, "schedule")
    # A constant rate goes in as a number: some optimizers (ISTA, FISTA) take no schedule.
    constant = sched_name == "constant" and not sched_kwargs.get("warmup_steps", 0)
    opt = OPTIMIZERS.build({"name": name, **kwargs, "learning_rate": base_lr if constant else lr})
    if cfg.train.clip_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(cfg.train.clip_norm), opt)
    return opt, lr


def _check_sections(cfg: Any) -> None:
    tc = cfg.train
    for key, low in (
        ("steps", 0),
        ("steps_per_call", 1),
        ("log_every", 1),
        ("eval_every", 0),
        ("checkpoint_every", 0),
        ("keep_checkpoints", 1),
    ):
        value = getattr(tc, key)
        if value < low:
            raise ConfigError(key=f"train.{key}", expected=f"an int >= {low}", given=repr(value))
    if tc.batch_size is not None and tc.batch_size < 1:
        raise ConfigError(
            key="train.batch_size", expected="null or an int >= 1", given=repr(tc.batch_size)
        )
    if not (isinstance(tc.progress_every, (int, float)) and tc.progress_every >= 0):
        raise ConfigError(
            key="train.progress_every",
            expected="a number of seconds >= 0",
            given=repr(tc.progress_every),
        )
    if tc.clip_norm is not None and not tc.clip_norm > 0:
        raise ConfigError(key="train.clip_norm", expected="null or > 0", given=repr(tc.clip_norm))
    for key, allowed in (("loop", LOOP_MODES), ("sweep_mode", SWEEP_MODES)):
        value = getattr(tc, key)
        if value not in allowed:
            raise ConfigError(
                key=f"train.{key}", expected=f"one of {list(allowed)}", given=repr(value)
            )
    if tc.ema_decay is not None and not 0 <= tc.ema_decay < 1:
        raise ConfigError(
            key="train.ema_decay", expected="null or in [0, 1)", given=repr(tc.ema_decay)
        )
    for section in ("schedule", "optimizer"):
        try:
            if section == "optimizer":
                make_optimizer(cfg)
            else:
                make_schedule(cfg.schedule, total_steps=tc.steps)
        except ConfigError:
            raise
        except UnknownNameError as e:
            raise ConfigError(str(e), key=f"{section}.name") from None
        except (TypeError, ValueError) as e:
            raise ConfigError(str(e), key=section) from None


def check_seed(seed: Any, key: str = "seed") -> None:
    """A seed is an int that :func:`jax.random.key` takes without folding it onto another."""
    bits = 64 if jax.config.jax_enable_x64 else 32
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not low <= seed <= high:
        raise ConfigError(
            f"seeds are int{bits} (outside that range they would alias others)",
            key=key,
            expected=f"an int in [{low}, {high}]",
            given=repr(seed),
        )


def check_distributed(cfg: Any) -> None:
    """The ``distributed`` section names a whole cluster, or nothing (auto-detection)."""
    d = cfg.distributed
    given = {
        "coordinator_address": d.coordinator_address,
        "num_processes": d.num_processes,
        "process_id": d.process_id,
    }
    if not d.enabled:
        return
    if any(v is not None for v in given.values()) and any(v is None for v in given.values()):
        missing = [k for k, v in given.items() if v is None]
        raise ConfigError(
            "set all three of coordinator_address, num_processes and process_id, or none "
            "(auto-detected clusters)",
            key=f"distributed.{missing[0]}",
            expected="a value",
            given="null",
        )
    if d.num_processes is not None and d.num_processes < 1:
        raise ConfigError(
            key="distributed.num_processes", expected="an int >= 1", given=repr(d.num_processes)
        )
    if d.process_id is not None and not 0 <= d.process_id < d.num_processes:
        raise ConfigError(
            key="distributed.process_id",
            expected=f"an int in [0, {d.num_processes})",
            given=repr(d.process_id),
        )


def check_config(cfg: Any) -> Grid | None:
    """Checks the runner's sections of ``cfg`` before any work; returns the sweep grid (None
    without a sweep, and for a :class:`~l1jax.config.StudyConfig`, which has no training).

    Every value of a swept key is checked too, one at a time in the config.

    Raises:
      ConfigError: naming the key, for a bad optimizer, schedule, sweep, seed or train value.
    """
    check_seed(cfg.seed)
    check_distributed(cfg)
    if not hasattr(cfg, "train"):  # a StudyConfig: the study does not train through the runner
        return None
    _check_sections(cfg)
    grid = make_grid(cfg)
    if grid is not None:
        for key, values in zip(grid.keys, grid.axes, strict=True):
            for value in values:
                if key == "seed":
                    check_seed(value, "sweep.seed")
                    continue
                try:
                    _check_sections(bind(cfg, {key: value}))
                except ConfigError as e:
                    raise ConfigError(
                        f"the swept value {value!r} of {key}: {e.detail or 'invalid'}",
                        key=f"sweep.{key}",
                        expected=e.expected,
                        given=e.given,
                    ) from None
    return grid


# --- the compiled program --------------------------------------------------------------------


LOOP_MODES = ("auto", "device", "host")
SWEEP_MODES = ("auto", "vmap", "unroll")


def _primitive_names(closed_jaxpr) -> set[str]:
    """Names of every primitive in a jaxpr, sub-jaxprs (jit, scan, cond, custom rules) too."""
    names: set[str] = set()
    seen: set[int] = set()

    def walk(jaxpr) -> None:
        if id(jaxpr) in seen:
            return
        seen.add(id(jaxpr))
        for eqn in jaxpr.eqns:
            names.add(eqn.primitive.name)
            for value in eqn.params.values():
                for sub in value if isinstance(value, (tuple, list)) else (value,):
                    if hasattr(sub, "eqns"):
                        walk(sub)
                    elif hasattr(getattr(sub, "jaxpr", None), "eqns"):
                        walk(sub.jaxpr)

    walk(closed_jaxpr.jaxpr)
    return names


def _unrolled(fn: Callable, size: int) -> Callable:
    """``filter_vmap(fn)`` computed point by point: slices every array argument along axis 0,
    calls ``fn`` on each slice in turn (inside the same trace) and stacks the array outputs."""

    def run(*args):
        outs = []
        for i in range(size):
            sliced = jax.tree.map(lambda x: x[i] if eqx.is_array(x) else x, args)  # noqa: B023
            outs.append(eqx.partition(fn(*sliced), eqx.is_array))
        stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *[dyn for dyn, _ in outs])
        return eqx.combine(stacked, outs[0][1])

    return run


_TRACER_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerArrayConversionError,
)


def _leading_size(tree: PyTree, axis: int) -> int | None:
    sizes = {x.shape[axis] for x in jax.tree.leaves(tree) if hasattr(x, "shape") and x.ndim > axis}
    if len(sizes) > 1:
        raise ValueError(
            f"Problem.data leaves must share their leading (example) axis, got "
            f"sizes {sorted(sizes)}"
        )
    return sizes.pop() if sizes else None


def _split_loss(out: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
    if isinstance(out, tuple):
        loss, aux = out
        aux = dict(aux)
    else:
        loss, aux = out, {}
    loss = jnp.asarray(loss)
    if loss.shape != ():
        raise ValueError(f"Task.loss must return a scalar loss, got shape {loss.shape}")
    reserved = {"loss", "grad_norm", "learning_rate"} & set(aux)
    if reserved:
        raise ValueError(f"Task.loss metrics may not be named {sorted(reserved)}")
    return loss, aux


class _Program:
    """The jitted init / chunk / evaluate functions of one (task, config, mesh)."""

    def __init__(self, task: Task, cfg: Any, mesh: Mesh, grid: Grid | None):
        self.task, self.cfg, self.mesh, self.grid = task, cfg, mesh, grid
        self.chunk_traces = 0
        self.traced = False
        self._placer = None
        # train.loop / train.sweep_mode with "auto" decided (by `resolve_modes`).
        self.loop: str | None = None
        self.sweep_mode: str | None = None
        self.init = eqx.filter_jit(self._init)
        self.chunk = eqx.filter_jit(self._chunk)
        self.step = eqx.filter_jit(self._host_step)
        self.evaluate = eqx.filter_jit(self._evaluate)

    def _vmap(self, fn: Callable) -> Callable:
        if self.grid is None:
            return fn
        if self.sweep_mode == "unroll":
            return _unrolled(fn, len(self.grid))
        return eqx.filter_vmap(fn)

    def resolve_modes(self, state: TrainState, problem: Problem, hp) -> None:
        """Decides ``train.loop`` and ``train.sweep_mode`` where they are "auto".

        "auto" picks the step-by-step loop and the unrolled sweep on a CPU backend when the
        training step contains a convolution (found by tracing one step), the compiled loop
        and ``vmap`` otherwise.
        """
        if self.loop is not None:
            return
        tc = self.cfg.train
        loop, sweep = tc.loop, tc.sweep_mode
        if "auto" in (loop, sweep):
            conv = False
            if self.mesh.devices.flat[0].platform == "cpu":
                step = self._step_one if self.grid is None else eqx.filter_vmap(self._step_one)
                jaxpr = eqx.filter_make_jaxpr(step)(state, problem, hp)[0]
                conv = "conv_general_dilated" in _primitive_names(jaxpr)
            loop = ("host" if conv else "device") if loop == "auto" else loop
            sweep = ("unroll" if conv else "vmap") if sweep == "auto" else sweep
        self.loop, self.sweep_mode = loop, sweep

    def check_traces(self, state: TrainState, problem: Problem, hp) -> None:
        """Traces one step and the evaluation abstractly (no compilation), so that a mistake in
        the task (a wrong keyword, a bad shape) surfaces before any step runs."""
        if self.traced:
            return
        eqx.filter_eval_shape(self._vmap(self._step_one), state, problem, hp)
        if self.task.evaluate is not None:
            eqx.filter_eval_shape(self._evaluate, state, problem, hp)
        self.traced = True

    def _member_cfg(self, hp: Mapping[str, Any]) -> Any:
        return bind(self.cfg, hp) if hp else self.cfg

    # init ----------------------------------------------------------------------------------

    def _init_one(self, hp):
        cfg = self._member_cfg(hp)
        key = jax.random.key(cfg.seed)
        k_init, k_train = jax.random.split(key)
        problem = self.task.init(cfg, k_init)
        if not isinstance(problem, Problem):
            raise TypeError(f"Task.init must return a l1jax.train.Problem, got {type(problem)}")
        opt, _ = make_optimizer(cfg)
        params = problem.params
        opt_state = opt.init(eqx.filter(params, eqx.is_inexact_array))
        ema = params if cfg.train.ema_decay is not None else None
        state = TrainState(
            params=params,
            opt_state=opt_state,
            ema=ema,
            step=jnp.zeros((), jnp.int32),
            key=jax.random.key_data(k_train),
        )
        return state, problem._replace(params=None)

    def _init(self, hp):
        # Always vmapped (cheap, and the same values as one point at a time).
        init = eqx.filter_vmap(self._init_one) if self.grid is not None else self._init_one
        state, problem = init(hp)
        axis = 0 if self.grid is None else 1
        n = _leading_size(problem.data, axis)
        if n is not None and self.cfg.train.batch_size is None:
            parallel.check_divisible(n, self.mesh, "the number of training examples")
        if self.cfg.train.batch_size is not None:
            parallel.check_divisible(self.cfg.train.batch_size, self.mesh, "train.batch_size")
        # Built replicated and split afterwards by `_place`: constraining the data's sharding
        # here makes XLA partition its generation (sorts, RNG), which doubles compile time.
        return parallel.constrain_replicated((state, problem), self.mesh)

    def _place(self, problem: Problem) -> Problem:
        """Splits the data's example axis over the mesh (if it divides evenly)."""
        axis = 0 if self.grid is None else 1
        n = _leading_size(problem.data, axis)
        if n is None or n % self.mesh.shape[parallel.BATCH_AXIS]:
            return problem  # sampled batches are still sharded; the data stays whole
        if self._placer is None:
            shardings = jax.tree.map(
                lambda x: (
                    parallel.batch_sharding(self.mesh, x.ndim, axis=axis)
                    if x.ndim > axis
                    else parallel.replicated(self.mesh)
                ),
                problem.data,
            )
            self._placer = jax.jit(lambda data: data, out_shardings=shardings)
        return problem._replace(data=self._placer(problem.data))

    # one step ------------------------------------------------------------------------------

    def _batch(self, data, key):
        bs = self.cfg.train.batch_size
        if bs is None or data is None:
            return data
        n = _leading_size(data, 0)
        idx = jax.random.randint(key, (bs,), 0, n)
        batch = jax.tree.map(lambda x: jnp.take(x, idx, axis=0), data)
        return parallel.constrain_batch(batch, self.mesh)

    def _step_one(self, state: TrainState, problem: Problem, hp):
        cfg = self._member_cfg(hp)
        opt, lr = make_optimizer(cfg)
        key = jax.random.wrap_key_data(state.key)
        key, k_batch, k_loss = jax.random.split(key, 3)
        batch = self._batch(problem.data, k_batch)

        def loss_fn(params):
            return _split_loss(self.task.loss(cfg, params, batch, problem.consts, k_loss))

        (loss, aux), grads = eqx.filter_value_and_grad(loss_fn, has_aux=True)(state.params)
        updates, opt_state = opt.update(
            grads, state.opt_state, eqx.filter(state.params, eqx.is_inexact_array)
        )
        params = eqx.apply_updates(state.params, updates)
        ema = state.ema
        if ema is not None:
            d = cfg.train.ema_decay
            ema = jax.tree.map(
                lambda e, p: d * e + (1 - d) * p if eqx.is_inexact_array(p) else p, ema, params
            )
        metrics = {
            "loss": loss,
            "grad_norm": optax.tree.norm(grads),
            "learning_rate": jnp.asarray(lr(state.step), jnp.float32),
            **aux,
        }
        new = TrainState(params, opt_state, ema, state.step + 1, jax.random.key_data(key))
        return new, metrics

    def _chunk(self, state: TrainState, problem: Problem, hp, n: jax.Array):
        """Runs up to ``n`` steps (``n <= train.steps_per_call``, traced: one compile for all).

        Stops early after a step whose loss or gradient norm is not finite.

        Returns:
          ``(state, metrics, steps_run, ok)`` with ``metrics[name][i]`` the value at step ``i``.
        """
        self.chunk_traces += 1
        step = self._vmap(self._step_one)
        k = self.cfg.train.steps_per_call
        dyn, static = eqx.partition(state, eqx.is_array)

        def run(dyn_state):
            return step(eqx.combine(dyn_state, static), problem, hp)

        _, shapes = eqx.filter_eval_shape(run, dyn)
        bufs = jax.tree.map(lambda s: jnp.zeros((k, *s.shape), s.dtype), shapes)

        def cond(carry):
            i, _, _, ok = carry
            return (i < n) & ok

        def body(carry):
            i, dyn_state, bufs, _ = carry
            new, metrics = run(dyn_state)
            ok = jnp.all(jnp.isfinite(metrics["loss"])) & jnp.all(
                jnp.isfinite(metrics["grad_norm"])
            )
            bufs = jax.tree.map(
                lambda b, v: jax.lax.dynamic_update_index_in_dim(b, v, i, 0), bufs, metrics
            )
            new_dyn, _ = eqx.partition(new, eqx.is_array)
            return i + 1, new_dyn, bufs, ok

        init = (jnp.zeros((), jnp.int32), dyn, bufs, jnp.ones((), bool))
        i, dyn, bufs, ok = jax.lax.while_loop(cond, body, init)
        dyn = parallel.constrain_replicated(dyn, self.mesh)
        return eqx.combine(dyn, static), bufs, i, ok

    def _host_step(self, state: TrainState, problem: Problem, hp):
        """One step for the "host" loop: ``(state, metrics, ok)``."""
        self.chunk_traces += 1
        new, metrics = self._vmap(self._step_one)(state, problem, hp)
        ok = jnp.all(jnp.isfinite(metrics["loss"])) & jnp.all(jnp.isfinite(metrics["grad_norm"]))
        dyn, static = eqx.partition(new, eqx.is_array)
        dyn = parallel.constrain_replicated(dyn, self.mesh)
        return eqx.combine(dyn, static), metrics, ok

    def run_chunk(self, state: TrainState, problem: Problem, hp, n: int):
        """Up to ``n`` steps, as :meth:`_chunk` returns them, in the resolved ``loop`` mode."""
        if self.loop != "host":
            return self.chunk(state, problem, hp, jnp.int32(n))
        records, ok = [], True
        for _ in range(n):
            new, metrics, good = self.step(state, problem, hp)
            records.append(jax.tree.map(parallel.to_host, metrics))
            if not bool(parallel.to_host(good)):
                ok = False
                break
            state = new
        bufs = jax.tree.map(lambda *xs: np.stack(xs), *records)
        return state, bufs, len(records), ok

    # evaluation ----------------------------------------------------------------------------

    def _evaluate_one(self, state: TrainState, problem: Problem, hp):
        cfg = self._member_cfg(hp)
        out = {}
        for prefix, params in (("", state.params), ("ema/", state.ema)):
            if params is None:
                continue
            for name, value in dict(
                self.task.evaluate(cfg, params, problem.data, problem.consts)
            ).items():
                out[f"{prefix}{name}"] = jnp.asarray(value)
        return out

    def _evaluate(self, state, problem, hp):
        return self._vmap(self._evaluate_one)(state, problem, hp)


_PROGRAMS: dict[tuple, _Program] = {}
_MAX_PROGRAMS = 32


def _program(task: Task, cfg: Any, mesh: Mesh, grid: Grid | None) -> _Program:
    # Keyed by the config's text: re-running the same config (resume, a test) reuses the
    # compiled executables instead of tracing and compiling again.
    key = (task, to_yaml(cfg), mesh)
    prog = _PROGRAMS.get(key)
    if prog is None:
        if len(_PROGRAMS) >= _MAX_PROGRAMS:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        prog = _PROGRAMS[key] = _Program(task, cfg, mesh, grid)
    return prog


# --- metrics ---------------------------------------------------------------------------------


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()] if x.ndim else _jsonable(x.item())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    return x


def metric_records(
    head: Mapping[str, Any], metrics: Mapping[str, Any], grid: Grid | None
) -> list[dict[str, Any]]:
    """The ``metrics.jsonl`` lines of one step: one line, or in a sweep one per grid point.

    A sweep point's line names its coordinates: ``point`` (its index in ``grid.points``) and
    ``coords`` (``{swept key: value}``), then the point's own scalar metrics::

      {"tag": "l1", "step": 50, "point": 3, "coords": {"seed": 0, "data.fraction": 0.2},
       "loss": 0.12, "grad_norm": 0.4, "learning_rate": 0.05, "steps_per_s": 812.0}

    Args:
      head: the fields every line starts with (``tag``, ``step``).
      metrics: ``{name: value}``; in a sweep, per-point values have a leading grid axis and
        anything else (a scalar such as ``steps_per_s``) is repeated on every line.
      grid: the sweep's grid, or None.
    """
    if grid is None:
        return [{**head, **metrics}]
    size = len(grid)
    out = []
    for i, coords in enumerate(grid.points):
        line = {**head, "point": i, "coords": dict(coords)}
        for k, v in metrics.items():
            per_point = np.ndim(v) >= 1 and np.shape(v)[0] == size
            line[k] = np.asarray(v)[i] if per_point else v
        out.append(line)
    return out


class MetricsLog:
    """Appends JSON lines to ``metrics.jsonl``; non-finite numbers are written as null.

    Each line has ``step`` (and ``tag`` when the run trains several things) plus metrics; in a
    sweep there is one line per grid point, naming its ``point`` and ``coords`` (see
    :func:`metric_records`).
    """

    def __init__(self, path: str | Path | None):
        self.path = None if path is None else Path(path)
        self.enabled = self.path is not None and parallel.is_main_process()

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        if not self.enabled or not records:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a") as f:
            for r in records:
                f.write(json.dumps({k: _jsonable(v) for k, v in r.items()}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def truncate(self, tag: str, step: int) -> dict[str, Any]:
        """Drops ``tag``'s lines after ``step`` (they came after the checkpoint we resume).

        Returns:
          ``{"exists", "damaged", "kept"}``: whether the file exists, how many unreadable lines
          were dropped (a torn last line, left by a kill, is not counted) and how many of
          ``tag``'s lines were kept.
        """
        report = {"exists": False, "damaged": 0, "kept": 0}
        if not self.enabled or not self.path.exists():
            return report
        from l1jax.checkpoint import atomic_write

        report["exists"] = True
        text = self.path.read_text(errors="replace")
        lines = text.splitlines()
        kept, dropped = [], False
        for i, line in enumerate(lines):
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError
            except ValueError:
                torn = i == len(lines) - 1 and not text.endswith("\n")
                report["damaged"] += 0 if torn else 1
                dropped = True
                continue
            if rec.get("tag", "") == tag and isinstance(rec.get("step"), int):
                if rec["step"] > step:
                    dropped = True
                    continue
                report["kept"] += 1
            kept.append(line)
        if dropped:
            atomic_write(self.path, "".join(f"{line}\n" for line in kept))
        return report

    def read(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


def _progress_mode(requested: bool | None, cfg: Any) -> str | None:
    """ "bar" (tqdm on stderr) when stdout and stderr are terminals, "lines" (plain lines on
    stdout) otherwise, None for no progress (``train.progress`` off, under pytest, or not
    process 0); ``requested`` True/False forces the bar on or progress off."""
    if requested is not None:
        return "bar" if requested else None
    if (
        not cfg.train.progress
        or "PYTEST_CURRENT_TEST" in os.environ
        or not parallel.is_main_process()
    ):
        return None
    return "bar" if sys.stdout.isatty() and sys.stderr.isatty() else "lines"


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


class _ProgressLines:
    """Plain progress lines on stdout, for logs (``nohup``, ``> log``): one after the first host
    call, then at most every ``train.progress_every`` seconds, and one at the end::

      l1: step 1200/2000 (60%)  loss 0.01234  812.0 steps/s  elapsed 0:00:04  eta 0:00:01
    """

    def __init__(self, tag: str, start: int, total: int, every: float):
        self.name, self.start, self.total, self.every = tag or "train", start, total, every
        self.t0 = time.perf_counter()
        self.last: float | None = None

    def update(self, step: int, loss: float, rate: float) -> None:
        now = time.perf_counter()
        if not (self.last is None or step >= self.total or now - self.last >= self.every):
            return
        self.last = now
        elapsed = now - self.t0
        if not rate > 0:
            done = step - self.start
            rate = done / elapsed if done > 0 and elapsed > 0 else float("nan")
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        pct = 100 * step / self.total if self.total else 100.0
        print(
            f"{self.name}: step {step}/{self.total} ({pct:.0f}%)  loss {loss:.6g}  "
            f"{rate:.1f} steps/s  elapsed {_clock(elapsed)}  eta {_clock(eta)}",
            flush=True,
        )


# --- the loop --------------------------------------------------------------------------------


def train(
    task: Task,
    cfg: Any,
    *,
    workdir: str | Path | None = None,
    tag: str = "",
    mesh: Mesh | None = None,
    progress: bool | None = None,
    hooks: Sequence[Callable[[int, TrainState], None]] = (),
) -> TrainResult:
    """Trains ``task`` as ``cfg`` says, resuming from ``workdir``'s last checkpoint if any.

    One jitted device loop runs up to ``train.steps_per_call`` optax steps per host call (it is
    compiled once: the number of steps is a traced argument). Between calls the host writes the
    per-step metrics, evaluates every ``train.eval_every`` steps, checkpoints every
    ``train.checkpoint_every`` steps and at the end, and runs ``hooks``. Given the same config
    the final parameters are bitwise identical on one machine, including across any number of
    interruptions and resumptions (every step runs the same compiled loop body).

    With ``cfg.sweep``, the grid's points train together in one compiled program: vmapped, or
    one after another (``train.sweep_mode``). ``train.loop`` chooses between a compiled loop of
    steps per host call and one compiled step per Python iteration; both are deterministic,
    and "auto" avoids XLA:CPU's slow paths for convolutions (see :class:`TrainConfig`).

    Args:
      task: the :class:`Task`.
      cfg: a config with the :class:`~l1jax.config.RunConfig` sections.
      workdir: where ``checkpoints/<tag>/`` and ``metrics.jsonl`` go; None keeps nothing.
      tag: names this training inside a workdir that holds several (e.g. one per loss).
      mesh: the device mesh; default :func:`l1jax.parallel.make_mesh` of
        ``parallel.num_devices``.
      progress: True shows a tqdm bar, False nothing; default (None): with
        ``train.progress``, a tqdm bar when stdout and stderr are terminals, else plain lines
        on stdout every ``train.progress_every`` seconds (never under pytest).
      hooks: ``hook(step, state)`` after every host call (after its checkpoint, if any).

    Returns:
      A :class:`TrainResult`.

    Raises:
      ConfigError: a bad runner section, a checkpoint in ``workdir`` from another config, or a
        swept value that cannot be vmapped.
      NonFiniteLossError: the loss or gradient norm became non-finite; the last good
        checkpoint is kept and nothing later is written.
      TrainingInterrupted: Ctrl-C; the last completed step was checkpointed first.
    """
    check_name(tag, "tag", allow_empty=True)
    grid = check_config(cfg)
    tc = cfg.train
    mesh = mesh or parallel.make_mesh(cfg.parallel.num_devices)
    prog = _program(task, cfg, mesh, grid)
    hp = {} if grid is None else {k: jnp.asarray(v) for k, v in grid.values.items()}
    workdir = None if workdir is None else Path(workdir)
    log = MetricsLog(None if workdir is None else workdir / "metrics.jsonl")
    config_sha = hashlib.sha256(
        json.dumps(identity(cfg), sort_keys=True, default=str).encode()
    ).hexdigest()

    manager = last = None
    if workdir is not None:
        ckpt_dir = workdir / "checkpoints" / (tag or "main")
        manager = CheckpointManager(ckpt_dir, keep=tc.keep_checkpoints)
        last = manager.latest()
        damaged = [
            p
            for p in damaged_checkpoints(ckpt_dir)
            if last is None or int(p.stem.split("_")[-1]) > last.step
        ]
        if damaged:
            bad = damaged[-1]
            good = f"the newest good one is step {last.step}" if last else "no good one is left"
            raise ConfigError(
                f"the checkpoint {bad.with_suffix('')}.* is damaged (its data does not match its "
                f"sidecar); {good}: delete its two files to resume from an older one, or pass "
                f"--overwrite"
            )
        if last is not None and last.metadata.get("config_sha256") != config_sha:
            raise ConfigError(
                f"the checkpoint {last.path} was written by a different config; resume "
                f"with the same config, or start in a fresh workdir"
            )

    try:
        state, problem = prog.init(hp)
        problem = prog._place(problem)
        prog.resolve_modes(state, problem, hp)
        prog.check_traces(state, problem, hp)
    except _TRACER_ERRORS as e:
        raise _sweep_error(grid, e) from e
    except ConfigError:
        raise
    except Exception as e:
        if grid is not None and isinstance(e, TypeError) and "Trace" in str(e):
            raise _sweep_error(grid, e) from e
        raise _build_error(e, tag) from e

    resumed_from = None
    saved_step = None
    if last is not None:
        try:
            restored = manager.restore(last, state)
        except Exception as e:
            raise ConfigError(
                f"cannot restore the checkpoint {last.path} ({type(e).__name__}: "
                f"{_first_line(e)}); delete it to resume from an older one, or pass --overwrite"
            ) from e
        state = parallel.put_replicated(restored, mesh)
        resumed_from = saved_step = last.step
        _warn_metrics(log.truncate(tag, last.step), log, tag, last.step)
    else:
        # Lines a killed run logged before this tag's first checkpoint are redone now.
        log.truncate(tag, 0)

    def save(step: int, finished: bool = False) -> None:
        nonlocal saved_step
        if manager is not None and saved_step != step:
            manager.save(
                step,
                state,
                tag=tag,
                total_steps=tc.steps,
                finished=finished,
                config_sha256=config_sha,
                time=time.time(),
            )
            saved_step = step

    step = int(parallel.to_host(state.step).reshape(-1)[0])
    total = tc.steps
    evals: dict[str, np.ndarray] = {}
    evaluated_at = None
    n_run, t_run = 0, 0.0

    def every(interval: int, s: int) -> bool:
        return interval > 0 and s % interval == 0

    def next_stop(s: int) -> int:
        stops = [total, s + tc.steps_per_call]
        for interval in (tc.eval_every, tc.checkpoint_every):
            if interval > 0:
                stops.append((s // interval + 1) * interval)
        return min(stops)

    bar = lines = None
    mode = _progress_mode(progress, cfg)
    if mode == "bar":
        from tqdm.auto import tqdm

        bar = tqdm(
            total=total,
            initial=step,
            desc=tag or "train",
            unit="step",
            dynamic_ncols=True,
            leave=False,
        )
    elif mode == "lines" and step < total:
        lines = _ProgressLines(tag, step, total, tc.progress_every)
    prefix = {"tag": tag} if tag else {}
    try:
        while step < total:
            n = next_stop(step) - step
            t0 = time.perf_counter()
            traces = prog.chunk_traces
            try:
                new_state, bufs, done, ok = prog.run_chunk(state, problem, hp, n)
            except _TRACER_ERRORS as e:
                raise _sweep_error(grid, e) from e
            bufs, done, ok = jax.tree.map(parallel.to_host, (bufs, done, ok))
            dt = time.perf_counter() - t0
            done = int(done)
            good = done if ok else done - 1
            rate = done / dt if dt > 0 else float("nan")
            records = []
            for i in range(good):
                s = step + i + 1
                if every(tc.log_every, s) or s == total:
                    records += metric_records(
                        {**prefix, "step": s},
                        {**{k: v[i] for k, v in bufs.items()}, "steps_per_s": rate},
                        grid,
                    )
            log.write(records)
            if not ok:
                bad = step + done
                raise _nonfinite_error(bad, bufs, done - 1, grid, saved_step, manager, log, tag)
            state = new_state
            step += n
            if prog.chunk_traces == traces:  # leave compilation out of the throughput
                n_run, t_run = n_run + n, t_run + dt
            if bar is not None:
                bar.set_postfix(loss=_summary(bufs["loss"][n - 1]), refresh=False)
                bar.update(n)
            if lines is not None:
                lines.update(
                    step,
                    _summary(bufs["loss"][n - 1]),
                    n_run / t_run if t_run > 0 else float("nan"),
                )
            if task.evaluate is not None and (every(tc.eval_every, step) or step == total):
                evals = jax.tree.map(parallel.to_host, prog.evaluate(state, problem, hp))
                evaluated_at = step
                log.write(
                    metric_records(
                        {**prefix, "step": step}, {f"eval/{k}": v for k, v in evals.items()}, grid
                    )
                )
            if every(tc.checkpoint_every, step) or step == total:
                save(step, finished=step == total)
            for hook in hooks:
                hook(step, state)
    except KeyboardInterrupt:
        save(step)
        where = manager.directory if manager is not None else None
        msg = f"interrupted at step {step} of {total}"
        msg += f"; checkpoint saved in {where}" if where else " (no workdir: nothing saved)"
        raise TrainingInterrupted(msg, step=step, checkpoint_dir=where) from None
    finally:
        if bar is not None:
            bar.close()

    save(step, finished=True)
    if task.evaluate is not None and evaluated_at != step:
        evals = jax.tree.map(parallel.to_host, prog.evaluate(state, problem, hp))
    return TrainResult(
        state=state,
        problem=problem,
        evals=evals,
        grid=grid,
        steps_per_second=n_run / t_run if t_run > 0 else 0.0,
        resumed_from=resumed_from,
        loop=prog.loop,
        sweep_mode=prog.sweep_mode,
    )


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    line = text.splitlines()[0] if text else type(e).__name__
    return line if len(line) <= 300 else line[:297] + "..."


def _build_error(e: Exception, tag: str) -> ConfigError:
    where = f" ({tag})" if tag else ""
    return ConfigError(f"building the run{where} failed: {type(e).__name__}: {_first_line(e)}")


def _warn_metrics(report: dict[str, Any], log: MetricsLog, tag: str, step: int) -> None:
    """Says on stderr when a resumed run's metrics.jsonl lost lines the checkpoint had."""
    if not log.enabled:
        return
    what = f"tag {tag!r}" if tag else "the run"
    if not report["exists"]:
        print(
            f"warning: resuming {what} from step {step} but {log.path} is missing: the metrics "
            f"of steps up to {step} are lost",
            file=sys.stderr,
        )
    elif report["damaged"]:
        print(
            f"warning: {log.path}: dropped {report['damaged']} damaged line(s) while resuming "
            f"{what} from step {step}",
            file=sys.stderr,
        )
    elif step > 0 and not report["kept"]:
        print(
            f"warning: resuming {what} from step {step} but {log.path} has no line of it: "
            f"the metrics of steps up to {step} are lost",
            file=sys.stderr,
        )


def _summary(x: np.ndarray) -> float:
    return float(np.mean(x)) if np.size(x) else float("nan")


def _sweep_error(grid: Grid | None, e: Exception) -> Exception:
    if grid is None:
        return e
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return ConfigError(
        f"a swept value was used as a shape or in Python control flow, which vmap cannot "
        f"batch ({first})",
        key="sweep",
        expected="keys used only as array values",
        given=", ".join(grid.keys),
    )


def _nonfinite_error(bad_step, bufs, i, grid, saved_step, manager, log, tag) -> Exception:
    loss = np.asarray(bufs["loss"][i])
    gnorm = np.asarray(bufs["grad_norm"][i])
    if grid is not None:
        members = np.flatnonzero(~(np.isfinite(loss) & np.isfinite(gnorm)))
        points = ", ".join(str(grid.points[m]) for m in members[:3])
        more = f" and {len(members) - 3} more" if len(members) > 3 else ""
        what = f"loss {loss[members[0]]} at grid point(s) {points}{more}"
    else:
        what = f"loss {float(loss)}, gradient norm {float(gnorm)}"
    where = f" ({tag})" if tag else ""
    if saved_step is not None and manager is not None:
        kept = f"kept the last good checkpoint (step {saved_step}) in {manager.directory}"
    else:
        kept = "no checkpoint had been written yet"
    log.write([{**({"tag": tag} if tag else {}), "step": bad_step, "event": "non_finite_loss"}])
    return NonFiniteLossError(
        f"non-finite {what} at step {bad_step}{where}; stopped without saving this state; {kept}",
        step=bad_step,
        checkpoint_step=saved_step,
    )
