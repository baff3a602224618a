"""l1jax: L1-family losses with honest subgradients, proximal and non-smooth optimization in JAX."""

from l1jax import image as image
from l1jax import losses as losses
from l1jax import optim as optim
from l1jax import penalties as penalties
from l1jax import prox as prox
from l1jax import solvers as solvers
from l1jax import sr as sr
from l1jax import subgrad as subgrad

__version__ = "0.1.0"
