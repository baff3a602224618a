"""Calls of l1jax's public API as a user writes them: tests/test_typing.py type-checks this file
with mypy (never run). Each line uses an annotation the API declares: Literal choices, the
result types, optax transformations, the jaxtyping shapes (an ``ArrayLike`` or ``Array`` to a
checker)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax

import l1jax
from l1jax import image, losses, models, optim, penalties, prox, solvers
from l1jax.solvers import reference

p, t = jnp.ones(4), jnp.zeros(4)
value: jax.Array = losses.l1(p, t, reduction="sum")
value = losses.pinball(p, t, tau=0.9, reduction="none")
value = losses.huber(p, t, delta=0.5, weights=jnp.ones(4))
value = penalties.elastic_net({"w": p}, 0.5)
shrunk = prox.soft_threshold({"w": p}, 0.1)
fit: solvers.SolverResult = solvers.lad(jnp.ones((4, 1)), t, method="pfn")
coef: jax.Array = fit.coef
quantiles = solvers.quantile_regression(jnp.ones((4, 1)), t, 0.5, method="ipm", tol=1e-6)
path = solvers.lasso(jnp.ones((4, 2)), t, jnp.array([1.0, 0.1]), method="ws")
sparse = solvers.basis_pursuit(jnp.ones((1, 3)), jnp.ones(1), method="admm")
tx: optax.GradientTransformationExtraArgs = optim.fista(0.1, prox.soft_threshold)
averaged = optim.iterate_averaging(optim.subgradient_method(0.1), weights="step")
polyak = optim.track_best(optim.polyak_subgradient(0.0))
inference: solvers.QuantileInference = solvers.quantile_inference(
    jnp.ones((4, 1)), t, fit, tau=0.5, vcov="iid"
)
se: jax.Array = inference.se
lp_coef, lp_objective = reference.lad_lp(np.ones((4, 1)), np.zeros(4))
lp_value: float = lp_objective + reference.basis_pursuit_lp(np.ones((1, 2)), np.ones(1))[1]
images = jnp.ones((2, 16, 16, 3))
scores: jax.Array = image.psnr(images, images, max_val=1.0)
scores = image.ssim_loss(images, images, weights=jnp.ones(2), reduction="none")
luma: jax.Array = image.rgb_to_y(images)
outputs: jax.Array = models.Linear(3, key=jax.random.key(0))(jnp.ones((5, 3)))
version: str = l1jax.__version__
