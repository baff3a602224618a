"""Non-smooth primitives with a stated derivative at every kink.

Plain JAX differentiates ``jnp.abs`` at 0 as 1 and ``jnp.maximum(x, 0.)`` at 0 as 0.5: artefacts
of how the primitive is lowered, not choices anyone made. Each function here is a
``jax.custom_jvp`` whose derivative at the non-smooth point is an explicit element of the
subdifferential, ``kink``, which defaults to the minimum-norm subgradient (0 for every function
here). Away from the kink the derivative is the ordinary one. The rules are written with
``jnp.where`` on constants, so they can themselves be differentiated (``jax.hessian`` gives 0
away from the kink, as it should for piecewise-linear functions).

``+0.0`` and ``-0.0`` compare equal, so both get the kink derivative. A NaN input gives a NaN
value and a NaN derivative (it is on neither side of the kink, nor on it), as ``jnp.abs`` does.
"""

from __future__ import annotations

import functools
import numbers

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from l1jax._checks import as_array, check_real

__all__ = ["abs", "sign", "relu", "pinball_elementwise", "check_kink"]


def _as_float_array(x: ArrayLike, name: str, fn: str) -> jax.Array:
    x = as_array(x, name, fn=fn, expected="a floating-point array")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: {name} must be a floating-point array, got dtype {x.dtype}.")
    return x


def check_kink(kink: float, lower: float, upper: float, *, name: str, fn: str) -> float:
    """Checks at trace time that ``kink`` lies in the subdifferential ``[lower, upper]``.

    Examples:
      >>> from l1jax import subgrad
      >>> subgrad.check_kink(0.5, -1.0, 1.0, name="|x|", fn="my_abs")
      0.5
      >>> subgrad.check_kink(2.0, -1.0, 1.0, name="|x|", fn="my_abs")
      Traceback (most recent call last):
      ...
      ValueError: my_abs: kink=2.0 is outside the subdifferential of |x| at its kink, ...
    """
    if not isinstance(kink, numbers.Real) or isinstance(kink, bool):
        raise TypeError(f"{fn}: kink must be a Python float, got {kink!r}.")
    if not (lower <= kink <= upper):
        raise ValueError(
            f"{fn}: kink={kink!r} is outside the subdifferential of {name} at its kink, "
            f"expected a value in [{lower}, {upper}]."
        )
    return float(kink)


def _step(x: jax.Array, below: float, at: float, above: float) -> jax.Array:
    """The piecewise-constant derivative ``below`` / ``at`` / ``above`` of a kink at 0; NaN at
    a NaN ``x``."""
    dt = x.dtype
    step = jnp.where(
        x > 0,
        jnp.asarray(above, dt),
        jnp.where(x < 0, jnp.asarray(below, dt), jnp.asarray(at, dt)),
    )
    # Without this a NaN would fall through both comparisons and get the kink's derivative.
    return jnp.where(jnp.isnan(x), x, step)


# --- |x| -------------------------------------------------------------------------------------


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _abs(x, kink):
    del kink
    return jnp.abs(x)


