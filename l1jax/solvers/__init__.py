"""Fast, jit-compiled and vmap-able solvers for L1 problems, with LP references.

* :func:`lad` and :func:`quantile_regression`: interior point, the same with Portnoy-Koenker
  preprocessing (``"auto"``, the default, picks it for large ``n``), ADMM, IRLS.
* :func:`lasso`: working sets (``"auto"`` picks them for ``d > 64``), FISTA, ISTA, ADMM.
* :func:`basis_pursuit`: interior point (default), ADMM.

Each returns a :class:`SolverResult` ``(coef, objective, num_steps, converged, gap)``: ``gap`` is
a certified bound on the relative distance to the optimum, from primal and dual quantities, and
``converged`` is ``gap <= tol``. An uncertified result of a call outside ``jit`` also raises a
:class:`ConvergenceWarning` that names the remedy.
:mod:`l1jax.solvers.reference` has the SciPy/scikit-learn ground truths.

``coef`` and ``objective`` are differentiable in every array argument, in forward and reverse
mode, under ``jit`` and ``vmap``: implicit differentiation of the optimality conditions of the
returned solution (``l1jax.solvers._implicit``), not of the iterations; each solver's
"Derivatives" paragraph states the rule where the solution is not differentiable.
"""

from l1jax.solvers import reference as reference
from l1jax.solvers._basis_pursuit import basis_pursuit as basis_pursuit
from l1jax.solvers._inference import QuantileInference as QuantileInference
from l1jax.solvers._inference import quantile_inference as quantile_inference
from l1jax.solvers._lad import lad as lad
from l1jax.solvers._lasso import lasso as lasso
from l1jax.solvers._quantile import quantile_regression as quantile_regression
from l1jax.solvers._result import ConvergenceWarning as ConvergenceWarning
from l1jax.solvers._result import SolverResult as SolverResult

__all__ = [
    "SolverResult",
    "ConvergenceWarning",
    "lad",
    "quantile_regression",
    "lasso",
    "basis_pursuit",
    "quantile_inference",
    "QuantileInference",
    "reference",
]
