"""l1jax.prox against the definition prox_f(v) = argmin_x f(x) + (x - v)^2 / 2, and penalties."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import minimize_scalar

from l1jax import penalties, prox

V = np.array([-4.0, -1.2, -0.3, 0.0, 0.25, 0.9, 2.0, 7.5])


def _huber(x, delta):
    return np.where(np.abs(x) <= delta, 0.5 * x**2, delta * (np.abs(x) - 0.5 * delta))


# (operator, its keyword arguments, the scalar function f(x) such that prox is of t*f)
CASES = {
    "soft_threshold": (lambda v, t: prox.soft_threshold(v, t), np.abs),
    "elastic_net": (
        lambda v, t: prox.prox_elastic_net(v, t, l1_ratio=0.3),
        lambda x: 0.3 * np.abs(x) + 0.7 * 0.5 * x**2,
    ),
    "pinball": (
        lambda v, t: prox.prox_pinball(v, t, tau=0.2),
        lambda x: np.maximum(0.2 * x, -0.8 * x),
    ),
    "huber": (lambda v, t: prox.prox_huber(v, t, delta=0.7), lambda x: _huber(x, 0.7)),
}


def _argmin(f, v, t):
    res = minimize_scalar(
        lambda x: t * f(x) + 0.5 * (x - v) ** 2,
        bounds=(v - 50, v + 50),
        method="bounded",
        options={"xatol": 1e-10},
    )
    return res.x


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("t", [0.0, 0.5, 2.0])
def test_matches_definition(name, t, x64):
    op, f = CASES[name]
    got = np.asarray(jax.jit(op)(jnp.asarray(V), t))
    expected = np.array([_argmin(f, v, t) for v in V])
    np.testing.assert_allclose(got, expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(CASES))
def test_pytree_jit_vmap(name):
    op = CASES[name][0]
    tree = {"w": jnp.asarray(V.reshape(2, 4), jnp.float32), "b": (jnp.float32(1.5),)}
    out = jax.jit(op)(tree, 0.5)
    # Leaf by leaf, the prox of the flat vector: same structure, shapes and values.
    flat = op(jnp.asarray(np.append(V, 1.5), jnp.float32), 0.5)
    chex.assert_trees_all_close(out, {"w": flat[:8].reshape(2, 4), "b": (flat[8],)}, rtol=1e-6)
    steps = jnp.array([0.1, 1.0, 3.0])
    batched = jax.vmap(lambda s: op(jnp.asarray(V, jnp.float32), s))(steps)
    for i, s in enumerate([0.1, 1.0, 3.0]):
        np.testing.assert_allclose(
            np.asarray(batched[i]), np.asarray(op(jnp.asarray(V, jnp.float32), s)), rtol=1e-6
        )


# Closed forms at t = 1 on V: prox_{|.|}(v) = sign(v) max(|v| - 1, 0); elastic net (l1_ratio
# 0.5) shrinks by 0.5 and divides by 1.5; pinball (tau 0.2) moves v > 0.2 down by 0.2, v < -0.8
# up by 0.8, else to 0; Huber (delta 0.7) halves |v| <= 1.4, else moves v by 0.7 towards 0.
def _soft(v, t):
    return np.sign(v) * np.maximum(np.abs(v) - t, 0.0)


PROX_CLOSED = {
    "soft_threshold": (lambda v: prox.soft_threshold(v, 1.0), lambda v: _soft(v, 1.0)),
    "elastic_net": (
        lambda v: prox.prox_elastic_net(v, 1.0, l1_ratio=0.5),
        lambda v: _soft(v, 0.5) / 1.5,
    ),
    "pinball": (
        lambda v: prox.prox_pinball(v, 1.0, tau=0.2),
        lambda v: np.where(v > 0.2, v - 0.2, np.where(v < -0.8, v + 0.8, 0.0)),
    ),
    "huber": (
        lambda v: prox.prox_huber(v, 1.0, delta=0.7),
        lambda v: np.where(np.abs(v) <= 1.4, v / 2, v - 0.7 * np.sign(v)),
    ),
}


class ProxVariantsTest(chex.TestCase):
    """Every prox on a pytree against its closed form, jitted and not (chex.variants)."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_closed_form_on_a_pytree(self):
        w, b = V[:6].reshape(2, 3), V[6:]
        tree = {"w": jnp.asarray(w, jnp.float32), "b": (jnp.asarray(b, jnp.float32),)}
        for name, (op, closed) in PROX_CLOSED.items():
            got = self.variant(op)(tree)
            expected = {"w": closed(w).astype(np.float32), "b": (closed(b).astype(np.float32),)}
            chex.assert_trees_all_close(got, expected, atol=1e-6, custom_message=name)


