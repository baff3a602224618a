"""The value every solver in :mod:`l1jax.solvers` returns."""

from __future__ import annotations

from typing import NamedTuple

import jax


class SolverResult(NamedTuple):
    """Solution and diagnostics of one solve (leading axes added by ``vmap`` or array ``tau``).

    A NamedTuple so it passes through ``jit``, ``vmap`` and ``tree_map`` unchanged.
    """

    coef: jax.Array  # minimiser, shape (d,) (``x`` of shape (n,) for basis pursuit)
    objective: jax.Array  # objective at ``coef``, scalar, in the function's documented form
    num_steps: jax.Array  # iterations of the main loop, int32
    converged: jax.Array  # bool: tolerance met or optimality certified before ``max_steps``
