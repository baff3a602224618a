"""Regularisation penalties over pytrees of parameters, with the same kink rule as subgrad."""

from __future__ import annotations

import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, PyTree, Real

from l1jax import subgrad
from l1jax._checks import check_scalar
from l1jax._tree import tree_check_float, tree_sum

__all__ = ["l1", "l2_squared", "elastic_net"]


def l1(params: PyTree[Float[ArrayLike, " ..."]]) -> Float[Array, ""]:
    """``||params||_1 = sum |p|`` over every leaf.

    The gradient at a zero entry is 0 (the minimum-norm subgradient of ``|.|``), so weight decay
    does not push a parameter that is exactly 0 off zero. Its prox is
    :func:`l1jax.prox.soft_threshold`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import penalties
      >>> params = {"w": jnp.array([1.0, -2.0]), "b": jnp.array(3.0)}
      >>> print(float(penalties.l1(params)))
      6.0
    """
    tree_check_float(params, "params", "l1")
    return tree_sum(subgrad.abs, params)


def l2_squared(params: PyTree[Float[ArrayLike, " ..."]]) -> Float[Array, ""]:
    """``||params||_2^2 / 2`` over every leaf.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import penalties
      >>> print(float(penalties.l2_squared({"w": jnp.array([1.0, -2.0])})))  # (1 + 4) / 2
      2.5
    """
    tree_check_float(params, "params", "l2_squared")
    return 0.5 * tree_sum(jnp.square, params)


def elastic_net(
    params: PyTree[Float[ArrayLike, " ..."]], l1_ratio: Real[ArrayLike, ""]
) -> Float[Array, ""]:
    """``l1_ratio ||p||_1 + (1 - l1_ratio) ||p||_2^2 / 2`` (scikit-learn's parametrisation, unit
    strength; multiply by ``alpha`` outside). Its prox is :func:`l1jax.prox.prox_elastic_net`.

    Args:
      params: pytree of floating-point arrays.
      l1_ratio: mix in ``[0, 1]``, a real scalar (concrete or traced).

    Returns:
      A scalar.

    Raises:
      TypeError: if a leaf is not floating point or ``l1_ratio`` is not a real number.
      ValueError: if ``l1_ratio`` is not a scalar, or a concrete one leaves ``[0, 1]``.

    References:
      - Zou, H. and Hastie, T. (2005). Regularization and variable selection via the elastic net.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import penalties
      >>> w = {"w": jnp.array([1.0, -2.0])}  # l1 = 3, l2_squared = 2.5
      >>> print(float(penalties.elastic_net(w, l1_ratio=0.5)))
      2.75
    """
    check_scalar("l1_ratio", l1_ratio, low=0.0, high=1.0, fn="elastic_net")
    tree_check_float(params, "params", "elastic_net")
    return jnp.multiply(l1_ratio, l1(params)) + jnp.multiply(1 - l1_ratio, l2_squared(params))
