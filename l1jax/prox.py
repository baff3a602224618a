"""Proximal operators over pytrees.

``prox_{t f}(v) = argmin_x  t f(x) + ||x - v||^2 / 2`` for separable f, applied leaf by leaf.
Each operator here has a closed form; the tests check it against a direct numerical minimisation
of the definition. Every function works under ``jit`` and ``vmap`` and accepts ``t`` (and the
hyperparameters that are arrays) as traced values, so step sizes can be swept with ``vmap``.

``t`` and every hyperparameter (``l1_ratio``, ``tau``, ``delta``) is a real number or an array
of them that broadcasts against every leaf of ``x`` without changing its shape (a per-coordinate
threshold); anything else (a string, None, a shape that does not broadcast or would enlarge a
leaf) raises at trace time naming the function, the argument and the leaf. A NaN in ``x`` gives
NaN at that coordinate.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree, Real

from l1jax import subgrad
from l1jax._checks import check_broadcasts_to, check_range, check_real
from l1jax._tree import tree_check_float

__all__ = ["soft_threshold", "prox_l1", "prox_elastic_net", "prox_pinball", "prox_huber"]


def _check_hypers(fn: str, hypers: dict, interval: dict) -> dict[str, tuple[int, ...]]:
    """Type and range of each hyperparameter; returns their shapes."""
    shapes = {}
    for name, value in hypers.items():
        shapes[name] = check_real(name, value, fn=fn, scalar=False)
        check_range(name, value, fn=fn, **interval[name])
    return shapes


def _map(leaf_fn, tree: PyTree, fn: str, shapes: dict[str, tuple[int, ...]]) -> PyTree:
    tree_check_float(tree, "x", fn)
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        for name, shape in shapes.items():
            check_broadcasts_to(
                name, shape, jnp.shape(leaf), fn=fn, what=f"x{jax.tree_util.keystr(path)}"
            )
    return jax.tree_util.tree_map(lambda v: leaf_fn(jnp.asarray(v)), tree)


def _cast(t: ArrayLike, like: jax.Array) -> jax.Array:
    return jnp.broadcast_to(jnp.asarray(t, dtype=like.dtype), like.shape)


def soft_threshold(
    x: PyTree[Float[ArrayLike, " ..."]], t: Real[ArrayLike, " ..."]
) -> PyTree[Float[Array, " ..."]]:
    """Soft thresholding ``sign(x) max(|x| - t, 0)``: the prox of ``t ||x||_1``.

    Args:
      x: pytree of floating-point arrays.
      t: threshold ``>= 0``, a scalar or an array that broadcasts to the shape of every leaf.

    Returns:
      A pytree like ``x``.

    Raises:
      TypeError: if a leaf is not floating point or ``t`` is not a real number or array.
      ValueError: if a concrete ``t`` is negative or not finite, or ``t`` does not broadcast to
        the shape of a leaf.

    References:
      - Donoho, D. L. (1995). De-noising by soft-thresholding. IEEE Trans. Inf. Theory 41(3).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import prox
      >>> print(prox.soft_threshold(jnp.array([-3.0, 0.5, 2.0]), 1.0))
      [-2.  0.  1.]
      >>> print(prox.soft_threshold({"w": jnp.array([4.0])}, 1.0))  # any pytree
      {'w': Array([3.], dtype=float32)}
      >>> prox.prox_l1 is prox.soft_threshold  # the same function by its prox name
      True
    """
    fn = "soft_threshold"
    shapes = _check_hypers(fn, {"t": t}, {"t": {"low": 0.0}})
    return _map(
        lambda v: subgrad.sign(v) * subgrad.relu(subgrad.abs(v) - _cast(t, v)), x, fn, shapes
    )


prox_l1 = soft_threshold


def prox_elastic_net(
    x: PyTree[Float[ArrayLike, " ..."]],
    t: Real[ArrayLike, " ..."],
    *,
    l1_ratio: Real[ArrayLike, " ..."],
) -> PyTree[Float[Array, " ..."]]:
    """Prox of ``t (l1_ratio ||x||_1 + (1 - l1_ratio) ||x||^2 / 2)``.

    Closed form: ``soft_threshold(x, t l1_ratio) / (1 + t (1 - l1_ratio))``.

    Args:
      x: pytree of floating-point arrays.
      t: step ``>= 0``.
      l1_ratio: mix in ``[0, 1]``; 1 is the lasso, 0 is ridge.

    References:
      - Zou, H. and Hastie, T. (2005). Regularization and variable selection via the elastic net.
      - JRSS B 67(2).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import prox
      >>> print(prox.prox_elastic_net(jnp.array([3.0]), 1.0, l1_ratio=0.5))  # (3 - 0.5) / 1.5
      [1.6666666]
    """
    fn = "prox_elastic_net"
    shapes = _check_hypers(
        fn,
        {"t": t, "l1_ratio": l1_ratio},
        {"t": {"low": 0.0}, "l1_ratio": {"low": 0.0, "high": 1.0}},
    )

    def leaf(v):
        tt, a = _cast(t, v), _cast(l1_ratio, v)
        shrunk = subgrad.sign(v) * subgrad.relu(subgrad.abs(v) - tt * a)
        return shrunk / (1 + tt * (1 - a))

    return _map(leaf, x, fn, shapes)


def prox_pinball(
    x: PyTree[Float[ArrayLike, " ..."]],
    t: Real[ArrayLike, " ..."],
    *,
    tau: Real[ArrayLike, " ..."],
) -> PyTree[Float[Array, " ..."]]:
    """Prox of ``t rho_tau(x)`` with ``rho_tau(x) = max(tau x, (tau - 1) x)``.

    Closed form: ``x - t tau`` if ``x > t tau``; ``x + t (1 - tau)`` if ``x < -t (1 - tau)``;
    0 otherwise. For a residual ``r = y - q``, apply it to ``r`` and map back.

    Args:
      x: pytree of floating-point arrays.
      t: step ``>= 0``.
      tau: quantile level in ``(0, 1)``, a scalar or an array broadcastable to every leaf.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import prox
      >>> print(prox.prox_pinball(jnp.array([-1.0, 0.05, 2.0]), 1.0, tau=0.9))
      [-0.9  0.   1.1]
    """
    fn = "prox_pinball"
    shapes = _check_hypers(
        fn,
        {"t": t, "tau": tau},
        {"t": {"low": 0.0}, "tau": {"low": 0.0, "high": 1.0, "low_open": True, "high_open": True}},
    )

    def leaf(v):
        tt, q = _cast(t, v), _cast(tau, v)
        return v - jnp.clip(v, -tt * (1 - q), tt * q)

    return _map(leaf, x, fn, shapes)


def prox_huber(
    x: PyTree[Float[ArrayLike, " ..."]],
    t: Real[ArrayLike, " ..."],
    *,
    delta: Real[ArrayLike, " ..."] = 1.0,
) -> PyTree[Float[Array, " ..."]]:
    """Prox of ``t huber_delta(x)``, ``huber_delta(x) = x^2/2`` if ``|x| <= delta`` else
    ``delta (|x| - delta/2)``.

    Closed form: ``x / (1 + t)`` if ``|x| <= delta (1 + t)``, else ``x - t delta sign(x)``.

    Args:
      x: pytree of floating-point arrays.
      t: step ``>= 0``.
      delta: Huber threshold ``> 0``.

    References:
      - Parikh, N. and Boyd, S. (2014). Proximal Algorithms, sec. 6.5.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import prox
      >>> print(prox.prox_huber(jnp.array([0.5, 4.0]), 1.0, delta=1.0))  # x / 2; x - 1
      [0.25 3.  ]
    """
    fn = "prox_huber"
    shapes = _check_hypers(
        fn, {"t": t, "delta": delta}, {"t": {"low": 0.0}, "delta": {"low": 0.0, "low_open": True}}
    )

    def leaf(v):
        tt, d = _cast(t, v), _cast(delta, v)
        return jnp.where(subgrad.abs(v) <= d * (1 + tt), v / (1 + tt), v - tt * d * subgrad.sign(v))

    return _map(leaf, x, fn, shapes)
