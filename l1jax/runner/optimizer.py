"""The optimizer of a config: ``optimizer: {name, learning_rate, ...}`` with ``schedule:`` and
``train.clip_norm``, from the tables of :mod:`l1jax.runner.registry`."""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax.numpy as jnp
import optax

from l1jax.runner import schedules
from l1jax.runner.errors import ConfigError
from l1jax.runner.registry import OPTIMIZERS, SCHEDULES, split_spec

__all__ = ["make_optimizer", "make_schedule", "as_function"]


def make_schedule(
    spec: str | Mapping[str, Any], *, total_steps: int, learning_rate: Any = 1.0
) -> optax.ScalarOrSchedule:
    """The step sizes of a config's ``schedule: {name: ..., warmup_steps: 0, <keywords>}``.

    Args:
      spec: the schedule's spec (see :mod:`l1jax.runner.schedules`).
      total_steps: the run's number of updates.
      learning_rate: the base rate (may be a traced value in a sweep).

    Returns:
      An ``optax.ScalarOrSchedule``: a number for a constant rate without warm-up, else a
      function ``count -> rate``.

    Raises:
      UnknownNameError: for an unknown schedule name.
      TypeError | ValueError: for bad keywords.

    Examples:
      >>> from l1jax import runner
      >>> rate = runner.make_schedule(
      ...     {"name": "cosine", "warmup_steps": 2}, total_steps=6, learning_rate=1.0
      ... )
      >>> [round(float(rate(t)), 3) for t in range(6)]  # a linear ramp, then the cosine
      [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
      >>> runner.make_schedule({"name": "constant"}, total_steps=6, learning_rate=0.1)
      0.1
    """
    name, kwargs = split_spec(spec, "schedule")
    warmup = kwargs.pop("warmup_steps", 0)
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise ValueError(f"schedule: warmup_steps must be a non-negative int, got {warmup!r}")
    factory = SCHEDULES.get(name)
    provided: dict[str, Any] = {"learning_rate": learning_rate}
    if "total_steps" in inspect.signature(factory).parameters:
        provided["total_steps"] = max(total_steps - warmup, 1)
    schedule = SCHEDULES.build({"name": name, **kwargs}, **provided)
    return schedules.with_warmup(schedule, learning_rate, warmup)


def as_function(rate: optax.ScalarOrSchedule) -> Callable[[Any], Any]:
    """``count -> rate`` for a number or a schedule."""
    return rate if callable(rate) else (lambda count: jnp.asarray(rate))


def make_optimizer(cfg: Any) -> tuple[optax.GradientTransformation, Callable]:
    """The optax optimizer of ``cfg.optimizer`` with ``cfg.schedule`` and ``train.clip_norm``.

    Returns:
      ``(optimizer, learning_rate)`` where ``learning_rate(count)`` is the scheduled rate.

    Raises:
      UnknownNameError, TypeError, ValueError: for a bad optimizer or schedule spec.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import runner
      >>> cfg = runner.RunConfig(
      ...     optimizer={"name": "sgd", "learning_rate": 0.1}, schedule={"name": "inv_sqrt"}
      ... )
      >>> opt, learning_rate = runner.make_optimizer(cfg)
      >>> [round(float(learning_rate(t)), 4) for t in range(4)]  # 0.1 / sqrt(t + 1)
      [0.1, 0.0707, 0.0577, 0.05]
      >>> params = {"w": jnp.ones(2)}
      >>> updates, _ = opt.update({"w": jnp.ones(2)}, opt.init(params), params)
      >>> print(updates["w"])  # the first step: -0.1 times the gradient
      [-0.1 -0.1]
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
    opt = OPTIMIZERS.build({"name": name, **kwargs, "learning_rate": lr})
    if cfg.train.clip_norm is not None:
        opt = optax.chain(optax.clip_by_global_norm(cfg.train.clip_norm), opt)
    return opt, as_function(lr)
