"""Small pytree helpers shared by penalties, prox and the optimizers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import jax
import jax.numpy as jnp

from l1jax._checks import as_array

PyTree = Any


def tree_sum(fn: Callable[[jax.Array], jax.Array], tree: PyTree) -> jax.Array:
    """``sum(fn(leaf).sum() for leaf in leaves(tree))`` as one scalar."""
    leaves = jax.tree_util.tree_leaves(tree)
    if not leaves:
        return jnp.zeros(())
    # Never the start value 0 of sum: there is at least one leaf.
    return cast(jax.Array, sum(jnp.sum(fn(jnp.asarray(leaf))) for leaf in leaves))


def tree_check_float(tree: PyTree, name: str, fn: str = "") -> None:
    """Raises ``TypeError`` naming the leaf (``name`` + its key path) that is not floating point."""
    prefix = f"{fn}: " if fn else ""
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        where = jax.tree_util.keystr(path) or "<root>"
        dtype = as_array(leaf, f"{name}{where}", fn=fn, expected="a floating-point array").dtype
        if not jnp.issubdtype(dtype, jnp.floating):
            raise TypeError(f"{prefix}{name}{where} must be floating point, got dtype {dtype}.")
