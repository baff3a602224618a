"""l1jax.subgrad: derivatives at kinks, dtypes, transformations and bad input."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from l1jax import subgrad

DTYPES = [jnp.float16, jnp.bfloat16, jnp.float32]

# (function, expected derivative below / above the kink, subdifferential at the kink)
PRIMS = {
    "abs": (subgrad.abs, -1.0, 1.0, (-1.0, 1.0)),
    "relu": (subgrad.relu, 0.0, 1.0, (0.0, 1.0)),
    "pinball": (lambda x, **k: subgrad.pinball_elementwise(x, 0.3, **k), -0.7, 0.3, (-0.7, 0.3)),
}


def test_plain_jax_gets_kinks_wrong():
    # The motivation, checked so that a JAX change that fixes it is noticed.
    assert float(jax.grad(jnp.abs)(0.0)) == 1.0
    assert float(jax.grad(lambda x: jnp.maximum(x, 0.0))(0.0)) == 0.5


@pytest.mark.parametrize("name", sorted(PRIMS))
@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_minimum_norm_derivative_at_kink(name, zero):
    f = PRIMS[name][0]
    g = jax.jit(jax.grad(f))
    assert float(g(jnp.float32(zero))) == 0.0
    assert float(jax.grad(f)(jnp.float32(zero))) == 0.0


@pytest.mark.parametrize("name", sorted(PRIMS))
def test_derivative_away_from_kink(name):
    f, below, above, _ = PRIMS[name]
    g = jax.vmap(jax.grad(f))
    out = g(jnp.array([-3.0, -1e-30, 1e-30, 2.0]))
    np.testing.assert_array_equal(
        np.asarray(out), np.array([below, below, above, above], np.float32)
    )


@pytest.mark.parametrize("name", sorted(PRIMS))
@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_chosen_kink(name, zero):
    f, _, _, (lo, hi) = PRIMS[name]
    for kink in (lo, hi, 0.5 * (lo + hi)):
        got = jax.jit(jax.grad(lambda x, k=kink: f(x, kink=k)))(jnp.float32(zero))
        assert float(got) == pytest.approx(kink, abs=1e-7)


@pytest.mark.parametrize("name", sorted(PRIMS))
def test_kink_outside_subdifferential_raises(name):
    f, _, _, (lo, hi) = PRIMS[name]
    for bad in (lo - 0.01, hi + 0.01):
        with pytest.raises(ValueError, match="kink"):
            f(jnp.float32(0.0), kink=bad)


def test_pinball_kink_checks_every_level():
    taus = jnp.array([0.2, 0.9])
    # 0.25 is in [tau - 1, tau] for tau = 0.9 but not for tau = 0.2.
    with pytest.raises(ValueError, match=r"\[-0\.1.*0\.2"):
        subgrad.pinball_elementwise(jnp.zeros(2), taus, kink=0.25)


@pytest.mark.parametrize("bad_tau", [0.0, 1.0, -0.5, 1.5, [0.5, 1.0]])
def test_pinball_tau_out_of_range(bad_tau):
    with pytest.raises(ValueError, match="tau"):
        subgrad.pinball_elementwise(jnp.zeros(2), jnp.asarray(bad_tau))


def test_sign_has_zero_derivative():
    g = jax.vmap(jax.grad(subgrad.sign))(jnp.array([-2.0, -0.0, 0.0, 5.0]))
    np.testing.assert_array_equal(np.asarray(g), np.zeros(4, np.float32))
    np.testing.assert_array_equal(np.asarray(subgrad.sign(jnp.array([-2.0, 0.0, 3.0]))), [-1, 0, 1])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["abs", "relu", "pinball", "sign"])
def test_dtype_preserved(name, dtype):
    f = subgrad.sign if name == "sign" else PRIMS[name][0]
    x = jnp.array([-1.5, 0.0, 2.0], dtype)
    assert f(x).dtype == dtype
    assert jax.grad(lambda v: f(v).sum())(x).dtype == dtype


def test_float64(x64):
    x = jnp.array([-1.5, 0.0, 2.0], jnp.float64)
    assert subgrad.abs(x).dtype == jnp.float64
    np.testing.assert_array_equal(
        np.asarray(jax.grad(lambda v: subgrad.abs(v).sum())(x)), [-1, 0, 1]
    )


def test_values_match_numpy():
    x = np.linspace(-3, 3, 13).astype(np.float32)
    np.testing.assert_array_equal(np.asarray(subgrad.abs(x)), np.abs(x))
    np.testing.assert_array_equal(np.asarray(subgrad.relu(x)), np.maximum(x, 0))
    tau = 0.25
    np.testing.assert_allclose(
        np.asarray(subgrad.pinball_elementwise(x, tau)), np.where(x >= 0, tau * x, (tau - 1) * x)
    )


@pytest.mark.parametrize("name", sorted(PRIMS))
def test_transformations(name):
    f = PRIMS[name][0]
    x = jnp.array([-2.0, 0.0, 1.5])
    jf = jax.jacfwd(lambda v: f(v))(x)
    jr = jax.jacrev(lambda v: f(v))(x)
    np.testing.assert_array_equal(np.asarray(jf), np.asarray(jr))
    np.testing.assert_array_equal(np.asarray(jnp.diag(jf)), np.asarray(jax.vmap(jax.grad(f))(x)))
    # Piecewise linear: the Hessian is 0, including at the kink, and finite.
    h = jax.hessian(lambda v: f(v).sum())(x)
    np.testing.assert_array_equal(np.asarray(h), np.zeros((3, 3), np.float32))


@pytest.mark.parametrize("name", sorted(PRIMS))
def test_check_grads_away_from_kink(name):
    f = PRIMS[name][0]
    check_grads(f, (jnp.array([-1.3, 0.7, 2.2]),), order=2, modes=("fwd", "rev"), eps=1e-3)


def test_pinball_derivative_in_tau():
    r = jnp.array([-2.0, 0.0, 3.0])
    g = jax.grad(lambda t: subgrad.pinball_elementwise(r, t).sum())(0.3)
    assert float(g) == pytest.approx(float(r.sum()))
    check_grads(
        lambda t: subgrad.pinball_elementwise(r, t),
        (jnp.float32(0.4),),
        order=1,
        modes=("fwd", "rev"),
        eps=1e-3,
    )


def test_non_float_input_raises():
    with pytest.raises(TypeError, match="floating"):
        subgrad.abs(jnp.array([1, 2]))
