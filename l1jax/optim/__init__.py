"""Optax transformations for non-smooth optimization.

* :func:`subgradient_method` with a constant step or a schedule (:func:`inverse_sqrt_schedule`,
  :func:`inverse_time_schedule`), and :func:`polyak_subgradient` when ``f*`` is known;
* :func:`track_best` and :func:`iterate_averaging`, wrappers that keep the best iterate and the
  averaged iterate in the state, read back with :func:`get_best_params`,
  :func:`get_best_value` and :func:`get_averaged_params`;
* :func:`ista` and :func:`fista` (proximal gradient, plain and accelerated) with any prox from
  :mod:`l1jax.prox`, a fixed step or backtracking; :func:`ista_l1` and :func:`fista_l1` for the
  lasso penalty.

All are :class:`optax.GradientTransformationExtraArgs`: they chain with :func:`optax.chain`,
work on pytrees and under ``jit``, and return updates to be added to the params.
"""

from l1jax.optim._proximal import FistaState as FistaState
from l1jax.optim._proximal import ProximalGradientState as ProximalGradientState
from l1jax.optim._proximal import fista as fista
from l1jax.optim._proximal import fista_l1 as fista_l1
from l1jax.optim._proximal import get_fista_iterate as get_fista_iterate
from l1jax.optim._proximal import ista as ista
from l1jax.optim._proximal import ista_l1 as ista_l1
from l1jax.optim._schedules import inverse_sqrt_schedule as inverse_sqrt_schedule
from l1jax.optim._schedules import inverse_time_schedule as inverse_time_schedule
from l1jax.optim._subgradient import PolyakSubgradientState as PolyakSubgradientState
from l1jax.optim._subgradient import SubgradientState as SubgradientState
from l1jax.optim._subgradient import polyak_subgradient as polyak_subgradient
from l1jax.optim._subgradient import subgradient_method as subgradient_method
from l1jax.optim._tracking import IterateAveragingState as IterateAveragingState
from l1jax.optim._tracking import TrackBestState as TrackBestState
from l1jax.optim._tracking import get_averaged_params as get_averaged_params
from l1jax.optim._tracking import get_best_params as get_best_params
from l1jax.optim._tracking import get_best_value as get_best_value
from l1jax.optim._tracking import iterate_averaging as iterate_averaging
from l1jax.optim._tracking import track_best as track_best

__all__ = [
    "FistaState",
    "IterateAveragingState",
    "PolyakSubgradientState",
    "ProximalGradientState",
    "SubgradientState",
    "TrackBestState",
    "fista",
    "fista_l1",
    "get_averaged_params",
    "get_best_params",
    "get_best_value",
    "get_fista_iterate",
    "inverse_sqrt_schedule",
    "inverse_time_schedule",
    "ista",
    "ista_l1",
    "iterate_averaging",
    "polyak_subgradient",
    "subgradient_method",
    "track_best",
]
