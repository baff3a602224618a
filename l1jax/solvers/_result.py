"""The value every solver in :mod:`l1jax.solvers` returns, and the warning for uncertified ones."""

from __future__ import annotations

from typing import NamedTuple

import jax


class SolverResult(NamedTuple):
    """Solution and its certificate (leading axes added by ``vmap`` or a 1-D ``tau``/``lam``).

    A NamedTuple so it passes through ``jit``, ``vmap`` and ``tree_map`` unchanged.
    ``converged`` is ``gap <= tol``: the solver certified the point from primal and dual
    quantities, not from the iterates having stopped changing.
    """

    coef: jax.Array  # minimiser, shape (d,) (``x`` of shape (n,) for basis pursuit)
    objective: jax.Array  # objective at ``coef``, scalar, in the function's documented form
    num_steps: jax.Array  # iterations of the main loop, int32
    converged: jax.Array  # bool: gap <= tol
    gap: jax.Array  # certified bound on (objective - optimum) / objective; inf when none


class ConvergenceWarning(UserWarning):
    """A solve called outside ``jit`` returned a result that its certificate does not cover."""
