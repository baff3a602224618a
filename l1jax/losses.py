"""Regression losses with explicit subgradients, ``reduction``, ``weights`` and masks.

Every loss has the signature ``f(predictions, targets, *, reduction="mean", weights=None,
where=None, **hyperparameters)``:

* ``reduction="none"`` returns the elementwise loss (times ``weights``; 0 where ``where`` is
  False), ``"sum"`` its sum and ``"mean"`` the weighted mean ``sum(w l) / sum(w)`` over the
  elements that ``where`` keeps. With no weights and no mask, ``"mean"`` is the plain mean, as
  in PyTorch's ``reduction="mean"``. A mean over no element (all masked, or all weights 0) is
  defined as 0 so that an empty batch cannot inject NaN into training.
* NaN in is NaN out: a NaN (or an inf that makes the value undefined) in ``predictions``,
  ``targets`` or ``weights`` at an element that ``where`` keeps makes ``"mean"`` and ``"sum"``
  NaN, and its derivative is NaN too. Elements that ``where`` drops are ignored, NaN and inf
  included, in the value and in the gradient.
* Hyperparameters (``delta``, ``beta``, ``eps``, ``alpha``) are real scalars: Python numbers or
  0-d arrays, concrete or traced (``jax.vmap`` over them to sweep). Only ``pinball``'s ``tau``
  may also be 1-D. A string, None, a bool or an array of the wrong shape raises at trace time
  with the function, the argument and what was given; a concrete value out of range raises
  ``ValueError``.
* ``predictions`` and ``targets`` must have the same shape (no silent broadcasting), with the
  one documented exception of ``pinball`` with a vector of quantile levels.
* Every kink uses the minimum-norm subgradient (see :mod:`l1jax.subgrad`), *per element*. The
  gradient of a reduced loss is the sum of those elementwise choices, which is an element of
  the subdifferential of the total but in general not its minimum-norm element: for
  ``sum_i |y_i - w x_i|`` at a kink ``w = y_j / x_j`` the elementwise rule contributes 0 for
  the ``j``-th term, i.e. the midpoint of that term's jump ``[-|x_j|, |x_j|]``. Use a proximal
  or LP method (:mod:`l1jax.prox`, :mod:`l1jax.solvers`) when optimality certificates matter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from l1jax import subgrad
from l1jax._checks import as_array, check_range, check_real, check_scalar, is_concrete

Reduction = Literal["none", "mean", "sum"]
"""How a loss reduces its elementwise values: ``"none"``, ``"mean"`` or ``"sum"``."""

__all__ = [
    "l1",
    "mse",
    "huber",
    "smooth_l1",
    "pinball",
    "charbonnier",
    "log_cosh",
    "l1_mse_mix",
    "reduce_loss",
    "LOSSES",
    "REDUCTIONS",
]

REDUCTIONS = ("none", "mean", "sum")


# --- shared plumbing -------------------------------------------------------------------------


def _check_float(x: ArrayLike, name: str, fn: str) -> jax.Array:
    x = as_array(x, name, fn=fn, expected="a floating-point array")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: {name} must be a floating-point array, got dtype {x.dtype}.")
    return x


def broadcast_mask(where: ArrayLike, shape: tuple[int, ...], fn: str) -> jax.Array:
    """``where`` checked to be boolean and broadcast to ``shape``; errors name ``fn``."""
    m = as_array(where, "where", fn=fn, expected="a boolean mask")
    if m.dtype != jnp.bool_:
        raise TypeError(f"{fn}: where must be a boolean mask, got dtype {m.dtype}.")
    return _broadcast(m, shape, "where", fn)


def _prepare(predictions, targets, fn: str, where=None) -> tuple[jax.Array, jax.Array]:
    p = _check_float(predictions, "predictions", fn)
    t = _check_float(targets, "targets", fn)
    if p.shape != t.shape:
        raise ValueError(
            f"{fn}: predictions and targets must have the same shape, got predictions.shape="
            f"{p.shape} and targets.shape={t.shape}."
        )
    dtype = jnp.result_type(p, t)
    p, t = p.astype(dtype), t.astype(dtype)
    if where is not None:
        # reduce_loss drops these elements from the value; zeroing them here as well keeps a
        # NaN or inf there out of the gradient (0 times a NaN derivative is NaN).
        m = broadcast_mask(where, p.shape, fn)
        zero = jnp.zeros((), dtype)
        p, t = jnp.where(m, p, zero), jnp.where(m, t, zero)
    return p, t


def reduce_loss(
    loss: jax.Array,
    *,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
    fn: str = "reduce_loss",
) -> jax.Array:
    """Applies ``weights``, the ``where`` mask and ``reduction`` to an elementwise loss.

    ``"mean"`` is ``sum(w l) / sum(w)`` over the kept elements, and 0 when that denominator is
    exactly 0 (nothing kept, or all weights 0). A NaN in a kept ``loss`` or weight gives NaN;
    elements that ``where`` drops are ignored, NaN included.

    Args:
      loss: elementwise loss.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      weights: non-negative floating-point weights broadcastable to ``loss.shape``.
      where: boolean mask broadcastable to ``loss.shape``; False drops an element from both the
        numerator and the denominator of the mean.
      fn: the caller's name, used in error messages.

    Returns:
      ``loss.shape`` for ``"none"``, a scalar otherwise.

    Raises:
      ValueError: on a bad ``reduction``, shapes that do not broadcast to ``loss.shape``, or a
        concrete negative weight.
      TypeError: on non-floating ``weights`` or a non-boolean ``where``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses
      >>> elementwise = jnp.array([1.0, 2.0, 3.0, 100.0])
      >>> keep = jnp.array([True, True, True, False])
      >>> print(float(losses.reduce_loss(elementwise, where=keep)))  # the mean of the kept three
      2.0
      >>> print(float(losses.reduce_loss(elementwise, weights=jnp.array([1.0, 1.0, 2.0, 0.0]))))
      2.25
    """
    if reduction not in REDUCTIONS:
        raise ValueError(
            f"{fn}: reduction must be one of {REDUCTIONS}, got reduction={reduction!r}."
        )
    zero = jnp.zeros((), loss.dtype)
    w = None
    if weights is not None:
        w = _check_float(weights, "weights", fn)
        # NumPy, not jnp: under jit a jnp op on a closed-over concrete array is a tracer.
        if is_concrete(w) and np.any((w_np := np.asarray(w, np.float64)) < 0):
            raise ValueError(
                f"{fn}: weights must be non-negative, got a minimum of {np.nanmin(w_np)}."
            )
        w = _broadcast(w, loss.shape, "weights", fn).astype(loss.dtype)
    m = None
    if where is not None:
        m = broadcast_mask(where, loss.shape, fn)
        # jnp.where, not a product: a masked-out inf or NaN must not leak into the sums.
        loss = jnp.where(m, loss, zero)
        if w is not None:
            w = jnp.where(m, w, zero)
    weighted = loss if w is None else loss * w
    if reduction == "none":
        return weighted
    total = jnp.sum(weighted)
    if reduction == "sum":
        return total
    if w is None and m is None:
        return total / loss.size if loss.size else zero
    if w is not None:
        denom = jnp.sum(w)
    else:
        assert m is not None  # the mean without weights and mask returned above
        denom = jnp.sum(m, dtype=loss.dtype)
    # Only an exactly empty mean is 0: `denom > 0` would also send a NaN weight sum to 0.
    empty = denom == 0
    return jnp.where(empty, zero, total / jnp.where(empty, jnp.ones((), loss.dtype), denom))


def _broadcast(x: jax.Array, shape, name: str, fn: str) -> jax.Array:
    try:
        return jnp.broadcast_to(x, shape)
    except ValueError:
        raise ValueError(
            f"{fn}: {name}.shape={x.shape} does not broadcast to the loss shape {shape}."
        ) from None


def _check_hyper(name: str, value, fn: str, *, allow_zero: bool) -> None:
    check_scalar(name, value, low=0.0, low_open=not allow_zero, fn=fn)


# --- the losses ------------------------------------------------------------------------------


def l1(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """L1 loss ``|p - t|``: MAE with ``reduction="mean"``, SAE with ``"sum"``.

    Derivative in ``p``: ``sign(p - t)``, and 0 at ``p = t`` (minimum-norm element of
    ``[-1, 1]``). Minimising the mean over a constant gives the median; it is the negative
    log-likelihood of a Laplace model up to constants.

    Args:
      predictions: floating-point array.
      targets: array of the same shape.
      reduction: ``"none"``, ``"mean"`` or ``"sum"``.
      weights: non-negative floating-point weights broadcastable to the loss; a NaN weight
        that ``where`` keeps makes the mean and the sum NaN.
      where: boolean mask broadcastable to the loss; dropped elements are ignored, NaN
        included, in the value and the gradient.

    Returns:
      A scalar, or the elementwise loss for ``reduction="none"``.

    Raises:
      TypeError: if an input is not a floating-point array (``where``: not boolean).
      ValueError: on a shape mismatch, a bad ``reduction`` or a concrete negative weight.

    References:
      - ``torch.nn.L1Loss`` (same values and gradients).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import losses
      >>> p, t = jnp.array([2.5, 0.0, 2.1, 7.8]), jnp.array([3.0, -0.5, 2.0, 7.5])
      >>> print(round(float(losses.l1(p, t)), 4))  # torch.nn.L1Loss gives 0.35
      0.35
      >>> [round(float(v), 4) for v in losses.l1(p, t, reduction="none")]
      [0.5, 0.5, 0.1, 0.3]
      >>> print(jax.grad(losses.l1)(t, t))  # at the kink: the minimum-norm subgradient
      [0. 0. 0. 0.]
    """
    p, t = _prepare(predictions, targets, "l1", where)
    return reduce_loss(
        subgrad.abs(p - t), reduction=reduction, weights=weights, where=where, fn="l1"
    )


def mse(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Squared error ``(p - t)^2`` (smooth; derivative ``2 (p - t)``).

    Args and Returns as in :func:`l1`.

    References:
      - ``torch.nn.MSELoss`` (same values and gradients).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses
      >>> print(float(losses.mse(jnp.array([1.0, 3.0]), jnp.array([0.0, 0.0]), reduction="sum")))
      10.0
    """
    p, t = _prepare(predictions, targets, "mse", where)
    return reduce_loss(
        jnp.square(p - t), reduction=reduction, weights=weights, where=where, fn="mse"
    )


