"""The tables a config picks its pieces from by name: losses, optimizers, schedules, models and
datasets.

Every entry is listed here, from the module that defines it; nothing registers itself on import.
A study adds its own pieces from its script::

    from l1jax.runner.registry import OPTIMIZERS

    @OPTIMIZERS.register("my_sgd")
    def my_sgd(learning_rate, *, momentum=0.0) -> optax.GradientTransformation: ...
"""

from __future__ import annotations

import inspect
from collections.abc import Callable

import optax

from l1jax import datasets, image, losses, models, optim, sr
from l1jax.runner import schedules
from l1jax.runner._registry import Registry, UnknownNameError, check_kwargs, split_spec

__all__ = [
    "Registry",
    "UnknownNameError",
    "split_spec",
    "check_kwargs",
    "LOSSES",
    "OPTIMIZERS",
    "SCHEDULES",
    "MODELS",
    "DATASETS",
]

LOSSES: Registry[Callable] = Registry("loss", {**losses.LOSSES, **image.LOSSES})
"""Every loss of :data:`l1jax.losses.LOSSES` and :data:`l1jax.image.LOSSES`."""

# optax functions that take a learning rate but are not drop-in optimizers.
_OPTAX_EXCLUDED = frozenset({"lbfgs", "scale_by_learning_rate", "scale_by_rprop"})


def _optax_optimizer(name: str):
    if name in _OPTAX_EXCLUDED or name.startswith("_"):
        return None
    fn = getattr(optax, name, None)
    if not inspect.isfunction(fn):
        return None
    try:
        params = inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return None
    return fn if "learning_rate" in params else None


def _optax_names():
    return [n for n in dir(optax) if _optax_optimizer(n) is not None]


def _subgradient(learning_rate):
    """:func:`l1jax.optim.subgradient_method` with step ``learning_rate`` (or its schedule)."""
    return optim.subgradient_method(learning_rate)


def _ista_l1(learning_rate, *, lam: float):
    """:func:`l1jax.optim.ista_l1` (a constant schedule: ISTA takes a fixed step)."""
    return optim.ista_l1(learning_rate, lam=lam)


def _fista_l1(learning_rate, *, lam: float):
    """:func:`l1jax.optim.fista_l1` (a constant schedule: FISTA takes a fixed step)."""
    return optim.fista_l1(learning_rate, lam=lam)


OPTIMIZERS: Registry[Callable] = Registry(
    "optimizer",
    {"subgradient": _subgradient, "ista_l1": _ista_l1, "fista_l1": _fista_l1},
    fallback=_optax_optimizer,
    fallback_names=_optax_names,
)
"""l1jax.optim's ``subgradient``, ``ista_l1`` and ``fista_l1``, and every optax optimizer
(``adam``, ``adamw``, ``sgd``, ...: the optax functions that take a ``learning_rate``).

Entries take ``learning_rate`` (a number or a schedule ``count -> rate``) and return an
``optax.GradientTransformation``.
"""

SCHEDULES: Registry[Callable] = Registry(
    "schedule",
    {
        "constant": schedules.constant,
        "inv_sqrt": schedules.inv_sqrt,
        "inv": schedules.inv,
        "cosine": schedules.cosine,
        "step": schedules.step,
    },
)
"""Step-size schedules ``(learning_rate, **keywords) -> optax.ScalarOrSchedule``; see
:mod:`l1jax.runner.schedules`."""

MODELS: Registry[Callable] = Registry(
    "model",
    {"linear": models.Linear, "srcnn": sr.SRCNN, "espcn": sr.ESPCN, "edsr": sr.EDSR},
)
"""Model constructors (``eqx.Module`` classes or functions) taking a ``key`` keyword."""

DATASETS: Registry[Callable] = Registry(
    "dataset", {"contaminated_linear": datasets.contaminated_linear}
)
"""Dataset builders ``(key, **kwargs) -> (examples, truth)``."""