@_abs.defjvp
def _abs_jvp(kink, primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.abs(x), _step(x, -1.0, kink, 1.0) * t


def abs(x: ArrayLike, *, kink: float = 0.0) -> jax.Array:  # noqa: A001 - mirrors jnp.abs
    """Absolute value ``|x|`` with derivative ``kink`` at ``x = 0``.

    Derivative: ``sign(x)`` for ``x != 0`` and ``kink`` at 0 (both ``+0.0`` and ``-0.0``).
    The subdifferential at 0 is ``[-1, 1]``; the default ``kink=0`` is its minimum-norm element,
    so a minimiser of a sum of absolute values is a stationary point of gradient-based code.

    Args:
      x: floating-point array.
      kink: derivative used at ``x = 0``; must lie in ``[-1, 1]``.

    Returns:
      ``|x|`` with the dtype and shape of ``x``.

    Raises:
      ValueError: if ``kink`` is outside ``[-1, 1]``.
      TypeError: if ``x`` is not floating point.

    Examples:
      >>> import jax
      >>> from l1jax import subgrad
      >>> print(jax.grad(subgrad.abs)(0.0), jax.grad(subgrad.abs)(-2.0))
      0.0 -1.0
      >>> print(jax.grad(lambda x: subgrad.abs(x, kink=0.5))(0.0))  # any element of [-1, 1]
      0.5
    """
    kink = check_kink(kink, -1.0, 1.0, name="|x|", fn="abs")
    return _abs(_as_float_array(x, "x", "abs"), kink)


# --- sign(x) ---------------------------------------------------------------------------------


@jax.custom_jvp
def _sign(x):
    return jnp.sign(x)


@_sign.defjvp
def _sign_jvp(primals, tangents):
    (x,), (t,) = primals, tangents
    return jnp.sign(x), jnp.zeros_like(t)


def sign(x: ArrayLike) -> jax.Array:
    """``sign(x)`` in ``{-1, 0, 1}`` with derivative 0 everywhere (including at 0).

    The distributional derivative at 0 is a Dirac delta, which no array can hold; 0 is the
    derivative almost everywhere and the one every subgradient method assumes.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import subgrad
      >>> print(subgrad.sign(jnp.array([-2.0, 0.0, 3.0])), jax.grad(subgrad.sign)(1.0))
      [-1.  0.  1.] 0.0
    """
    return _sign(_as_float_array(x, "x", "sign"))


# --- max(x, 0) -------------------------------------------------------------------------------


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _relu(x, kink):
    del kink
    return jnp.maximum(x, jnp.zeros((), x.dtype))


@_relu.defjvp
def _relu_jvp(kink, primals, tangents):
    (x,), (t,) = primals, tangents
    return _relu(x, kink), _step(x, 0.0, kink, 1.0) * t


def relu(x: ArrayLike, *, kink: float = 0.0) -> jax.Array:
    """Positive part ``max(x, 0)`` with derivative ``kink`` at ``x = 0``.

    Derivative: 1 for ``x > 0``, 0 for ``x < 0``, ``kink`` at 0. The subdifferential at 0 is
    ``[0, 1]``; the default ``kink=0`` is its minimum-norm element (``jax.nn.relu`` also uses 0,
    while ``jnp.maximum(x, 0.)`` gives 0.5).

    Raises:
      ValueError: if ``kink`` is outside ``[0, 1]``.

    Examples:
      >>> import jax
      >>> from l1jax import subgrad
      >>> print(jax.grad(subgrad.relu)(0.0), jax.grad(lambda x: subgrad.relu(x, kink=1.0))(0.0))
      0.0 1.0
    """
    kink = check_kink(kink, 0.0, 1.0, name="max(x, 0)", fn="relu")
    return _relu(_as_float_array(x, "x", "relu"), kink)


# --- pinball rho_tau(r) ----------------------------------------------------------------------


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _pinball(r, tau, kink):
    del kink
    # A select, not jnp.maximum of two products: XLA:CPU fuses this form into the reduction that
    # usually follows, while the max form was measured 8x slower there (scripts/bench_losses.py).
    return jnp.where(r >= 0, tau * r, (tau - 1) * r)


def _pinball_jvp(kink, primals, tangents):
    (r, tau), (tr, ttau) = primals, tangents
    out = _pinball(r, tau, kink)
    # d/dr: tau above the kink, tau - 1 below it, the kink's value at 0 and NaN at a NaN (both
    # comparisons fail there, and kink + 0 * r is NaN); d/dtau: r (smooth, 0 at the kink).
    dr = jnp.where(r > 0, tau, jnp.where(r < 0, tau - 1, jnp.asarray(kink, r.dtype) + 0 * r))
    # Symbolic zeros skip the work for an argument without a tangent: a tau that is not
    # differentiated (the usual case) costs no product and no reduction in reverse mode.
    zero = jax.custom_derivatives.SymbolicZero
    if isinstance(tr, zero) and isinstance(ttau, zero):
        return out, jnp.zeros_like(out)
    t_out = jnp.zeros_like(out) if isinstance(tr, zero) else dr * tr
    return out, t_out if isinstance(ttau, zero) else t_out + r * ttau


_pinball.defjvp(_pinball_jvp, symbolic_zeros=True)


def _check_tau(tau: ArrayLike, shape: tuple[int, ...], dtype) -> jax.Array:
    fn = "pinball_elementwise"
    tau_shape = check_real("tau", tau, fn=fn, scalar=False)
    try:
        np.broadcast_shapes(shape, tau_shape)
    except ValueError:
        raise ValueError(
            f"{fn}: tau must be broadcastable against r, got tau.shape={tau_shape} and "
            f"r.shape={shape}."
        ) from None
    if isinstance(tau, jax.core.Tracer):
        return jnp.asarray(tau, dtype)
    tau_np = np.asarray(tau, dtype=np.float64)
    if tau_np.size == 0 or not np.all((tau_np > 0) & (tau_np < 1)):
        raise ValueError(f"{fn}: tau must lie in the open interval (0, 1), got tau={tau!r}.")
    return jnp.asarray(tau, dtype)


def pinball_elementwise(r: ArrayLike, tau: ArrayLike, *, kink: float = 0.0) -> jax.Array:
    """Pinball (check) function ``rho_tau(r) = max(tau r, (tau - 1) r)``.

    With ``r = y - q`` the residual, ``E[rho_tau(y - q)]`` is minimised by the tau-quantile of y
    (Koenker & Bassett, 1978).

    Derivative in r: ``tau`` for ``r > 0``, ``tau - 1`` for ``r < 0`` and ``kink`` at 0, whose
    subdifferential is ``[tau - 1, tau]`` and contains 0, the default (minimum-norm). The
    derivative in ``tau`` is ``r``.

    Args:
      r: residuals, floating point.
      tau: quantile level(s) in ``(0, 1)``, broadcastable against ``r``.
      kink: derivative used at ``r = 0``; must lie in ``[tau - 1, tau]`` for every tau.

    Returns:
      ``rho_tau(r)`` with the broadcast shape of ``r`` and ``tau`` and the dtype of ``r``.

    Raises:
      TypeError: if ``r`` is not floating point or ``tau`` is not a real number or array.
      ValueError: if ``tau`` does not broadcast against ``r``, a concrete ``tau`` leaves
        ``(0, 1)``, or ``kink`` is outside the subdifferential.

    References:
      - Koenker, R. and Bassett, G. (1978). Regression quantiles. Econometrica 46(1).

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import subgrad
      >>> r = jnp.array([-1.0, 0.0, 2.0])
      >>> [round(float(v), 4) for v in subgrad.pinball_elementwise(r, 0.9)]  # 0.1 * 1, 0, 0.9 * 2
      [0.1, 0.0, 1.8]
      >>> g = jax.grad(lambda r: subgrad.pinball_elementwise(r, 0.9).sum())(r)
      >>> [round(float(v), 4) for v in g]  # 0 at the kink
      [-0.1, 0.0, 0.9]
    """
    r = _as_float_array(r, "r", "pinball_elementwise")
    tau = _check_tau(tau, r.shape, r.dtype)
    if not isinstance(tau, jax.core.Tracer):
        tau_np = np.asarray(tau, np.float64)
        check_kink(
            kink,
            float(tau_np.max()) - 1.0,
            float(tau_np.min()),
            name="rho_tau",
            fn="pinball_elementwise",
        )
    else:
        check_kink(kink, -1.0, 1.0, name="rho_tau", fn="pinball_elementwise")
    if tau.ndim:  # explicit broadcast; a scalar tau stays scalar so XLA never materialises it
        r, tau = jnp.broadcast_arrays(r, tau)
    return _pinball(r, tau, float(kink))
