"""The subgradient method with a step schedule, and with Polyak's step when ``f*`` is known.

Both are complete optimizers in the optax sense (the returned updates are added to the params),
so ``optax.apply_updates(params, updates)`` performs ``x_{k+1} = x_k - a_k g_k``.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from l1jax._checks import check_range
from l1jax.optim import _utils

__all__ = [
    "SubgradientState",
    "subgradient_method",
    "PolyakSubgradientState",
    "polyak_subgradient",
]


class SubgradientState(NamedTuple):
    """State of :func:`subgradient_method`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> tx = optim.subgradient_method(0.5)
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.ones(2), state, jnp.zeros(2))
      >>> print(int(state.count), float(state.step))  # updates taken, the last step size
      1 0.5
    """

    # The number of updates done so far, k; the next step is schedule(k). optax's field name
    # for the update count shadows tuple.count, which mypy flags.
    count: jax.Array  # type: ignore[assignment]
    step: jax.Array  # step a_{k-1} of the last update (0 before the first), for logging


def subgradient_method(step: ArrayLike | optax.Schedule) -> optax.GradientTransformationExtraArgs:
    """The subgradient method ``x_{k+1} = x_k - a_k g_k`` with ``g_k`` in ``df(x_k)``.

    The method is not a descent method: ``f(x_k)`` may go up, so read the best iterate or an
    average (:func:`track_best`, :func:`iterate_averaging`), not the last one. For convex ``f``
    with ``||g_k|| <= G`` and ``||x_0 - x*|| <= R``, after ``T`` steps

        ``f_best - f* <= (R^2 + G^2 sum_{k<T} a_k^2) / (2 sum_{k<T} a_k)``,

    and the same bound holds for the ``a_k``-weighted average of ``x_0, ..., x_{T-1}``. Hence:

    * constant ``a_k = c``: the bound tends to the plateau ``G^2 c / 2``, not to zero;
    * ``a_k = c / sqrt(k + 1)`` (:func:`inverse_sqrt_schedule`): ``O(log T / sqrt T)``, i.e.
      ``O(1 / sqrt T)`` up to the log; the constant ``a_k = R / (G sqrt T)`` for a known
      horizon ``T`` gives exactly ``R G / sqrt T``;
    * ``a_k = c / (k + 1)`` (:func:`inverse_time_schedule`): converges, ``O(1 / log T)``.

    Args:
      step: a step ``c > 0`` or an optax schedule ``k -> a_k`` (for instance
        :func:`inverse_sqrt_schedule`).

    Returns:
      An :class:`optax.GradientTransformationExtraArgs`; ``params`` and extra arguments of
      ``update`` are accepted and ignored, so it chains with transformations that need them.

    Raises:
      ValueError: if a concrete constant ``step`` is not positive and finite.

    References:
      - Shor, N. Z. (1985). Minimization Methods for Non-Differentiable Functions. Springer.

      Boyd, S., Xiao, L. and Mutapcic, A. (2003). Subgradient methods. Stanford EE392o notes,
      sec. 3.2.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from l1jax import losses, optim
      >>> f = lambda w: losses.l1(w, jnp.array([1.0, -2.0]), reduction="sum")
      >>> tx = optim.subgradient_method(optim.inverse_sqrt_schedule(0.5))
      >>> w = jnp.zeros(2)
      >>> state = tx.init(w)
      >>> for _ in range(200):
      ...     updates, state = tx.update(jax.grad(f)(w), state, w)
      ...     w = optax.apply_updates(w, updates)
      >>> print(round(float(f(w)), 1))  # the steps shrink as 0.5 / sqrt(t + 1)
      0.0
    """
    schedule = _utils.as_schedule(step, name="step", fn="subgradient_method")

    def init_fn(params):
        return SubgradientState(
            count=jnp.zeros([], jnp.int32), step=jnp.zeros([], _utils.float_dtype(params))
        )

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        a = jnp.asarray(schedule(state.count), state.step.dtype)
        new_state = SubgradientState(count=optax.safe_increment(state.count), step=a)
        return _utils.scale_tree(-a, updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class PolyakSubgradientState(NamedTuple):
    """State of :func:`polyak_subgradient`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> tx = optim.polyak_subgradient(f_star=0.0)
      >>> state = tx.init(jnp.zeros(2))
      >>> _, state = tx.update(jnp.ones(2), state, jnp.zeros(2), value=jnp.array(3.0))
      >>> print(int(state.count), float(state.step))  # (f - f*) / ||g||^2 = 3 / 2
      1 1.5
    """

    # optax's field name for the update count; it shadows tuple.count, which mypy flags.
    count: jax.Array  # type: ignore[assignment]  # number of updates done so far
    step: jax.Array  # Polyak step a_{k-1} of the last update (0 before the first)


def polyak_subgradient(
    f_star: ArrayLike, *, max_step: ArrayLike | None = None
) -> optax.GradientTransformationExtraArgs:
    """The subgradient method with Polyak's step ``a_k = (f(x_k) - f*)_+ / ||g_k||^2``.

    ``x_{k+1} = x_k - a_k g_k``, with ``a_k`` capped at ``max_step`` when given. A zero
    subgradient (``x_k`` is a minimizer) gives ``a_k = 0`` and no NaN. With the exact ``f*`` of a
    convex ``f`` with ``||g_k|| <= G``, every step brings ``x_k`` closer to the solution set and
    ``f_best - f* <= G R / sqrt(T)``; on sharp problems (``f - f* >= mu dist(x, X*)``, as for
    polyhedral ``f`` such as least absolute deviations) convergence is linear.

    The calling convention is that of :func:`optax.polyak_sgd`: ``update`` takes the loss at the
    current params as ``value=``, with ``f_star`` playing ``f_min`` and ``max_step`` playing
    ``max_learning_rate``. The gap is clipped at zero (optax's ``variant="sps+"``), so an
    overestimated ``f*`` stops the iterate instead of sending it uphill.

    Args:
      f_star: the optimal value ``f*`` (or a lower bound for it; an underestimate makes the
        steps too long and the iterate oscillates around the solution).
      max_step: optional cap ``> 0`` on ``a_k``.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` whose ``update(grads, state, params=None,
      *, value)`` needs ``value = f(params)``.

    Raises:
      ValueError: if a concrete ``max_step`` is not positive and finite; at update time if
        ``value`` is missing or not a scalar.

    References:
      - Polyak, B. T. (1987). Introduction to Optimization, sec. 5.3. Optimization Software.

      Loizou, N., Vaswani, S., Laradji, I. and Lacoste-Julien, S. (2021). Stochastic Polyak
      step-size for SGD. AISTATS.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from l1jax import losses, optim
      >>> f = lambda w: losses.l1(w, jnp.array([1.0, -2.0]), reduction="sum")
      >>> tx = optim.polyak_subgradient(f_star=0.0)  # the optimal value is known: 0
      >>> w = jnp.zeros(2)
      >>> state = tx.init(w)
      >>> for _ in range(5):
      ...     updates, state = tx.update(jax.grad(f)(w), state, w, value=f(w))
      ...     w = optax.apply_updates(w, updates)
      >>> print([round(float(v), 4) for v in w])
      [1.0, -2.0]
    """
    check_range("f_star", f_star, fn="polyak_subgradient")
    if max_step is not None:
        _utils.check_positive_scalar(max_step, name="max_step", fn="polyak_subgradient")

    def init_fn(params):
        return PolyakSubgradientState(
            count=jnp.zeros([], jnp.int32), step=jnp.zeros([], _utils.float_dtype(params))
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        del params, extra_args
        value = _utils.require_scalar_value(value, fn="polyak_subgradient")
        dtype = state.step.dtype
        gap = jnp.maximum(value.astype(dtype) - jnp.asarray(f_star, dtype), 0)
        a = _utils.safe_divide(gap, optax.tree.norm(updates, squared=True).astype(dtype))
        if max_step is not None:
            a = jnp.minimum(a, jnp.asarray(max_step, dtype))
        new_state = PolyakSubgradientState(count=optax.safe_increment(state.count), step=a)
        return _utils.scale_tree(-a, updates), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
