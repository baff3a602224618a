"""FISTA and the Polyak subgradient method as optax transformations, in a plain optax loop.

FISTA (``optim.fista_l1``) minimises the lasso objective ``||y - X w||^2 / (2n) + lam ||w||_1``
with step ``1 / L``; the Polyak method (``optim.polyak_subgradient``) minimises the LAD
objective ``mean |y - X w|`` with the step ``(f(w) - f*) / ||g||^2``, given ``f*``. Both optima
come from ``l1jax.solvers`` (certified to 1e-10), so the loop prints the true gaps
``f(w_k) - f*``.

    python examples/fista_polyak.py [--steps 300]
"""

import argparse

import jax
import jax.numpy as jnp
import optax

from l1jax import losses, optim, solvers


def run(tx, f, w, steps, *, with_value):
    state = tx.init(w)

    @jax.jit
    def step(w, state):
        value, grads = jax.value_and_grad(f)(w)
        extra = {"value": value} if with_value else {}
        updates, state = tx.update(grads, state, w, **extra)
        return optax.apply_updates(w, updates), state

    for _ in range(steps):
        w, state = step(w, state)
    return w, state


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    args = parser.parse_args(argv)
    with jax.enable_x64(True):
        kx, kn = jax.random.split(jax.random.key(0))
        n, d = 100, 10
        X = jax.random.normal(kx, (n, d), jnp.float64)
        y = X @ jnp.arange(1.0, d + 1) + jax.random.laplace(kn, (n,), jnp.float64)
        w0 = jnp.zeros(d)

        lam = 0.1
        lasso_f = lambda w: 0.5 * jnp.mean((y - X @ w) ** 2)  # noqa: E731 - the smooth part
        lasso_star = float(solvers.lasso(X, y, lam).objective)
        L = float(jnp.linalg.eigvalsh(X.T @ X / n)[-1])
        _, state = run(optim.fista_l1(1.0 / L, lam=lam), lasso_f, w0, args.steps, with_value=False)
        w = optim.get_fista_iterate(state)  # the iterate x_k the O(1/k^2) bound is about
        fista_gap = float(lasso_f(w) + lam * jnp.sum(jnp.abs(w))) - lasso_star

        lad_f = lambda w: losses.l1(X @ w, y)  # noqa: E731
        lad_star = float(solvers.lad(X, y).objective)
        tx = optim.track_best(optim.polyak_subgradient(lad_star))
        _, state = run(tx, lad_f, w0, args.steps, with_value=True)
        polyak_gap = float(optim.get_best_value(state)) - lad_star
    print(f"FISTA, {args.steps} steps:  lasso objective - optimum = {fista_gap:.2e}")
    print(f"Polyak, {args.steps} steps: best LAD objective - optimum = {polyak_gap:.2e}")
    return {"fista_gap": fista_gap, "polyak_gap": polyak_gap}


if __name__ == "__main__":
    main()
