"""Small models for the runner's studies (``model: {name: linear}`` in a config)."""

from l1jax.models.linear import Linear as Linear

__all__ = ["Linear"]
