"""An equinox MLP trained with ``l1jax.losses.l1`` and optax on data with gross outliers.

``y = sin(x) + noise``, and a fraction of the responses shifted by +8. Least squares follows
the conditional mean, which the outliers pull up by about ``fraction * 8``; the L1 loss follows
the conditional median, which they barely move. Both models are the same MLP, the same Adam
and the same steps; only the loss differs.

    python examples/robust_mlp.py [--steps 1500] [--fraction 0.2]
"""

import argparse

import equinox as eqx
import jax
import jax.numpy as jnp
import optax

from l1jax import losses


def make_data(key, n, fraction):
    kx, kn, ko = jax.random.split(key, 3)
    x = jax.random.uniform(kx, (n, 1), minval=-3.0, maxval=3.0)
    y = jnp.sin(x[:, 0]) + 0.1 * jax.random.normal(kn, (n,))
    outlier = jax.random.uniform(ko, (n,)) < fraction
    return x, jnp.where(outlier, y + 8.0, y)


def train(loss_fn, x, y, *, steps, key):
    model = eqx.nn.MLP(1, "scalar", 32, 2, activation=jnp.tanh, key=key)
    opt = optax.adam(1e-2)
    state = opt.init(eqx.filter(model, eqx.is_inexact_array))

    @eqx.filter_jit
    def step(model, state):
        def loss(m):
            return loss_fn(jax.vmap(m)(x), y)

        value, grads = eqx.filter_value_and_grad(loss)(model)
        updates, state = opt.update(grads, state, eqx.filter(model, eqx.is_inexact_array))
        return eqx.apply_updates(model, updates), state, value

    for _ in range(steps):
        model, state, _ = step(model, state)
    return model


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--n", type=int, default=256)
    parser.add_argument("--fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    kdata, kmodel = jax.random.split(jax.random.key(args.seed))
    x, y = make_data(kdata, args.n, args.fraction)
    grid = jnp.linspace(-3.0, 3.0, 201)[:, None]
    errors = {}
    for name, loss_fn in (("l1", losses.l1), ("mse", losses.mse)):
        model = train(loss_fn, x, y, steps=args.steps, key=kmodel)
        errors[name] = float(jnp.mean(jnp.abs(jax.vmap(model)(grid) - jnp.sin(grid[:, 0]))))
        print(f"{name:4s} mean |f(x) - sin(x)| over [-3, 3]: {errors[name]:.3f}")
    return errors


if __name__ == "__main__":
    main()
