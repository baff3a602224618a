"""Step-size schedules of the classical subgradient method, as optax schedules.

A schedule maps the step counter ``t = 0, 1, 2, ...`` to a step size ``a_t``. The constant step
is :func:`optax.constant_schedule`; the two decaying ones below are the textbook choices whose
sums diverge, which is what the subgradient method needs to converge.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from l1jax._checks import check_range

__all__ = ["inverse_sqrt_schedule", "inverse_time_schedule"]


def inverse_sqrt_schedule(init_value: ArrayLike) -> optax.Schedule:
    """``a_t = c / sqrt(t + 1)``: the step of the ``O(1 / sqrt T)`` subgradient method.

    With this step the subgradient bound ``(R^2 + G^2 sum a_t^2) / (2 sum a_t)`` decays as
    ``O(log T / sqrt T)``: ``sum a_t^2`` grows like ``c^2 log T`` and ``sum a_t`` like
    ``2 c sqrt T``. A constant step ``R / (G sqrt T)`` tuned to a known horizon ``T`` removes the
    log factor.

    Args:
      init_value: ``c > 0``, the step at ``t = 0``.

    Returns:
      An :data:`optax.Schedule` ``count -> jax.Array``.

    Raises:
      ValueError: if a concrete ``init_value`` is not positive and finite.

    References:
      - Boyd, S., Xiao, L. and Mutapcic, A. (2003). Subgradient methods. Stanford EE392o notes,
      - sec. 2.1.

    Examples:
      >>> from l1jax import optim
      >>> schedule = optim.inverse_sqrt_schedule(1.0)  # 1 / sqrt(t + 1)
      >>> print([round(float(schedule(t)), 4) for t in (0, 3, 99)])
      [1.0, 0.5, 0.1]
    """
    check_range("init_value", init_value, low=0.0, low_open=True, fn="inverse_sqrt_schedule")

    def schedule(count: ArrayLike) -> jax.Array:
        return jnp.divide(init_value, jnp.sqrt(jnp.asarray(count) + 1.0))

    return schedule


def inverse_time_schedule(init_value: ArrayLike) -> optax.Schedule:
    """``a_t = c / (t + 1)``: square-summable but not summable.

    The subgradient bound ``(R^2 + G^2 sum a_t^2) / (2 sum a_t)`` then decays as
    ``O(1 / log T)``: convergent, but slower than ``c / sqrt(t + 1)``.

    Args:
      init_value: ``c > 0``, the step at ``t = 0``.

    Returns:
      An :data:`optax.Schedule` ``count -> jax.Array``.

    Raises:
      ValueError: if a concrete ``init_value`` is not positive and finite.

    References:
      - Boyd, S., Xiao, L. and Mutapcic, A. (2003). Subgradient methods. Stanford EE392o notes,
      - sec. 2.1.

    Examples:
      >>> from l1jax import optim
      >>> schedule = optim.inverse_time_schedule(1.0)  # 1 / (t + 1)
      >>> print([round(float(schedule(t)), 4) for t in (0, 1, 9)])
      [1.0, 0.5, 0.1]
    """
    check_range("init_value", init_value, low=0.0, low_open=True, fn="inverse_time_schedule")

    def schedule(count: ArrayLike) -> jax.Array:
        return jnp.divide(init_value, jnp.asarray(count) + 1.0)

    return schedule