def test_soft_threshold_closed_form_and_per_coordinate_threshold():
    x = jnp.array([-3.0, -0.5, 0.0, 0.5, 3.0])
    np.testing.assert_array_equal(np.asarray(prox.soft_threshold(x, 1.0)), [-2, 0, 0, 0, 2])
    t = jnp.array([0.0, 1.0, 1.0, 0.1, 5.0])
    np.testing.assert_allclose(np.asarray(prox.soft_threshold(x, t)), [-3, 0, 0, 0.4, 0], rtol=1e-6)


@pytest.mark.parametrize(
    "call, arg",
    [
        (lambda: prox.soft_threshold(jnp.ones(2), -1.0), "t"),
        (lambda: prox.prox_elastic_net(jnp.ones(2), 1.0, l1_ratio=1.2), "l1_ratio"),
        (lambda: prox.prox_pinball(jnp.ones(2), 1.0, tau=1.0), "tau"),
        (lambda: prox.prox_huber(jnp.ones(2), 1.0, delta=0.0), "delta"),
        (lambda: prox.prox_huber(jnp.ones(2), -0.5), "t"),
    ],
)
def test_bad_arguments(call, arg):
    with pytest.raises(ValueError, match=rf"{arg} must lie in"):
        call()


def test_integer_leaf_raises_with_its_path():
    with pytest.raises(TypeError, match=r"x\['a'\]"):
        prox.soft_threshold({"a": jnp.arange(3)}, 1.0)


# --- penalties -------------------------------------------------------------------------------


def test_penalties_values_and_gradients():
    params = {"w": jnp.array([[-2.0, 0.0], [0.5, 3.0]]), "b": jnp.array([-0.0, 1.0])}
    assert float(penalties.l1(params)) == 6.5
    assert float(penalties.l2_squared(params)) == pytest.approx(0.5 * (4 + 0.25 + 9 + 1))
    en = penalties.elastic_net(params, 0.25)
    assert float(en) == pytest.approx(0.25 * 6.5 + 0.75 * 0.5 * 14.25)
    g = jax.jit(jax.grad(penalties.l1))(params)
    # 0 at +0.0 and -0.0: the minimum-norm subgradient.
    sign = {"w": np.float32([[-1, 0], [1, 1]]), "b": np.float32([0, 1])}
    chex.assert_trees_all_equal(g, sign)
    g = jax.grad(lambda p: penalties.elastic_net(p, 0.5))(params)
    expected = jax.tree_util.tree_map(lambda s, p: 0.5 * s + 0.5 * np.asarray(p), sign, params)
    chex.assert_trees_all_close(g, expected, rtol=1e-6)


def test_penalty_prox_pairs_are_consistent(x64):
    # The prox of t * elastic_net is prox_elastic_net: check against a grid minimisation.
    v, t = jnp.array([1.3]), 0.8
    grid = jnp.linspace(-3, 3, 600001)
    obj = jax.vmap(lambda x: t * penalties.elastic_net(x[None], 0.6) + 0.5 * (x - v[0]) ** 2)(grid)
    best = float(grid[jnp.argmin(obj)])
    assert float(prox.prox_elastic_net(v, t, l1_ratio=0.6)[0]) == pytest.approx(best, abs=2e-5)


def test_bad_penalty_input():
    with pytest.raises(ValueError, match="l1_ratio"):
        penalties.elastic_net({"a": jnp.ones(2)}, -0.1)
    with pytest.raises(TypeError, match="params"):
        penalties.l1([jnp.arange(2)])
