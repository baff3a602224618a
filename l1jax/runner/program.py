"""The compiled program of one (task, config, mesh): init, a chunk of steps in a device loop, one
step for the host loop, and evaluation, with the choice of loop and sweep modes and a cache of
programs so that a rerun of the same config reuses the compiled executables."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from l1jax.runner import parallel
from l1jax.runner.config import fingerprint
from l1jax.runner.optimizer import make_optimizer
from l1jax.runner.sweeps import Grid, bind
from l1jax.runner.task import Problem, Task, TrainState

__all__ = ["program", "TRACER_ERRORS"]

PyTree = Any


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


TRACER_ERRORS = (
    jax.errors.ConcretizationTypeError,
    jax.errors.TracerIntegerConversionError,
    jax.errors.TracerBoolConversionError,
    jax.errors.TracerArrayConversionError,
)


def leading_size(tree: PyTree, axis: int) -> int | None:
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
        self._placer: Callable[[PyTree], PyTree] | None = None
        self._opt: tuple[optax.GradientTransformation, Callable[[Any], Any]] | None = None
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

    def _optimizer(self, cfg: Any, hp: Mapping[str, Any]):
        """The optimizer of a point's config: built once per program, except in a sweep, where
        a swept value (a learning rate) is a tracer of the point being traced."""
        if hp:
            return make_optimizer(cfg)
        if self._opt is None:
            self._opt = make_optimizer(cfg)
        return self._opt

    # init ----------------------------------------------------------------------------------

    def _init_one(self, hp):
        cfg = self._member_cfg(hp)
        key = jax.random.key(cfg.seed)
        k_init, k_train = jax.random.split(key)
        problem = self.task.init(cfg, k_init)
        if not isinstance(problem, Problem):
            raise TypeError(f"Task.init must return an l1jax.runner.Problem, got {type(problem)}")
        opt, _ = self._optimizer(cfg, hp)
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
        n = leading_size(problem.data, axis)
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
        n = leading_size(problem.data, axis)
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
        n = leading_size(data, 0)
        idx = jax.random.randint(key, (bs,), 0, n)
        batch = jax.tree.map(lambda x: jnp.take(x, idx, axis=0), data)
        return parallel.constrain_batch(batch, self.mesh)

    def _step_one(self, state: TrainState, problem: Problem, hp):
        cfg = self._member_cfg(hp)
        opt, lr = self._optimizer(cfg, hp)
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
        evaluate = self.task.evaluate
        assert evaluate is not None  # evaluated only for a task that has an evaluate
        cfg = self._member_cfg(hp)
        out = {}
        for prefix, params in (("", state.params), ("ema/", state.ema)):
            if params is None:
                continue
            for name, value in dict(evaluate(cfg, params, problem.data, problem.consts)).items():
                out[f"{prefix}{name}"] = jnp.asarray(value)
        return out

    def _evaluate(self, state, problem, hp):
        return self._vmap(self._evaluate_one)(state, problem, hp)


_PROGRAMS: dict[tuple, _Program] = {}
_MAX_PROGRAMS = 32


def program(task: Task, cfg: Any, mesh: Mesh, grid: Grid | None) -> _Program:
    # Keyed by the config's fingerprint: re-running the same config (resume, a test) reuses the
    # compiled executables instead of tracing and compiling again.
    key = (task, fingerprint(cfg), mesh)
    prog = _PROGRAMS.get(key)
    if prog is None:
        if len(_PROGRAMS) >= _MAX_PROGRAMS:
            _PROGRAMS.pop(next(iter(_PROGRAMS)))
        prog = _PROGRAMS[key] = _Program(task, cfg, mesh, grid)
    return prog
