"""Argument checks and small helpers shared by the transformations in ``l1jax.optim``."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import optax
from jax.typing import ArrayLike

from l1jax._checks import check_range
from l1jax._tree import PyTree


def as_schedule(step: ArrayLike | optax.Schedule, *, name: str, fn: str) -> optax.Schedule:
    """A callable is taken as a schedule; a number must be positive and finite."""
    if callable(step):
        return step
    check_range(name, step, low=0.0, low_open=True, fn=fn)
    return lambda count: step


def check_positive_scalar(value: ArrayLike, *, name: str, fn: str) -> None:
    check_range(name, value, low=0.0, low_open=True, fn=fn)
    if jnp.ndim(value) != 0:
        raise ValueError(f"{fn}: {name} must be a scalar, got shape {jnp.shape(value)}.")


def check_callable(value, *, name: str, fn: str, expected: str) -> None:
    if not callable(value):
        raise TypeError(f"{fn}: {name} must be a callable {expected}, got {value!r}.")


def require_params(params: PyTree | None, *, fn: str) -> PyTree:
    if params is None:
        raise ValueError(
            f"{fn}: update needs the current params, call update(grads, state, params); "
            "got params=None."
        )
    return params


def require_scalar_value(value: ArrayLike | None, *, fn: str) -> jax.Array:
    if value is None:
        raise ValueError(
            f"{fn}: update needs the loss at the current params as a keyword argument, "
            "call update(grads, state, params, value=loss(params)); got value=None."
        )
    value = jnp.asarray(value)
    if value.ndim != 0:
        raise ValueError(f"{fn}: value must be a scalar loss, got shape {value.shape}.")
    return value


def float_dtype(tree: PyTree) -> jnp.dtype:
    """The floating dtype that the leaves of ``tree`` promote to (default float if none)."""
    dtypes = [jnp.asarray(leaf).dtype for leaf in jax.tree_util.tree_leaves(tree)]
    dtype = jnp.result_type(*dtypes) if dtypes else jnp.result_type(float)
    if not jnp.issubdtype(dtype, jnp.floating):
        dtype = jnp.result_type(float)
    return dtype


def scale_tree(scale: jax.Array, tree: PyTree) -> PyTree:
    """``scale * tree`` leaf by leaf, keeping each leaf's dtype."""
    return jax.tree_util.tree_map(lambda v: jnp.asarray(scale, v.dtype) * v, tree)


def safe_divide(num: jax.Array, den: jax.Array) -> jax.Array:
    """``num / den`` where ``den > 0`` and 0 elsewhere, without a NaN on either branch."""
    positive = den > 0
    return jnp.where(positive, num / jnp.where(positive, den, 1), 0)


Prox = Callable[[PyTree, jax.Array], PyTree]
