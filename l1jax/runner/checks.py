"""Checks of the runner's config sections before any work: each bad value is one
:class:`~l1jax.runner.ConfigError` naming its key."""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from l1jax.runner.config import check_name
from l1jax.runner.errors import ConfigError
from l1jax.runner.optimizer import make_optimizer, make_schedule
from l1jax.runner.registry import UnknownNameError
from l1jax.runner.sweeps import Grid, bind, make_grid

__all__ = ["check_config", "check_seed", "check_distributed", "LOOP_MODES", "SWEEP_MODES"]

LOOP_MODES = ("auto", "device", "host")
SWEEP_MODES = ("auto", "vmap", "unroll")


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
    if tc.init_from is not None:
        init = tc.init_from
        if not str(init.path).strip():
            raise ConfigError(
                key="train.init_from.path", expected="a run's workdir or checkpoint", given="''"
            )
        if init.tag is not None:
            check_name(init.tag, "train.init_from.tag")
        if init.step is not None and init.step < 0:
            raise ConfigError(
                key="train.init_from.step", expected="null or an int >= 0", given=repr(init.step)
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
    bits = 64 if jax.config.read("jax_enable_x64") else 32
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
    without a sweep, and for a :class:`~l1jax.runner.StudyConfig`, which has no training).

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
