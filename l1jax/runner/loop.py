"""The training driver: a jit-compiled device loop of optax steps, run from the host in chunks
that log, evaluate and checkpoint, resumable bit for bit."""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from l1jax.runner import parallel
from l1jax.runner.checkpoint import CheckpointManager, damaged_checkpoints, find, restore
from l1jax.runner.checks import check_config
from l1jax.runner.config import check_name, fingerprint
from l1jax.runner.errors import ConfigError, NonFiniteLossError, TrainingInterrupted
from l1jax.runner.metrics import MetricsLog, metric_records
from l1jax.runner.program import TRACER_ERRORS, program
from l1jax.runner.progress import ProgressLines, progress_mode
from l1jax.runner.sweeps import Grid
from l1jax.runner.task import Task, TrainResult, TrainState

__all__ = ["train"]


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
      cfg: a config with the :class:`~l1jax.runner.RunConfig` sections.
      workdir: where ``checkpoints/<tag>/`` and ``metrics.jsonl`` go; None keeps nothing.
      tag: names this training inside a workdir that holds several (e.g. one per loss).
      mesh: the device mesh; default :func:`l1jax.runner.parallel.make_mesh` of
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

    Examples:
      >>> import pathlib, tempfile
      >>> import jax.numpy as jnp
      >>> from l1jax import losses, runner
      >>> from l1jax.models import Linear
      >>> def init(cfg, key):  # y = 2 x on 16 points
      ...     x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      ...     return runner.Problem(params=Linear(1, key=key), data={"x": x, "y": 2 * x[:, 0]})
      >>> task = runner.Task(init=init, loss=lambda cfg, m, b, c, k: losses.l1(m(b["x"]), b["y"]))
      >>> cfg = runner.RunConfig(
      ...     optimizer={"name": "sgd", "learning_rate": 0.5},
      ...     train=runner.TrainConfig(steps=4, progress=False),
      ... )
      >>> result = runner.train(task, cfg)  # no workdir: nothing is kept
      >>> int(result.state.step), round(float(result.params.weight[0]), 4)
      (4, 1.0667)
      >>> with tempfile.TemporaryDirectory() as workdir:
      ...     first = runner.train(task, cfg, workdir=workdir)
      ...     again = runner.train(task, cfg, workdir=workdir)  # resumes: nothing left to do
      ...     saved = sorted(p.name for p in pathlib.Path(workdir, "checkpoints", "main").iterdir())
      >>> first.resumed_from, again.resumed_from, saved
      (None, 4, ['step_000000004.eqx', 'step_000000004.json'])
      >>> bool(jnp.array_equal(again.params.weight, result.params.weight))
      True
    """
    check_name(tag, "tag", allow_empty=True)
    grid = check_config(cfg)
    tc = cfg.train
    mesh = mesh or parallel.make_mesh(cfg.parallel.num_devices)
    prog = program(task, cfg, mesh, grid)
    hp = {} if grid is None else {k: jnp.asarray(v) for k, v in grid.values.items()}
    workdir = None if workdir is None else Path(workdir)
    log = MetricsLog(None if workdir is None else workdir / "metrics.jsonl")
    config_sha = run_identity(cfg, task)

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
            newest = damaged[-1]
            left = f"the newest good one is step {last.step}" if last else "no good one is left"
            raise ConfigError(
                f"the checkpoint {newest.with_suffix('')}.* is damaged (its data does not match "
                f"its sidecar); {left}: delete its two files to resume from an older one, or pass "
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
    except TRACER_ERRORS as e:
        raise _sweep_error(grid, e) from e
    except ConfigError:
        raise
    except Exception as e:
        if grid is not None and isinstance(e, TypeError) and "Trace" in str(e):
            raise _sweep_error(grid, e) from e
        raise _build_error(e, tag) from e

    resumed_from = initialized_from = None
    saved_step = None
    if last is None and tc.init_from is not None:
        state, initialized_from = _warm_start(tc.init_from, state, mesh, tc.steps)
    # Where the training began, recorded in each of its checkpoints (resumes keep it).
    origin = initialized_from or (last.metadata.get("initialized_from") if last else None)
    if last is not None:
        assert manager is not None  # last is its checkpoint
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
        log.truncate(tag, int(parallel.to_host(state.step).reshape(-1)[0]))

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
                **({"initialized_from": origin} if origin else {}),
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
    mode = progress_mode(progress, cfg)
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
        lines = ProgressLines(tag, step, total, tc.progress_every)
    prefix = {"tag": tag} if tag else {}
    try:
        while step < total:
            n = next_stop(step) - step
            t0 = time.perf_counter()
            traces = prog.chunk_traces
            try:
                new_state, bufs, done, ok = prog.run_chunk(state, problem, hp, n)
            except TRACER_ERRORS as e:
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
                bad_step = step + done
                raise _nonfinite_error(
                    bad_step, bufs, done - 1, grid, saved_step, manager, log, tag
                )
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
    assert prog.loop is not None and prog.sweep_mode is not None  # set by resolve_modes
    return TrainResult(
        state=state,
        problem=problem,
        evals=evals,
        grid=grid,
        steps_per_second=n_run / t_run if t_run > 0 else 0.0,
        resumed_from=resumed_from,
        initialized_from=initialized_from,
        loop=prog.loop,
        sweep_mode=prog.sweep_mode,
    )


def run_identity(cfg: Any, task: Task) -> str:
    """What a checkpoint must have been written by for a run to resume from it: the hash of the
    config's resume-relevant keys (:func:`l1jax.runner.config.identity`) and the task's
    ``args``."""
    return fingerprint(cfg, resume_only=True, task=dict(task.args))


def _warm_start(init: Any, state: TrainState, mesh: Mesh, total: int) -> tuple[TrainState, str]:
    """``state`` with what ``train.init_from`` names: the whole saved state, or its
    parameters only (a fresh optimizer, step 0)."""
    try:
        ckpt = find(init.path, tag=init.tag, step=init.step)
    except LookupError as e:
        raise ConfigError(str(e), key="train.init_from") from None
    try:
        restored = restore(ckpt, state)
    except Exception as e:
        raise ConfigError(
            f"cannot start from {ckpt.path} ({type(e).__name__}: {_first_line(e)}): its arrays "
            f"do not fit this run's model, optimizer or sweep",
            key="train.init_from",
        ) from e
    if init.params_only:
        ema = None if state.ema is None else restored.params
        restored = dataclasses.replace(state, params=restored.params, ema=ema)
    else:
        step = int(np.max(np.asarray(restored.step)))
        if step >= total:
            raise ConfigError(
                f"{ckpt.path.with_suffix('.json')} is at step {step}, and train.steps is {total}: "
                f"nothing would be left to train (params_only: true starts again from step 0)",
                key="train.init_from",
            )
    return parallel.put_replicated(restored, mesh), str(ckpt.path.with_suffix(".json"))


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