def huber(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    delta: ArrayLike = 1.0,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Huber loss: ``r^2 / 2`` if ``|r| <= delta``, else ``delta (|r| - delta / 2)``, ``r = p - t``.

    Continuously differentiable: the derivative is ``r`` inside and ``delta sign(r)`` outside,
    equal at ``|r| = delta``; the second derivative jumps there (1 inside, taken at the
    boundary, 0 outside). Finite for residuals of any finite magnitude.

    Args:
      delta: threshold ``> 0`` between the quadratic and the linear part, a real scalar.
      predictions, targets, reduction, weights, where: as in :func:`l1`.

    References:
      - Huber, P. J. (1964). Robust estimation of a location parameter. Ann. Math. Stat. 35(1).
      - ``torch.nn.HuberLoss`` (same values and gradients).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses
      >>> r = jnp.array([0.5, 3.0])  # one residual inside delta = 1, one outside
      >>> print(losses.huber(r, jnp.zeros(2), reduction="none"))  # 0.5^2 / 2 and 3 - 1/2
      [0.125 2.5  ]
    """
    _check_hyper("delta", delta, "huber", allow_zero=False)
    p, t = _prepare(predictions, targets, "huber", where)
    r = p - t
    a = subgrad.abs(r)
    d = jnp.asarray(delta, r.dtype)
    loss = jnp.where(a <= d, 0.5 * jnp.square(r), d * (a - 0.5 * d))
    return reduce_loss(loss, reduction=reduction, weights=weights, where=where, fn="huber")


def smooth_l1(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    beta: ArrayLike = 1.0,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Smooth L1: ``r^2 / (2 beta)`` if ``|r| < beta``, else ``|r| - beta / 2``, ``r = p - t``.

    Equals ``huber(delta=beta) / beta``. ``beta = 0`` is exactly :func:`l1` (value and
    derivative, with no division by zero anywhere). Derivative: ``r / beta`` inside,
    ``sign(r)`` outside, 0 at ``r = 0`` when ``beta = 0``.

    Args:
      beta: threshold ``>= 0``, a real scalar.
      predictions, targets, reduction, weights, where: as in :func:`l1`.

    References:
      - Girshick, R. (2015). Fast R-CNN. ICCV. ``torch.nn.SmoothL1Loss`` (same values and
        gradients).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses
      >>> r = jnp.array([0.5, 3.0])
      >>> print(losses.smooth_l1(r, jnp.zeros(2), beta=1.0, reduction="none"))  # huber / beta
      [0.125 2.5  ]
    """
    _check_hyper("beta", beta, "smooth_l1", allow_zero=True)
    p, t = _prepare(predictions, targets, "smooth_l1", where)
    r = p - t
    a = subgrad.abs(r)
    b = jnp.asarray(beta, r.dtype)
    # The quadratic branch is never selected when beta == 0; a safe divisor keeps its (unused)
    # value and gradient finite so that jnp.where cannot turn 0 * inf into NaN.
    safe_b = jnp.where(b > 0, b, jnp.ones((), r.dtype))
    loss = jnp.where(a < b, 0.5 * jnp.square(r) / safe_b, a - 0.5 * b)
    return reduce_loss(loss, reduction=reduction, weights=weights, where=where, fn="smooth_l1")


def pinball(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    tau: ArrayLike = 0.5,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Pinball (quantile) loss ``rho_tau(t - p) = max(tau r, (tau - 1) r)`` with ``r = t - p``.

    ``tau = 0.5`` gives half of :func:`l1`. Derivative in ``p``: ``-tau`` where ``t > p``,
    ``1 - tau`` where ``t < p`` and 0 at ``t = p`` (the minimum-norm element of
    ``[-tau, 1 - tau]``).

    Args:
      predictions: ``(..., )`` for scalar ``tau``; ``(..., Q)`` for a vector of ``Q`` levels, one
        prediction per level along the trailing axis.
      targets: same shape as ``predictions``; with a vector ``tau`` also ``predictions.shape[:-1]``,
        broadcast along the trailing axis.
      tau: quantile level(s) in ``(0, 1)``: a real scalar, or a 1-D array of length ``Q``.
      predictions, targets, reduction, weights, where: as in :func:`l1`.

    Returns:
      A scalar, or the elementwise loss (shape of ``predictions``) for ``reduction="none"``.

    References:
      - Koenker, R. and Bassett, G. (1978). Regression quantiles. Econometrica 46(1).
      - ``sklearn.metrics.mean_pinball_loss(y_true, y_pred, alpha=tau)`` (same value).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses
      >>> p, t = jnp.array([1.0, 1.0]), jnp.array([3.0, 0.0])  # under by 2, over by 1
      >>> [round(float(v), 4) for v in losses.pinball(p, t, tau=0.9, reduction="none")]
      [1.8, 0.1]
      >>> levels = jnp.array([0.1, 0.5, 0.9])  # one prediction per level, trailing axis
      >>> print(losses.pinball(jnp.zeros((2, 3)), t, tau=levels).shape)
      ()
    """
    tau_shape = check_real("tau", tau, fn="pinball", scalar=False)
    if len(tau_shape) > 1:
        raise ValueError(
            f"pinball: tau must be a scalar or a 1-D array, got tau.shape={tau_shape}."
        )
    check_range("tau", tau, low=0.0, high=1.0, low_open=True, high_open=True, fn="pinball")
    tau_arr = jnp.asarray(tau)
    p = _check_float(predictions, "predictions", "pinball")
    t = _check_float(targets, "targets", "pinball")
    if tau_arr.ndim == 1:
        q = tau_arr.shape[0]
        if p.ndim == 0 or p.shape[-1] != q:
            raise ValueError(
                f"pinball: with {q} quantile levels, predictions must have a trailing axis of "
                f"length {q}, got predictions.shape={p.shape}."
            )
        if t.shape == p.shape[:-1]:
            t = jnp.broadcast_to(t[..., None], p.shape)
    p, t = _prepare(p, t, "pinball", where)
    loss = subgrad.pinball_elementwise(t - p, jnp.asarray(tau_arr, p.dtype))
    return reduce_loss(loss, reduction=reduction, weights=weights, where=where, fn="pinball")


@jax.custom_jvp
def _charbonnier(r, eps):
    a = jnp.abs(r)
    # sqrt(r^2 + eps^2) rounds to |r| long before r^2 overflows; switching there keeps the value
    # finite for any finite r at the cost of one select (jnp.hypot costs ~40% more).
    big = jnp.sqrt(jnp.finfo(r.dtype).max) / 4
    return jnp.where(a < big, jnp.sqrt(r * r + eps * eps), a)


@_charbonnier.defjvp
def _charbonnier_jvp(primals, tangents):
    (r, eps), (tr, teps) = primals, tangents
    val = _charbonnier(r, eps)
    # At r = eps = 0 the function is |r|, whose minimum-norm subgradient is 0. `val != 0`, not
    # `val > 0`, so that a NaN residual gets a NaN derivative rather than the kink's 0.
    nonzero = val != 0
    safe = jnp.where(nonzero, val, jnp.ones((), val.dtype))
    zero = jnp.zeros((), val.dtype)
    return val, jnp.where(nonzero, (r * tr + eps * teps) / safe, zero)


def charbonnier(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    eps: ArrayLike = 1e-3,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Charbonnier loss ``sqrt(r^2 + eps^2)``, ``r = p - t``: a smooth L1 with ``eps`` rounding.

    Derivative: ``r / sqrt(r^2 + eps^2)``; with ``eps = 0`` it is ``|r|`` with derivative 0 at
    ``r = 0`` (no NaN). Residuals up to the dtype's maximum give finite values and gradients.

    Args:
      eps: smoothing ``>= 0``, a real scalar.
      predictions, targets, reduction, weights, where: as in :func:`l1`.

    References:
      - Charbonnier, P. et al. (1994). Two deterministic half-quadratic regularization algorithms
      - for computed imaging. ICIP. Lai, W.-S. et al. (2017). LapSRN. CVPR (eps = 1e-3).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses
      >>> print(round(float(losses.charbonnier(jnp.array([3.0]), jnp.array([-1.0]), eps=3.0)), 4))
      5.0
    """
    _check_hyper("eps", eps, "charbonnier", allow_zero=True)
    p, t = _prepare(predictions, targets, "charbonnier", where)
    r = p - t
    loss = _charbonnier(r, jnp.asarray(eps, r.dtype))
    return reduce_loss(loss, reduction=reduction, weights=weights, where=where, fn="charbonnier")


@jax.custom_jvp
def _log_cosh(r):
    a = jnp.abs(r)
    # log(cosh(r)) = |r| + log1p(exp(-2|r|)) - log 2: no overflow of cosh for large |r|.
    return a + jnp.log1p(jnp.exp(-2 * a)) - jnp.log(jnp.asarray(2.0, r.dtype))


@_log_cosh.defjvp
def _log_cosh_jvp(primals, tangents):
    (r,), (t,) = primals, tangents
    return _log_cosh(r), jnp.tanh(r) * t


def log_cosh(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Log-cosh loss ``log(cosh(r))``, ``r = p - t``: ``r^2 / 2`` near 0, ``|r| - log 2`` far out.

    Smooth everywhere, derivative ``tanh(r)``. Evaluated as ``|r| + log1p(exp(-2|r|)) - log 2``,
    so value and gradient stay finite for residuals up to 1e30 in float32 (naive ``cosh``
    overflows past ~89).

    Args and Returns as in :func:`l1`.

    References:
      - optax.log_cosh; Saleh, R. A. and Saleh, A. K. (2022). Statistical properties of the log-cosh
      - loss function used in machine learning. arXiv:2208.04564.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses
      >>> print(round(float(losses.log_cosh(jnp.array([1.0]), jnp.array([0.0]))), 4))  # log(cosh 1)
      0.4338
    """
    p, t = _prepare(predictions, targets, "log_cosh", where)
    return reduce_loss(
        _log_cosh(p - t), reduction=reduction, weights=weights, where=where, fn="log_cosh"
    )


def l1_mse_mix(
    predictions: ArrayLike,
    targets: ArrayLike,
    *,
    alpha: ArrayLike = 0.5,
    reduction: Reduction = "mean",
    weights: ArrayLike | None = None,
    where: ArrayLike | None = None,
) -> jax.Array:
    """Convex mix ``alpha |r| + (1 - alpha) r^2``, ``r = p - t``.

    Derivative ``alpha sign(r) + 2 (1 - alpha) r``, and 0 at ``r = 0``.

    Args:
      alpha: weight of the L1 term in ``[0, 1]``, a real scalar.
      predictions, targets, reduction, weights, where: as in :func:`l1`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses
      >>> p, t = jnp.array([2.0]), jnp.array([0.0])  # l1 = 2, mse = 4
      >>> print(float(losses.l1_mse_mix(p, t, alpha=0.25)))  # 0.25 * 2 + 0.75 * 4
      3.5
    """
    check_scalar("alpha", alpha, low=0.0, high=1.0, fn="l1_mse_mix")
    p, t = _prepare(predictions, targets, "l1_mse_mix", where)
    r = p - t
    a = jnp.asarray(alpha, r.dtype)
    loss = a * subgrad.abs(r) + (1 - a) * jnp.square(r)
    return reduce_loss(loss, reduction=reduction, weights=weights, where=where, fn="l1_mse_mix")


LOSSES: dict[str, Callable[..., jax.Array]] = {
    "l1": l1,
    "mse": mse,
    "huber": huber,
    "smooth_l1": smooth_l1,
    "pinball": pinball,
    "charbonnier": charbonnier,
    "log_cosh": log_cosh,
    "l1_mse_mix": l1_mse_mix,
}
