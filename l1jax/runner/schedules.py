"""The learning-rate schedules a config names, built on optax's and :mod:`l1jax.optim`'s.

A config's ``schedule: {name: ..., warmup_steps: W, <keywords>}`` gives the step size of update
``t`` (counted from 0) as

    lr(t) = learning_rate * (t + 1) / W                 for t < W,
    lr(t) = s(t - W)                                     afterwards,

with ``s`` the named schedule started at ``learning_rate``. Every entry is a factory
``(learning_rate, *, <keywords>) -> optax.ScalarOrSchedule`` of absolute step sizes (a factory
that takes ``total_steps`` receives the run's steps after warm-up):

* ``constant``: ``learning_rate`` itself, a number (so optimizers that need a fixed step, ISTA
  and FISTA, take it);
* ``inv_sqrt``: :func:`l1jax.optim.inverse_sqrt_schedule`, ``c / sqrt(t + 1)``;
* ``inv``: :func:`l1jax.optim.inverse_time_schedule`, ``c / (t + 1)``;
* ``cosine``: :func:`optax.cosine_decay_schedule` over ``decay_steps`` (default: all steps);
* ``step``: :func:`optax.piecewise_constant_schedule`, times ``factor`` at each boundary.

:func:`l1jax.runner.optimizer.make_schedule` applies the warm-up; a study adds its own with
``l1jax.runner.registry.SCHEDULES.register("name", factory)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax.numpy as jnp
import optax

from l1jax import optim

__all__ = ["constant", "inv_sqrt", "inv", "cosine", "step", "with_warmup"]


def constant(learning_rate: Any) -> optax.ScalarOrSchedule:
    """``lr(t) = learning_rate``: the number itself."""
    return learning_rate


def inv_sqrt(learning_rate: Any) -> optax.Schedule:
    """``lr(t) = learning_rate / sqrt(t + 1)``: the classical step of the subgradient method."""
    return optim.inverse_sqrt_schedule(learning_rate)


def inv(learning_rate: Any) -> optax.Schedule:
    """``lr(t) = learning_rate / (t + 1)``: square-summable but not summable steps."""
    return optim.inverse_time_schedule(learning_rate)


def cosine(
    learning_rate: Any, *, total_steps: int, decay_steps: int | None = None, alpha: float = 0.0
) -> optax.Schedule:
    """:func:`optax.cosine_decay_schedule` from ``learning_rate`` to ``alpha * learning_rate``
    over ``decay_steps`` (default: the run's steps after warm-up), constant afterwards.

    References:
      - Loshchilov, I. and Hutter, F. (2017). SGDR: Stochastic gradient descent with warm
      - restarts. ICLR.
    """
    horizon = total_steps if decay_steps is None else decay_steps
    if isinstance(horizon, bool) or not isinstance(horizon, int) or horizon <= 0:
        raise ValueError(f"schedule 'cosine': decay_steps must be a positive int, got {horizon!r}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"schedule 'cosine': alpha must lie in [0, 1], got alpha={alpha}")
    return optax.cosine_decay_schedule(learning_rate, horizon, alpha=alpha)


def step(learning_rate: Any, *, boundaries: Sequence[int], factor: float = 0.1) -> optax.Schedule:
    """:func:`optax.piecewise_constant_schedule`: ``learning_rate * factor ** k`` after the
    ``k``-th boundary (a step ``t >= boundary`` has passed it)."""
    bounds = sorted(int(b) for b in boundaries)
    if any(b < 0 for b in bounds) or len(set(bounds)) != len(bounds):
        raise ValueError(
            f"schedule 'step': boundaries must be distinct non-negative ints, got {list(bounds)}"
        )
    # optax scales once `count >= boundary`; a boundary at 0 scales from the first step.
    return optax.piecewise_constant_schedule(learning_rate, {b: factor for b in bounds})


def with_warmup(
    schedule: optax.ScalarOrSchedule, learning_rate: Any, warmup_steps: int
) -> optax.ScalarOrSchedule:
    """``learning_rate * (t + 1) / W`` for ``t < W``, then ``schedule(t - W)``."""
    if not warmup_steps:
        return schedule
    after = schedule if callable(schedule) else optax.constant_schedule(schedule)

    def warmed(count):
        count = jnp.asarray(count)
        ramp = learning_rate * (count.astype(jnp.float32) + 1.0) / warmup_steps
        return jnp.where(count < warmup_steps, ramp, after(jnp.maximum(count - warmup_steps, 0)))

    return warmed
