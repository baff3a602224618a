"""The value every solver in :mod:`l1jax.solvers` returns, and the warning for uncertified ones."""

from __future__ import annotations

from typing import NamedTuple

from jaxtyping import Array, Bool, Float, Int


class SolverResult(NamedTuple):
    """Solution and its certificate (leading axes added by ``vmap`` or a 1-D ``tau``/``lam``).

    A NamedTuple so it passes through ``jit``, ``vmap`` and ``tree_map`` unchanged.
    ``converged`` is ``gap <= tol``: the solver certified the point from primal and dual
    quantities, not from the iterates having stopped changing.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import solvers
      >>> res = solvers.lad(jnp.ones((3, 1)), jnp.array([0.0, 1.0, 5.0]))
      >>> coef, objective, num_steps, converged, gap = res  # a NamedTuple
      >>> print(round(float(coef[0]), 3), round(float(objective), 3), bool(converged))
      1.0 1.667 True
    """

    # ``*batch``: the leading axes of a vmap or of a 1-D tau/lam, none for one problem.
    coef: Float[Array, "*batch d"]  # minimiser, shape (d,) (``x`` of shape (n,) for basis pursuit)
    objective: Float[Array, "*batch"]  # objective at ``coef``, in the function's documented form
    num_steps: Int[Array, "*batch"]  # iterations of the main loop, int32
    converged: Bool[Array, "*batch"]  # gap <= tol
    gap: Float[Array, "*batch"]  # certified bound on (objective - optimum) / objective; inf if none


class ConvergenceWarning(UserWarning):
    """A solve called outside ``jit`` returned a result that its certificate does not cover.

    Examples:
      >>> import warnings, jax.numpy as jnp
      >>> from l1jax import solvers
      >>> X = jnp.stack([jnp.ones(30), jnp.arange(30.0)], axis=1)
      >>> with warnings.catch_warnings(record=True) as caught:
      ...     warnings.simplefilter("always")
      ...     res = solvers.lad(X, jnp.sin(jnp.arange(30.0)), max_steps=1, polish=False)
      >>> print(bool(res.converged), caught[0].category is solvers.ConvergenceWarning)
      False True
    """
