"""Proximal gradient (ISTA) and its accelerated form (FISTA) for ``F = f + g``.

``f`` is smooth with an ``L``-Lipschitz gradient, ``g`` is convex with a cheap prox, passed as
``prox(params, step) -> params`` computing ``prox_{step g}`` on the whole pytree, e.g.
``lambda x, t: l1jax.prox.soft_threshold(x, lam * t)`` for ``g = lam ||x||_1``. The grads given
to ``update`` are those of the smooth part ``f`` only.

Optax adds updates to params, so these transformations return ``new_params - params``; they need
``params`` in ``update`` because the prox step is taken from them.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from l1jax import prox as _prox
from l1jax._checks import check_range
from l1jax._tree import PyTree
from l1jax.optim import _utils

__all__ = [
    "ProximalGradientState",
    "ista",
    "ista_l1",
    "FistaState",
    "fista",
    "fista_l1",
    "get_fista_iterate",
]

# A candidate passes the sufficient-decrease test up to this many ulps of |f(y)|: near the
# solution both sides agree to rounding, and an exact test would shrink the step for nothing.
_ROUNDING_SLACK = 16


class ProximalGradientState(NamedTuple):
    """State of :func:`ista`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> state = optim.ista_l1(0.1, lam=1.0).init(jnp.zeros(3))
      >>> print(int(state.count), round(float(state.step), 4))
      0 0.1
    """

    # optax's field name for the update count; it shadows tuple.count, which mypy flags.
    count: jax.Array  # type: ignore[assignment]  # number of updates done so far
    step: jax.Array  # step s used by the last update; the initial step before the first


class FistaState(NamedTuple):
    """State of :func:`fista`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> state = optim.fista_l1(0.1, lam=1.0).init(jnp.zeros(3))
      >>> print(int(state.count), float(state.momentum), state.iterate.shape)
      0 1.0 (3,)
    """

    # optax's field name for the update count; it shadows tuple.count, which mypy flags.
    count: jax.Array  # type: ignore[assignment]  # number of updates done so far, k
    iterate: PyTree  # x_k = prox_{s g}(y_k - s grad f(y_k)): the point the O(1/k^2) bound is for
    momentum: jax.Array  # t_{k+1}, with t_1 = 1 and t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2
    step: jax.Array  # step s used by the last update; the initial step before the first


def _check_common(step, prox, shrink_factor, max_backtracking_steps, fn):
    _utils.check_positive_scalar(step, name="step", fn=fn)
    _utils.check_callable(prox, name="prox", fn=fn, expected="prox(params, step) -> params")
    check_range(
        "shrink_factor", shrink_factor, low=0.0, high=1.0, low_open=True, high_open=True, fn=fn
    )
    if not isinstance(max_backtracking_steps, int) or max_backtracking_steps < 1:
        raise ValueError(
            f"{fn}: max_backtracking_steps must be a positive int, "
            f"got max_backtracking_steps={max_backtracking_steps!r}."
        )


def _prox_step(y, grads, step, prox, value_fn, backtracking, shrink_factor, max_steps, fn):
    """``prox_{s g}(y - s grad)``; with backtracking, shrinks ``s`` until ``f`` is majorised."""

    def candidate(s):
        forward = jax.tree_util.tree_map(
            lambda v, gr: v - jnp.asarray(s, v.dtype) * gr.astype(v.dtype), y, grads
        )
        return prox(forward, s)

    x = candidate(step)
    if not backtracking:
        return x, step
    if value_fn is None:
        raise ValueError(
            f"{fn}: backtracking needs the smooth part of the loss as a keyword argument, "
            "call update(grads, state, params, value_fn=f) with f(params) -> scalar; "
            "got value_fn=None."
        )
    _utils.check_callable(value_fn, name="value_fn", fn=fn, expected="f(params) -> scalar")
    dtype = step.dtype
    f_y = jnp.asarray(value_fn(y), dtype)
    slack = _ROUNDING_SLACK * jnp.finfo(dtype).eps * jnp.abs(f_y)

    def majorised(x, s):
        d = optax.tree.sub(x, y)
        model = f_y + optax.tree.vdot(grads, d).astype(dtype)
        model += optax.tree.norm(d, squared=True).astype(dtype) / (2 * s)
        return jnp.asarray(value_fn(x), dtype) <= model + slack

    def cond(carry):
        _, _, i, accepted = carry
        return (i < max_steps) & ~accepted

    def body(carry):
        _, s, i, _ = carry
        s = s * jnp.asarray(shrink_factor, dtype)
        x = candidate(s)
        return x, s, i + 1, majorised(x, s)

    init = (x, step, jnp.zeros([], jnp.int32), majorised(x, step))
    x, step, _, _ = jax.lax.while_loop(cond, body, init)
    return x, step


def ista(
    step: ArrayLike,
    prox: _utils.Prox,
    *,
    backtracking: bool = False,
    shrink_factor: float = 0.5,
    max_backtracking_steps: int = 30,
) -> optax.GradientTransformationExtraArgs:
    """Proximal gradient descent (ISTA): ``x_{k+1} = prox_{s g}(x_k - s grad f(x_k))``.

    For convex ``f`` with ``L``-Lipschitz gradient and convex ``g``, a fixed step ``s = 1 / L``
    gives ``F(x_k) - F* <= L ||x_0 - x*||^2 / (2 k)``: ``O(1 / k)``, and ``F(x_k)`` decreases
    monotonically. Backtracking needs no knowledge of ``L``: every step it takes is at least
    ``s_min = min(step, shrink_factor / L)``, and the bound holds with ``1 / s_min`` for ``L``.

    Args:
      step: step ``s > 0``; at most ``1 / L`` for the guarantee (the initial step with
        backtracking).
      prox: ``prox(params, step) -> params``, the prox of ``step * g`` on the params pytree.
      backtracking: if true, ``step`` is only the initial step and each update shrinks it by
        ``shrink_factor`` until ``f(x) <= f(y) + <grad f(y), x - y> + ||x - y||^2 / (2 s)``
        holds at the candidate ``x`` (at most ``max_backtracking_steps`` times, after which the
        last candidate is taken). The step never grows back. ``update`` then needs the smooth
        part ``f`` as ``value_fn=`` (two evaluations of ``f`` per update plus one per shrink).
      shrink_factor: factor in ``(0, 1)`` applied to the step at each backtracking trial.
      max_backtracking_steps: cap on the trials per update, a positive int.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` whose ``update(grads, state, params,
      *, value_fn=None)`` takes the gradient of ``f`` at ``params`` and returns
      ``x_{k+1} - x_k``. Its state is a :class:`ProximalGradientState`.

    Raises:
      ValueError: if a concrete ``step`` is not positive, ``shrink_factor`` is outside
        ``(0, 1)`` or ``max_backtracking_steps`` is not a positive int; at update time if
        ``params`` is missing, or ``value_fn`` is missing with ``backtracking=True``.
      TypeError: if ``prox`` is not callable.

    References:
      - Beck, A. and Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm for
      - linear inverse problems. SIAM J. Imaging Sci. 2(1), Thm. 3.1.

      Daubechies, I., Defrise, M. and De Mol, C. (2004). An iterative thresholding algorithm
      for linear inverse problems with a sparsity constraint. Comm. Pure Appl. Math. 57(11).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from l1jax import optim, prox
      >>> f = lambda w: 0.5 * jnp.sum((w - jnp.array([3.0, 0.5])) ** 2)  # smooth part; g = ||w||_1
      >>> tx = optim.ista(1.0, prox.soft_threshold)  # prox(params, step) of step * g
      >>> w = jnp.zeros(2)
      >>> state = tx.init(w)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(f)(w), state, w)
      ...     w = optax.apply_updates(w, updates)
      >>> print([round(float(v), 4) for v in w])  # soft_threshold([3, 0.5], 1)
      [2.0, 0.0]
    """
    _check_common(step, prox, shrink_factor, max_backtracking_steps, "ista")

    def init_fn(params):
        return ProximalGradientState(
            count=jnp.zeros([], jnp.int32), step=jnp.asarray(step, _utils.float_dtype(params))
        )

    def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
        del extra_args
        params = _utils.require_params(params, fn="ista")
        x, s = _prox_step(
            params,
            updates,
            state.step,
            prox,
            value_fn,
            backtracking,
            shrink_factor,
            max_backtracking_steps,
            "ista",
        )
        new_state = ProximalGradientState(count=optax.safe_increment(state.count), step=s)
        return optax.tree.sub(x, params), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def fista(
    step: ArrayLike,
    prox: _utils.Prox,
    *,
    backtracking: bool = False,
    shrink_factor: float = 0.5,
    max_backtracking_steps: int = 30,
) -> optax.GradientTransformationExtraArgs:
    """FISTA, accelerated proximal gradient (Beck & Teboulle 2009), in optax form.

    With ``y_1 = x_0``, ``t_1 = 1``, each update does

        ``x_k = prox_{s g}(y_k - s grad f(y_k))``,
        ``t_{k+1} = (1 + sqrt(1 + 4 t_k^2)) / 2``,
        ``y_{k+1} = x_k + ((t_k - 1) / t_{k+1}) (x_k - x_{k-1})``.

    For convex ``f`` with ``L``-Lipschitz gradient and a fixed step ``s = 1 / L``,
    ``F(x_k) - F* <= 2 L ||x_0 - x*||^2 / (k + 1)^2``: ``O(1 / k^2)`` against ISTA's ``O(1 / k)``.
    With backtracking the bound holds with ``1 / s_min`` for ``L``, where
    ``s_min = min(step, shrink_factor / L)``. ``F(x_k)`` need not decrease monotonically.

    The params the caller holds are the extrapolated points ``y_k``: gradients are taken there,
    and ``update`` returns ``y_{k+1} - y_k``. The iterate ``x_k`` the bound is about is kept in
    the state; read it with :func:`get_fista_iterate`.

    Args:
      step: step ``s > 0``; at most ``1 / L`` for the guarantee (the initial step with
        backtracking).
      prox: ``prox(params, step) -> params``, the prox of ``step * g`` on the params pytree.
      backtracking: if true, ``step`` is only the initial step and each update shrinks it by
        ``shrink_factor`` until ``f(x) <= f(y) + <grad f(y), x - y> + ||x - y||^2 / (2 s)``
        holds at the candidate ``x`` (at most ``max_backtracking_steps`` times, after which the
        last candidate is taken). The step never grows back. ``update`` then needs the smooth
        part ``f`` as ``value_fn=`` (two evaluations of ``f`` per update plus one per shrink).
      shrink_factor: factor in ``(0, 1)`` applied to the step at each backtracking trial.
      max_backtracking_steps: cap on the trials per update, a positive int.

    Returns:
      An :class:`optax.GradientTransformationExtraArgs` whose ``update(grads, state, params,
      *, value_fn=None)`` takes the gradient of ``f`` at ``params = y_k``. Its state is a
      :class:`FistaState`.

    Raises:
      ValueError: if a concrete ``step`` is not positive, ``shrink_factor`` is outside
        ``(0, 1)`` or ``max_backtracking_steps`` is not a positive int; at update time if
        ``params`` is missing, or ``value_fn`` is missing with ``backtracking=True``.
      TypeError: if ``prox`` is not callable.

    References:
      - Beck, A. and Teboulle, M. (2009). A fast iterative shrinkage-thresholding algorithm for
      - linear inverse problems. SIAM J. Imaging Sci. 2(1), Thm. 4.4.

      Nesterov, Y. (1983). A method for solving the convex programming problem with
      convergence rate O(1/k^2). Soviet Math. Dokl. 27(2).

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from l1jax import optim, prox
      >>> A = jnp.array([[1.0, 0.9], [0.9, 1.0]])
      >>> f = lambda w: 0.5 * w @ A @ w - jnp.array([1.0, 0.0]) @ w  # smooth part; g = 0.1 ||w||_1
      >>> tx = optim.fista(0.5, lambda p, step: prox.soft_threshold(p, 0.1 * step))
      >>> w = jnp.zeros(2)
      >>> state = tx.init(w)
      >>> for _ in range(300):
      ...     updates, state = tx.update(jax.grad(f)(w), state, w)  # gradients at y_k
      ...     w = optax.apply_updates(w, updates)
      >>> x = optim.get_fista_iterate(state)  # the iterate x_k the rate is about
      >>> print([round(float(v), 3) for v in x])  # A^-1 ([1, 0] - 0.1 sign(x)), the solution
      [4.263, -3.737]
    """
    _check_common(step, prox, shrink_factor, max_backtracking_steps, "fista")

    def init_fn(params):
        dtype = _utils.float_dtype(params)
        return FistaState(
            count=jnp.zeros([], jnp.int32),
            iterate=params,
            momentum=jnp.ones([], dtype),
            step=jnp.asarray(step, dtype),
        )

    def update_fn(updates, state, params=None, *, value_fn=None, **extra_args):
        del extra_args
        params = _utils.require_params(params, fn="fista")
        x, s = _prox_step(
            params,
            updates,
            state.step,
            prox,
            value_fn,
            backtracking,
            shrink_factor,
            max_backtracking_steps,
            "fista",
        )
        t = state.momentum
        t_next = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
        beta = (t - 1) / t_next
        y_next = jax.tree_util.tree_map(
            lambda xk, xprev: xk + jnp.asarray(beta, xk.dtype) * (xk - xprev), x, state.iterate
        )
        new_state = FistaState(
            count=optax.safe_increment(state.count), iterate=x, momentum=t_next, step=s
        )
        return optax.tree.sub(y_next, params), new_state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _l1_prox(lam: ArrayLike, fn: str) -> _utils.Prox:
    check_range("lam", lam, low=0.0, fn=fn)
    return lambda params, step: _prox.soft_threshold(params, lam * step)


def ista_l1(
    step: ArrayLike,
    *,
    lam: ArrayLike,
    backtracking: bool = False,
    shrink_factor: float = 0.5,
    max_backtracking_steps: int = 30,
) -> optax.GradientTransformationExtraArgs:
    """:func:`ista` for ``g = lam ||x||_1`` (summed over all leaves), prox = soft thresholding.

    Args:
      step: step ``s > 0``, at most ``1 / L``.
      lam: L1 weight ``>= 0``, a scalar or an array broadcastable against every leaf.
      backtracking: see :func:`ista`.
      shrink_factor: see :func:`ista`.
      max_backtracking_steps: see :func:`ista`.

    Raises:
      ValueError: if a concrete ``lam`` is negative, or as :func:`ista`.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from l1jax import optim
      >>> f = lambda w: 0.5 * jnp.sum((w - jnp.array([3.0, 0.5])) ** 2)
      >>> tx = optim.ista_l1(1.0, lam=1.0)  # ista with the prox of lam * ||.||_1
      >>> w = jnp.zeros(2)
      >>> state = tx.init(w)
      >>> updates, state = tx.update(jax.grad(f)(w), state, w)
      >>> print([round(float(v), 4) for v in optax.apply_updates(w, updates)])
      [2.0, 0.0]
    """
    return ista(
        step,
        _l1_prox(lam, "ista_l1"),
        backtracking=backtracking,
        shrink_factor=shrink_factor,
        max_backtracking_steps=max_backtracking_steps,
    )


def fista_l1(
    step: ArrayLike,
    *,
    lam: ArrayLike,
    backtracking: bool = False,
    shrink_factor: float = 0.5,
    max_backtracking_steps: int = 30,
) -> optax.GradientTransformationExtraArgs:
    """:func:`fista` for ``g = lam ||x||_1`` (summed over all leaves), prox = soft thresholding.

    Args:
      step: step ``s > 0``, at most ``1 / L``.
      lam: L1 weight ``>= 0``, a scalar or an array broadcastable against every leaf.
      backtracking: see :func:`fista`.
      shrink_factor: see :func:`fista`.
      max_backtracking_steps: see :func:`fista`.

    Raises:
      ValueError: if a concrete ``lam`` is negative, or as :func:`fista`.

    Examples:
      >>> import jax, jax.numpy as jnp, optax
      >>> from l1jax import optim
      >>> f = lambda w: 0.5 * jnp.sum((w - jnp.array([3.0, 0.5])) ** 2)
      >>> tx = optim.fista_l1(1.0, lam=1.0)
      >>> w = jnp.zeros(2)
      >>> state = tx.init(w)
      >>> for _ in range(3):
      ...     updates, state = tx.update(jax.grad(f)(w), state, w)
      ...     w = optax.apply_updates(w, updates)
      >>> print([round(float(v), 4) for v in optim.get_fista_iterate(state)])
      [2.0, 0.0]
    """
    return fista(
        step,
        _l1_prox(lam, "fista_l1"),
        backtracking=backtracking,
        shrink_factor=shrink_factor,
        max_backtracking_steps=max_backtracking_steps,
    )


def get_fista_iterate(state: optax.OptState) -> PyTree:
    """The FISTA iterate ``x_k`` from the (single) :class:`FistaState` inside ``state``.

    Raises:
      ValueError: if ``state`` holds no :class:`FistaState`.
      KeyError: if it holds more than one.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import optim
      >>> tx = optim.fista_l1(1.0, lam=1.0)
      >>> w = jnp.zeros(2)
      >>> state = tx.init(w)
      >>> _, state = tx.update(jnp.array([-3.0, -0.5]), state, w)  # grad of |w - [3, .5]|^2 / 2
      >>> print([round(float(v), 4) for v in optim.get_fista_iterate(state)])
      [2.0, 0.0]
    """
    sentinel = object()
    found = optax.tree.get(
        state,
        "iterate",
        default=sentinel,
        filtering=lambda path, _: getattr(path[-1], "tuple_name", None) == "FistaState",
    )
    if found is sentinel:
        raise ValueError("get_fista_iterate: state has no FistaState; build it with fista(...).")
    return found
