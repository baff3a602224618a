"""A lasso path in one call: 50 penalties from ``lam_max`` (where every coefficient is 0) down
to ``lam_max / 1000``, each solution certified by its duality gap.

On the CPU the path runs from the largest penalty down, each solve warm-started at the previous
solution; on accelerators the penalties are batched with ``vmap``. The data have 5 true
non-zero coefficients among 50.

    python examples/lasso_path.py
"""

import jax
import jax.numpy as jnp

from l1jax import solvers


def main(argv=None):
    del argv
    kx, kn = jax.random.split(jax.random.key(0))
    n, d = 200, 50
    X = jax.random.normal(kx, (n, d))
    true = jnp.zeros(d).at[:5].set(jnp.array([3.0, -2.0, 1.5, 1.0, -0.5]))
    y = X @ true + 0.5 * jax.random.normal(kn, (n,))
    with jax.enable_x64(True):
        X, y = X.astype(jnp.float64), y.astype(jnp.float64)
        lam_max = float(jnp.max(jnp.abs(X.T @ y)) / n)  # the smallest lam with coef = 0
        lams = lam_max * jnp.geomspace(1.0, 1e-3, 50)
        path = solvers.lasso(X, y, lams)
        assert bool(jnp.all(path.converged)), path.gap
        active = jnp.sum(path.coef != 0, axis=1)
        # The first penalty (from the top) at which each true coefficient is non-zero.
        enters = [float(lams[int(jnp.argmax(path.coef[:, j] != 0))]) for j in range(5)]
        false = jnp.any(path.coef[:, 5:] != 0, axis=1)  # a zero coefficient of the truth is on
        first_false = float(lams[int(jnp.argmax(false))]) if bool(jnp.any(false)) else 0.0
    print(f"lam_max = {lam_max:.3f}; active coefficients along the path:")
    print(" ".join(str(int(a)) for a in active))
    for j, lam in enumerate(enters):
        print(f"coefficient {j} (true {float(true[j]):+.1f}) enters at lam = {lam:.3f}")
    print(f"the first coefficient that is zero in the truth enters at lam = {first_false:.3f}")
    return {
        "lam_max": lam_max,
        "active": [int(a) for a in active],
        "enters": enters,
        "first_false": first_false,
    }


if __name__ == "__main__":
    main()
