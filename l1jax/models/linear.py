"""A linear model ``f(x) = x W^T + b`` as an ``eqx.Module``."""

from __future__ import annotations

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

__all__ = ["Linear"]


class Linear(eqx.Module):
    """``f(x) = x @ weight.T + bias``, with a scalar output by default.

    Attributes:
      weight: ``(in_features,)`` for a scalar output, else ``(out_features, in_features)``.
      bias: ``()`` or ``(out_features,)``; None without a bias.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import losses, models
      >>> model = models.Linear(3, key=jax.random.key(0))  # scalar output, zero init
      >>> x, y = jnp.ones((8, 3)), jnp.full((8,), 2.0)
      >>> grads = jax.grad(lambda m: losses.l1(m(x), y))(model)
      >>> print(model(x).shape, grads.weight.tolist(), float(grads.bias))
      (8,) [-1.0, -1.0, -1.0] -1.0
    """

    weight: jax.Array
    bias: jax.Array | None
    in_features: int = eqx.field(static=True)
    out_features: int | None = eqx.field(static=True)

    def __init__(
        self,
        in_features: int,
        out_features: int | None = None,
        *,
        use_bias: bool = True,
        init: Literal["zeros", "normal"] = "zeros",
        key: jax.Array,
    ):
        """Args:
        in_features: input size.
        out_features: output size; None for a scalar output per example.
        use_bias: whether to add a bias.
        init: ``"zeros"`` or ``"normal"`` (weights ~ N(0, 1/in_features), bias 0).
        key: PRNG key (used by ``init="normal"``).
        """
        if init not in ("zeros", "normal"):
            raise ValueError(f"Linear: init must be 'zeros' or 'normal', got init={init!r}")
        shape = (in_features,) if out_features is None else (out_features, in_features)
        if init == "zeros":
            self.weight = jnp.zeros(shape)
        else:
            self.weight = jax.random.normal(key, shape) / jnp.sqrt(in_features)
        bias_shape = () if out_features is None else (out_features,)
        self.bias = jnp.zeros(bias_shape) if use_bias else None
        self.in_features, self.out_features = in_features, out_features

    def __call__(
        self, x: Float[ArrayLike, "*batch in_features"]
    ) -> Float[Array, "*batch"] | Float[Array, "*batch out_features"]:
        """``x`` of shape ``(..., in_features)`` -> ``(...)`` or ``(..., out_features)``."""
        x = jnp.asarray(x)
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(
                f"Linear: x must end with in_features={self.in_features}, got x.shape={x.shape}"
            )
        y = x @ self.weight.T
        if self.bias is not None:
            y = y + jnp.broadcast_to(self.bias, y.shape)
        return y
