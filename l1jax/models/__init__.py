"""Small models, registered in :data:`l1jax.registry.MODELS` by name."""

from l1jax.models.linear import Linear as Linear
from l1jax.registry import MODELS

MODELS.register("linear", Linear)

__all__ = ["Linear"]
