"""Best-iterate tracking and iterate averaging, as wrappers around any optax transformation.

The subgradient method does not decrease ``f`` monotonically; its guarantees are about the best
iterate seen and about averages of the iterates. These wrappers keep both in the optimizer state
so a study can read them back with :func:`get_best_params`, :func:`get_best_value` and
:func:`get_averaged_params`, also from inside an :func:`optax.chain` or a nested wrapper.

Which iterate: at update ``k`` the wrappers see the params ``x_k`` the gradient was taken at,
before the update is applied. After ``T`` updates they therefore cover ``x_0, ..., x_{T-1}``;
the params ``x_T`` returned by the last update have not been evaluated yet.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import jax
import jax.numpy as jnp
import optax

from l1jax._tree import PyTree
from l1jax.optim import _utils

__all__ = [
    "TrackBestState",
    "track_best",
    "IterateAveragingState",
    "iterate_averaging",
    "get_best_params",
    "get_best_value",
    "get_averaged_params",
]


class TrackBestState(NamedTuple):
    """State of :func:`track_best`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> state = optim.track_best(optim.subgradient_method(0.1)).init(jnp.zeros(2))
      >>> print(int(state.count), float(state.best_value))  # no value seen yet
      0 inf
    """

    # optax's field name for the update count; it shadows tuple.count, which mypy flags.
    count: jax.Array  # type: ignore[assignment]  # number of updates done so far, k
    best_params: PyTree  # x_j with the lowest value passed so far; the init params before any
    best_value: jax.Array  # f(x_j) as passed in `value=`; +inf before the first update
    best_count: jax.Array  # j, the update at which best_params was passed; -1 before the first
    inner_state: optax.OptState  # state of the wrapped transformation


def track_best(inner: optax.GradientTransformation) -> optax.GradientTransformationExtraArgs:
    """Wraps ``inner`` and keeps the params with the lowest loss seen, ``f_best = min_j f(x_j)``.

    The loss must be passed to ``update`` as ``value=``, and it must be the loss *at the params
    passed to the same call*: at update ``k``, ``params = x_k`` and ``value = f(x_k)``, which is
    what ``value, grads = jax.value_and_grad(f)(params)`` gives. After ``T`` updates,
    ``best_params`` is the best of ``x_0, ..., x_{T-1}`` (the last params ``x_T`` are not yet
    evaluated) and ``best_value`` its loss. A NaN value never becomes the best. ``value`` is also
    forwarded to ``inner``, so ``track_best(polyak_subgradient(f_star))`` works as is. The updates
    of ``inner`` pass through unchanged.

    Args:
      inner: the optimizer whose iterates are tracked.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` whose ``update(grads, state, params,
      *, value, **extra_args)`` needs ``params`` and ``value``; its state is a
      :class:`TrackBestState`.

    Raises:
      ValueError: at update time if ``params`` or ``value`` is missing, or ``value`` is not a
        scalar.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from l1jax import optim
      >>> f = lambda w: jnp.abs(w - 1.0).sum()
      >>> tx = optim.track_best(optim.subgradient_method(0.3))  # a constant step overshoots
      >>> w = jnp.zeros(1)
      >>> state = tx.init(w)
      >>> for _ in range(10):
      ...     updates, state = tx.update(jax.grad(f)(w), state, w, value=f(w))
      ...     w = optax.apply_updates(w, updates)
      >>> best = optim.get_best_params(state)
      >>> print(round(float(optim.get_best_value(state)), 4), round(float(f(best)), 4))
      0.1 0.1
    """
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return TrackBestState(
            count=jnp.zeros([], jnp.int32),
            best_params=params,
            best_value=jnp.full([], jnp.inf, _utils.float_dtype(params)),
            best_count=jnp.full([], -1, jnp.int32),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, *, value=None, **extra_args):
        params = _utils.require_params(params, fn="track_best")
        value = _utils.require_scalar_value(value, fn="track_best")
        updates, inner_state = inner.update(
            updates, state.inner_state, params, value=value, **extra_args
        )
        value = value.astype(state.best_value.dtype)
        better = value < state.best_value
        new_state = TrackBestState(
            count=optax.safe_increment(state.count),
            best_params=optax.tree.where(better, params, state.best_params),
            best_value=jnp.where(better, value, state.best_value),
            best_count=jnp.where(better, state.count, state.best_count),
            inner_state=inner_state,
        )
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


class IterateAveragingState(NamedTuple):
    """State of :func:`iterate_averaging`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> state = optim.iterate_averaging(optim.subgradient_method(0.1)).init(jnp.ones(2))
      >>> print(int(state.count), float(state.weight_sum))
      0 0.0
    """

    # optax's field name for the update count; it shadows tuple.count, which mypy flags.
    count: jax.Array  # type: ignore[assignment]  # number of updates done so far, k
    averaged_params: PyTree  # sum_{j<k} w_j x_j / sum_{j<k} w_j; the init params while the sum is 0
    weight_sum: jax.Array  # sum_{j<k} w_j
    inner_state: optax.OptState  # state of the wrapped transformation


def iterate_averaging(
    inner: optax.GradientTransformation,
    *,
    weights: Literal["uniform", "step"] | optax.Schedule = "uniform",
) -> optax.GradientTransformationExtraArgs:
    """Wraps ``inner`` and keeps the weighted average ``x_bar = sum_j w_j x_j / sum_j w_j``.

    At update ``k`` the params ``x_k`` (before the update) enter the average, so after ``T``
    updates it covers ``x_0, ..., x_{T-1}``. For the subgradient method with steps ``a_j``, the
    step-weighted average obeys the same bound as the best iterate,
    ``f(x_bar) - f* <= (R^2 + G^2 sum a_j^2) / (2 sum a_j)`` (by convexity), and needs no loss
    values. The average is updated in place, ``x_bar += w_k / (W_k + w_k) (x_k - x_bar)``.

    Args:
      inner: the optimizer whose iterates are averaged.
      weights: ``"uniform"`` (``w_j = 1``); ``"step"``, the scalar step of the inner update read
        off as ``w_j = -<u_j, g_j> / ||g_j||^2`` (exact for methods with ``u_j = -a_j g_j``, such
        as :func:`subgradient_method` and :func:`polyak_subgradient`; 0 when ``g_j = 0``); or an
        optax schedule ``j -> w_j``, e.g. the step schedule itself.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` whose ``update`` needs ``params``; extra
      arguments are forwarded to ``inner``. The updates of ``inner`` pass through unchanged. Its
      state is an :class:`IterateAveragingState`.

    Raises:
      ValueError: if ``weights`` is an unknown string; at update time if ``params`` is missing.

    References:
      - Nesterov, Y. (2004). Introductory Lectures on Convex Optimization, sec. 3.2.3. Kluwer.

      Polyak, B. T. and Juditsky, A. B. (1992). Acceleration of stochastic approximation by
      averaging. SIAM J. Control Optim. 30(4).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from l1jax import optim
      >>> f = lambda w: jnp.abs(w - 1.0).sum()
      >>> tx = optim.iterate_averaging(optim.subgradient_method(0.3))
      >>> w = jnp.zeros(1)
      >>> state = tx.init(w)
      >>> for _ in range(4):  # averages the params before each update: 0, 0.3, 0.6, 0.9
      ...     updates, state = tx.update(jax.grad(f)(w), state, w)
      ...     w = optax.apply_updates(w, updates)
      >>> print([round(float(v), 4) for v in optim.get_averaged_params(state)])
      [0.45]
    """
    if isinstance(weights, str):
        if weights not in ("uniform", "step"):
            raise ValueError(
                "iterate_averaging: weights must be 'uniform', 'step' or a schedule, "
                f"got weights={weights!r}."
            )
    else:
        _utils.check_callable(
            weights, name="weights", fn="iterate_averaging", expected="schedule count -> weight"
        )
    inner = optax.with_extra_args_support(inner)

    def init_fn(params):
        return IterateAveragingState(
            count=jnp.zeros([], jnp.int32),
            averaged_params=params,
            weight_sum=jnp.zeros([], _utils.float_dtype(params)),
            inner_state=inner.init(params),
        )

    def update_fn(updates, state, params=None, **extra_args):
        params = _utils.require_params(params, fn="iterate_averaging")
        grads = updates
        updates, inner_state = inner.update(grads, state.inner_state, params, **extra_args)
        dtype = state.weight_sum.dtype
        if weights == "uniform":
            w = jnp.ones([], dtype)
        elif weights == "step":
            w = _utils.safe_divide(
                -optax.tree.vdot(updates, grads).astype(dtype),
                optax.tree.norm(grads, squared=True).astype(dtype),
            )
        else:
            w = jnp.asarray(weights(state.count), dtype)
        weight_sum = state.weight_sum + w
        frac = _utils.safe_divide(w, weight_sum)
        averaged = jax.tree_util.tree_map(
            lambda avg, x: avg + jnp.asarray(frac, avg.dtype) * (x - avg),
            state.averaged_params,
            params,
        )
        new_state = IterateAveragingState(
            count=optax.safe_increment(state.count),
            averaged_params=averaged,
            weight_sum=weight_sum,
            inner_state=inner_state,
        )
        return updates, new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _get_field(state: optax.OptState, field: str, *, fn: str, wrapper: str):
    sentinel = object()
    found = optax.tree.get(state, field, default=sentinel)
    if found is sentinel:
        raise ValueError(
            f"{fn}: state has no {field!r} field; build the optimizer with {wrapper}(...)."
        )
    return found


def get_best_params(state: optax.OptState) -> PyTree:
    """The ``best_params`` of the (single) :func:`track_best` state inside ``state``.

    Raises:
      ValueError: if ``state`` holds no :class:`TrackBestState`.
      KeyError: if it holds more than one.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> tx = optim.track_best(optim.subgradient_method(0.1))
      >>> w = jnp.array([1.0])
      >>> state = tx.init(w)
      >>> _, state = tx.update(jnp.array([1.0]), state, w, value=jnp.array(5.0))
      >>> print(optim.get_best_params(state).tolist())  # the params that had value 5
      [1.0]
    """
    return _get_field(state, "best_params", fn="get_best_params", wrapper="track_best")


def get_best_value(state: optax.OptState) -> jax.Array:
    """The ``best_value`` (``+inf`` before any update) of the :func:`track_best` state.

    Raises:
      ValueError: if ``state`` holds no :class:`TrackBestState`.
      KeyError: if it holds more than one.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> tx = optim.track_best(optim.subgradient_method(0.1))
      >>> state = tx.init(jnp.zeros(1))
      >>> for value in (5.0, 2.0, 3.0):
      ...     _, state = tx.update(jnp.ones(1), state, jnp.zeros(1), value=jnp.array(value))
      >>> print(float(optim.get_best_value(state)))
      2.0
    """
    return _get_field(state, "best_value", fn="get_best_value", wrapper="track_best")


def get_averaged_params(state: optax.OptState) -> PyTree:
    """The ``averaged_params`` of the (single) :func:`iterate_averaging` state inside ``state``.

    Raises:
      ValueError: if ``state`` holds no :class:`IterateAveragingState`.
      KeyError: if it holds more than one.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> tx = optim.iterate_averaging(optim.subgradient_method(0.1))
      >>> state = tx.init(jnp.zeros(1))
      >>> for w in (0.0, 1.0):
      ...     _, state = tx.update(jnp.ones(1), state, jnp.array([w]))
      >>> print(optim.get_averaged_params(state).tolist())
      [0.5]
    """
    return _get_field(
        state, "averaged_params", fn="get_averaged_params", wrapper="iterate_averaging"
    )
