"""l1jax: L1-family losses with honest subgradients, proximal and non-smooth optimization in JAX.

``import l1jax`` loads the numerics (``losses``, ``subgrad``, ``penalties``, ``prox``, ``optim``,
``solvers``, ``image``, ``sr``, ``datasets``, ``models``); ``l1jax.runner``, the experiment
runner, is loaded on first use (the numerics never import it).
"""

import importlib

from l1jax import datasets as datasets
from l1jax import image as image
from l1jax import losses as losses
from l1jax import models as models
from l1jax import optim as optim
from l1jax import penalties as penalties
from l1jax import prox as prox
from l1jax import solvers as solvers
from l1jax import sr as sr
from l1jax import subgrad as subgrad

__version__ = "0.1.0"


def __getattr__(name: str):
    if name == "runner":
        return importlib.import_module("l1jax.runner")
    raise AttributeError(f"module 'l1jax' has no attribute {name!r}")
