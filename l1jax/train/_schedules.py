"""Learning-rate schedules as multipliers of the optimizer's ``learning_rate``.

A config's ``schedule: {name: ..., warmup_steps: W, <keywords>}`` gives the learning rate

    lr(t) = learning_rate * warmup(t) * f(t - W),    warmup(t) = min(1, (t + 1) / W),

with ``f`` one of the registered multipliers below (``t`` counts optimizer updates from 0).
Another module adds one with ``SCHEDULES.register("name")(factory)``; a factory takes its
keywords (and ``total_steps``, the steps after warm-up, if it asks for it) and returns
``f: count -> factor``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp

from l1jax.registry import SCHEDULES, split_spec

__all__ = ["make_schedule", "constant", "inv_sqrt", "inv", "cosine", "step"]

Schedule = Callable[[jax.Array], jax.Array]


@SCHEDULES.register("constant")
def constant() -> Schedule:
    """``f(t) = 1``."""
    return lambda count: jnp.ones((), jnp.float32)


@SCHEDULES.register("inv_sqrt")
def inv_sqrt() -> Schedule:
    """``f(t) = 1 / sqrt(t + 1)``: the classical step size of the subgradient method.

    References:
      Shor, N. Z. (1985). Minimization Methods for Non-Differentiable Functions. Springer.
    """
    return lambda count: jax.lax.rsqrt(jnp.asarray(count, jnp.float32) + 1.0)


@SCHEDULES.register("inv")
def inv() -> Schedule:
    """``f(t) = 1 / (t + 1)``: square-summable but not summable steps."""
    return lambda count: 1.0 / (jnp.asarray(count, jnp.float32) + 1.0)


@SCHEDULES.register("cosine")
def cosine(*, total_steps: int, decay_steps: int | None = None, alpha: float = 0.0) -> Schedule:
    """``f(t) = alpha + (1 - alpha) (1 + cos(pi min(t, T) / T)) / 2`` with ``T = decay_steps``
    (default: the run's steps after warm-up).

    References:
      Loshchilov, I. and Hutter, F. (2017). SGDR: Stochastic gradient descent with warm
      restarts. ICLR.
    """
    horizon = total_steps if decay_steps is None else decay_steps
    if horizon <= 0:
        raise ValueError(f"schedule 'cosine': decay_steps must be positive, got {horizon}")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"schedule 'cosine': alpha must lie in [0, 1], got alpha={alpha}")

    def f(count):
        frac = jnp.minimum(jnp.asarray(count, jnp.float32), horizon) / horizon
        return alpha + (1.0 - alpha) * 0.5 * (1.0 + jnp.cos(jnp.pi * frac))

    return f


@SCHEDULES.register("step")
def step(*, boundaries: Sequence[int], factor: float = 0.1) -> Schedule:
    """``f(t) = factor ** (number of boundaries <= t)``."""
    bounds = sorted(int(b) for b in boundaries)

    def f(count):
        passed = sum((jnp.asarray(count) >= b).astype(jnp.float32) for b in bounds)
        return jnp.asarray(factor, jnp.float32) ** passed

    return f


def make_schedule(
    spec: str | Mapping[str, Any], *, total_steps: int, learning_rate: Any = 1.0
) -> Schedule:
    """``count -> learning_rate * warmup(count) * f(count - warmup_steps)`` from a config spec.

    Args:
      spec: ``{name: ..., warmup_steps: 0, <keywords of the named schedule>}``.
      total_steps: the run's number of updates.
      learning_rate: the base rate (may be a traced value in a sweep).

    Raises:
      UnknownNameError: for an unknown schedule name.
      TypeError | ValueError: for bad keywords.
    """
    name, kwargs = split_spec(spec, "schedule")
    warmup = kwargs.pop("warmup_steps", 0)
    if not isinstance(warmup, int) or isinstance(warmup, bool) or warmup < 0:
        raise ValueError(f"schedule: warmup_steps must be a non-negative int, got {warmup!r}")
    factory = SCHEDULES.get(name)
    provided = {}
    if "total_steps" in inspect.signature(factory).parameters:
        provided["total_steps"] = max(total_steps - warmup, 1)
    base = SCHEDULES.build({"name": name, **kwargs}, **provided)

    def schedule(count):
        count = jnp.asarray(count)
        mult = base(jnp.maximum(count - warmup, 0))
        if warmup:
            ramp = jnp.minimum(1.0, (count.astype(jnp.float32) + 1.0) / warmup)
            mult = mult * ramp
        return learning_rate * mult

    return schedule
