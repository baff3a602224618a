"""l1jax.losses against closed forms, PyTorch 2.13 and scikit-learn, plus every bad input."""

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from jax.test_util import check_grads
from sklearn.metrics import mean_pinball_loss

from l1jax import losses

EXAMPLE_P = np.array([2.5, 0.0, 2.1, 7.8], np.float32)
EXAMPLE_T = np.array([3.0, -0.5, 2.0, 7.5], np.float32)
ALL = sorted(losses.LOSSES)


def _rng(seed=0, n=64):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(4, n // 4)).astype(np.float32) * 2
    t = rng.normal(size=(4, n // 4)).astype(np.float32) * 2
    return p, t


# --- worked numbers often quoted wrongly ---------------------------------------------------


def test_quoted_l1loss_example_matches_pytorch():
    # Often quoted as tensor(0.3250); PyTorch 2.13 (and arithmetic: (0.5 + 0.5 + 0.1 + 0.3) / 4)
    # give 0.3500. We test against what PyTorch computes.
    expected = float(torch.nn.L1Loss()(torch.tensor(EXAMPLE_P), torch.tensor(EXAMPLE_T)))
    assert expected == pytest.approx(0.35)
    assert float(losses.l1(EXAMPLE_P, EXAMPLE_T)) == pytest.approx(expected, abs=1e-7)


def test_quoted_sae_sse_and_outlier():
    r = jnp.array([1.0, 2.0, 1.0, 3.0, 2.0])
    z = jnp.zeros(5)
    assert float(losses.l1(r, z, reduction="sum")) == 9.0
    assert float(losses.mse(r, z, reduction="sum")) == 19.0
    # 36 and 918 are quoted together for "one residual at 30"; no single replacement gives both:
    # replacing the 3 gives (36, 910), replacing a 1 gives (38, 918). Both are checked here.
    r3 = r.at[3].set(30.0)
    assert float(losses.l1(r3, z, reduction="sum")) == 36.0
    assert float(losses.mse(r3, z, reduction="sum")) == 910.0
    r1 = r.at[0].set(30.0)
    assert float(losses.l1(r1, z, reduction="sum")) == 38.0
    assert float(losses.mse(r1, z, reduction="sum")) == 918.0


def test_pinball_half_is_half_l1():
    p, t = _rng(1)
    np.testing.assert_allclose(
        float(losses.pinball(p, t, tau=0.5)), 0.5 * float(losses.l1(p, t)), rtol=1e-6
    )


@pytest.mark.parametrize("beta", [0.3, 1.0, 2.5])
def test_smooth_l1_is_huber_over_beta(beta):
    p, t = _rng(2)
    np.testing.assert_allclose(
        np.asarray(losses.smooth_l1(p, t, beta=beta, reduction="none")),
        np.asarray(losses.huber(p, t, delta=beta, reduction="none")) / beta,
        rtol=1e-6,
        atol=1e-7,
    )


def test_smooth_l1_beta_zero_is_exactly_l1():
    p, t = _rng(3)
    t[0, :3] = p[0, :3]  # include exact zeros of the residual
    for reduction in ("none", "mean", "sum"):
        np.testing.assert_array_equal(
            np.asarray(losses.smooth_l1(p, t, beta=0.0, reduction=reduction)),
            np.asarray(losses.l1(p, t, reduction=reduction)),
        )
    g_s = jax.grad(lambda x: losses.smooth_l1(x, t, beta=0.0))(p)
    g_l = jax.grad(lambda x: losses.l1(x, t))(p)
    np.testing.assert_array_equal(np.asarray(g_s), np.asarray(g_l))
    assert np.all(np.isfinite(np.asarray(g_s)))


def test_constant_minimising_l1_is_median_and_pinball_is_quantile():
    # Dense grid search over constants c: argmin of mean |y - c| is a median, argmin of
    # mean rho_tau(y - c) is the tau-quantile (both attained at a data point).
    y = np.random.default_rng(4).standard_t(df=2, size=101).astype(np.float32)
    cands = jnp.asarray(np.sort(y))
    obj = jax.vmap(lambda c: losses.l1(jnp.full_like(jnp.asarray(y), c), y))(cands)
    assert float(cands[jnp.argmin(obj)]) == pytest.approx(float(np.median(y)))
    for tau in (0.1, 0.25, 0.9):
        obj = jax.vmap(
            lambda c, tau=tau: losses.pinball(jnp.full_like(jnp.asarray(y), c), y, tau=tau)
        )(cands)
        expected = np.quantile(y, tau, method="inverted_cdf")
        assert float(cands[jnp.argmin(obj)]) == pytest.approx(float(expected))


# --- references -------------------------------------------------------------------------------

TORCH = {
    "l1": (lambda **k: torch.nn.L1Loss(**k), {}),
    "mse": (lambda **k: torch.nn.MSELoss(**k), {}),
    "huber": (lambda **k: torch.nn.HuberLoss(delta=0.7, **k), {"delta": 0.7}),
    "smooth_l1": (lambda **k: torch.nn.SmoothL1Loss(beta=0.7, **k), {"beta": 0.7}),
}


@pytest.mark.parametrize("name", sorted(TORCH))
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_matches_pytorch(name, reduction):
    make, hyper = TORCH[name]
    p, t = _rng(5)
    tp = torch.tensor(p, requires_grad=True)
    out = make(reduction=reduction)(tp, torch.tensor(t))
    out.sum().backward()
    ours = losses.LOSSES[name]
    np.testing.assert_allclose(
        np.asarray(ours(p, t, reduction=reduction, **hyper)),
        out.detach().numpy(),
        rtol=1e-5,
        atol=1e-6,
    )
    grad = jax.grad(lambda x: ours(x, t, reduction=reduction, **hyper).sum())(p)
    np.testing.assert_allclose(np.asarray(grad), tp.grad.numpy(), rtol=1e-5, atol=1e-7)


# Closed forms on the example above, residuals r = p - t = [-0.5, 0.5, 0.1, 0.3]:
# (loss, its hyperparameters, mean value, gradient with respect to the predictions).
_R = np.array([-0.5, 0.5, 0.1, 0.3])
CLOSED = {
    "l1": ({}, 1.4 / 4, np.sign(_R) / 4),
    "huber": ({"delta": 1.0}, 0.5 * (_R**2).sum() / 4, _R / 4),  # every |r| <= delta
    "pinball": (
        {"tau": 0.9},
        (0.9 * 0.5 + 0.1 * (0.5 + 0.1 + 0.3)) / 4,
        np.array([-0.9, 0.1, 0.1, 0.1]) / 4,
    ),
    "smooth_l1": (
        {"beta": 0.2},
        (0.4 + 0.4 + 0.5 * 0.01 / 0.2 + 0.2) / 4,
        np.array([-1.0, 1.0, 0.5, 1.0]) / 4,
    ),
}


class ClosedFormVariantsTest(chex.TestCase):
    """Values and gradients of public losses, jitted and not (chex.variants)."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_value_and_grad_closed_form(self):
        for name, (hyper, value, grad) in CLOSED.items():
            loss = functools.partial(losses.LOSSES[name], **hyper)
            v, g = self.variant(jax.value_and_grad(loss))(EXAMPLE_P, EXAMPLE_T)
            expected = (np.float32(value), grad.astype(np.float32))
            chex.assert_trees_all_close((v, g), expected, atol=1e-6, custom_message=name)


@pytest.mark.parametrize("tau", [0.05, 0.3, 0.5, 0.95])
def test_pinball_matches_sklearn(tau):
    p, t = _rng(6)
    ref = mean_pinball_loss(t.ravel(), p.ravel(), alpha=tau)
    assert float(losses.pinball(p, t, tau=tau)) == pytest.approx(ref, rel=1e-5)


def test_pinball_vector_tau_broadcasts_along_trailing_axis():
    rng = np.random.default_rng(7)
    taus = np.array([0.1, 0.5, 0.9], np.float32)
    y = rng.normal(size=20).astype(np.float32)
    q = rng.normal(size=(20, 3)).astype(np.float32)
    per_level = np.asarray(losses.pinball(q, y, tau=taus, reduction="none")).mean(axis=0)
    for j, tau in enumerate(taus):
        assert per_level[j] == pytest.approx(mean_pinball_loss(y, q[:, j], alpha=tau), rel=1e-5)
    # Targets may also be given with the trailing axis, same result.
    full = losses.pinball(q, np.repeat(y[:, None], 3, axis=1), tau=taus)
    assert float(full) == pytest.approx(float(per_level.mean()), rel=1e-6)


def test_closed_forms_charbonnier_log_cosh_mix():
    p, t = _rng(8)
    r = (p - t).astype(np.float64)
    np.testing.assert_allclose(
        np.asarray(losses.charbonnier(p, t, eps=0.1, reduction="none")),
        np.sqrt(r**2 + 0.01),
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        np.asarray(losses.log_cosh(p, t, reduction="none")),
        np.log(np.cosh(r)),
        rtol=1e-5,
        atol=1e-7,
    )
    np.testing.assert_allclose(
        np.asarray(losses.l1_mse_mix(p, t, alpha=0.3, reduction="none")),
        0.3 * np.abs(r) + 0.7 * r**2,
        rtol=1e-6,
    )


# --- reduction, weights and masks ------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_weights_and_mask(name):
    p, t = _rng(9)
    f = losses.LOSSES[name]
    el = np.asarray(f(p, t, reduction="none"), np.float64)
    w = np.random.default_rng(10).uniform(0, 2, size=p.shape).astype(np.float32)
    m = np.random.default_rng(11).uniform(size=p.shape) > 0.3
    np.testing.assert_allclose(float(f(p, t, weights=w)), (w * el).sum() / w.sum(), rtol=1e-5)
    np.testing.assert_allclose(
        float(f(p, t, weights=w, reduction="sum")), (w * el).sum(), rtol=1e-5
    )
    np.testing.assert_allclose(float(f(p, t, where=m)), el[m].mean(), rtol=1e-5)
    np.testing.assert_allclose(
        float(f(p, t, where=m, weights=w)), (w * el)[m].sum() / w[m].sum(), rtol=1e-5
    )
    np.testing.assert_allclose(
        np.asarray(f(p, t, where=m, reduction="none")), np.where(m, el, 0), rtol=1e-5
    )
    # Weights broadcast: one weight per row.
    wr = w[:, :1]
    np.testing.assert_allclose(
        float(f(p, t, weights=wr)), (wr * el).sum() / (wr.sum() * p.shape[1]), rtol=1e-5
    )


def test_masked_out_nan_does_not_leak():
    p = jnp.array([1.0, jnp.nan, 3.0])
    t = jnp.zeros(3)
    m = jnp.array([True, False, True])
    assert float(losses.l1(p, t, where=m)) == 2.0
    g = jax.grad(lambda x: losses.l1(x, t, where=m))(p)
    np.testing.assert_array_equal(np.asarray(g), [0.5, 0.0, 0.5])


def test_empty_mean_is_zero():
    p, t = jnp.ones(3), jnp.zeros(3)
    assert float(losses.l1(p, t, where=jnp.zeros(3, bool))) == 0.0
    assert float(losses.mse(p, t, weights=jnp.zeros(3))) == 0.0
    g = jax.grad(lambda x: losses.l1(x, t, where=jnp.zeros(3, bool)))(p)
    np.testing.assert_array_equal(np.asarray(g), np.zeros(3))


# --- derivatives, magnitudes, dtypes, transformations ----------------------------------------

KINKED = ["l1", "smooth_l1", "pinball", "charbonnier", "l1_mse_mix"]


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("zero", [0.0, -0.0])
def test_derivative_zero_at_zero_residual(name, zero):
    hyper = {"smooth_l1": {"beta": 0.0}, "charbonnier": {"eps": 0.0}}.get(name, {})
    f = jax.jit(jax.grad(lambda x, t: losses.LOSSES[name](x, t, **hyper)))
    t = jnp.array([1.0, -2.0, zero])
    g = f(t + jnp.float32(zero), t)
    np.testing.assert_array_equal(np.asarray(g), np.zeros(3, np.float32))


@pytest.mark.parametrize("name", ALL)
def test_check_grads_away_from_kinks(name):
    f = losses.LOSSES[name]
    p = jnp.array([0.3, -1.7, 2.9, 0.55])
    t = jnp.array([0.0, 0.2, 0.1, -0.4])
    check_grads(
        lambda x: f(x, t, reduction="sum"),
        (p,),
        order=1,
        modes=("fwd", "rev"),
        eps=1e-3,
        atol=1e-2,
        rtol=1e-2,
    )


@jax.jit
def _all_values_and_grads(p, t):
    out = {}
    for name, f in losses.LOSSES.items():
        v, g = jax.value_and_grad(lambda x, f=f: f(x, t, reduction="sum"))(p)
        out[name] = (v, g)
    return out


def test_finite_for_any_magnitude_float32():
    p = jnp.array([1e30, -1e30, 3e-38, 0.0, 1e10, -1e-30])
    t = jnp.zeros_like(p)
    for name, (v, g) in _all_values_and_grads(p, t).items():
        assert np.all(np.isfinite(np.asarray(g))), name
        if name not in ("mse", "l1_mse_mix"):  # r^2 overflows float32 past ~1.8e19, as it must
            assert np.isfinite(float(v)), name
    v, g = jax.value_and_grad(lambda x: losses.log_cosh(x, t, reduction="sum"))(p)
    np.testing.assert_allclose(np.asarray(g), np.tanh(np.asarray(p, np.float64)), atol=1e-7)


@pytest.mark.parametrize("dtype", [jnp.float16, jnp.bfloat16, jnp.float32])
def test_dtypes(dtype):
    p, t = (jnp.asarray(a, dtype) for a in _rng(12))
    for name, f in losses.LOSSES.items():
        # One compiled value-and-gradient per loss: op by op, every primitive of the forward and
        # backward pass compiles on its own in each half-precision dtype (seconds in all).
        out, g = jax.jit(jax.value_and_grad(lambda x, f=f: f(x, t)))(p)
        assert out.dtype == dtype, name
        assert g.dtype == dtype and bool(jnp.all(jnp.isfinite(g))), name
        ref = f(p.astype(jnp.float32), t.astype(jnp.float32))
        assert float(out) == pytest.approx(float(ref), rel=3e-2), name


def test_float64(x64):
    p, t = (jnp.asarray(a, jnp.float64) for a in _rng(13))
    for name, f in losses.LOSSES.items():
        assert f(p, t).dtype == jnp.float64, name


def test_vmap_and_jit_agree():
    p, t = _rng(14)
    for name, f in losses.LOSSES.items():
        per_row = jax.vmap(functools.partial(f, reduction="mean"))(p, t)
        expected = np.asarray(f(p, t, reduction="none")).mean(axis=1)
        np.testing.assert_allclose(np.asarray(per_row), expected, rtol=1e-5, err_msg=name)
        assert float(jax.jit(f)(p, t)) == pytest.approx(float(f(p, t)), rel=1e-6), name


def test_hyperparameters_can_be_traced_and_vmapped():
    p, t = _rng(15)
    deltas = jnp.array([0.5, 1.0, 2.0])
    out = jax.vmap(lambda d: losses.huber(p, t, delta=d))(deltas)
    for i, d in enumerate([0.5, 1.0, 2.0]):
        assert float(out[i]) == pytest.approx(float(losses.huber(p, t, delta=d)), rel=1e-6)
    taus = jnp.array([0.1, 0.9])
    out = jax.vmap(lambda q: losses.pinball(p, t, tau=q))(taus)
    assert float(out[1]) == pytest.approx(float(losses.pinball(p, t, tau=0.9)), rel=1e-6)


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ALL)
def test_shape_mismatch_names_both_shapes(name):
    with pytest.raises(ValueError, match=r"\(3,\).*\(4,\)"):
        losses.LOSSES[name](jnp.zeros(3), jnp.zeros(4))
    with pytest.raises(ValueError, match="same shape"):
        losses.LOSSES[name](jnp.zeros((3, 1)), jnp.zeros(3))


@pytest.mark.parametrize("name", ALL)
def test_non_float_and_bad_reduction(name):
    f = losses.LOSSES[name]
    with pytest.raises(TypeError, match="predictions"):
        f(jnp.arange(3), jnp.zeros(3))
    with pytest.raises(TypeError, match="targets"):
        f(jnp.zeros(3), jnp.arange(3))
    with pytest.raises(ValueError, match="reduction.*'avg'"):
        f(jnp.zeros(3), jnp.zeros(3), reduction="avg")
    with pytest.raises(ValueError, match="weights"):
        f(jnp.zeros(3), jnp.zeros(3), weights=-jnp.ones(3))
    with pytest.raises(ValueError, match="weights.shape"):
        f(jnp.zeros(3), jnp.zeros(3), weights=jnp.ones(2))
    with pytest.raises(TypeError, match="where"):
        f(jnp.zeros(3), jnp.zeros(3), where=jnp.ones(3))


@pytest.mark.parametrize(
    "name, kwargs, arg",
    [
        ("huber", {"delta": -1.0}, "delta"),
        ("huber", {"delta": 0.0}, "delta"),
        ("smooth_l1", {"beta": -0.1}, "beta"),
        ("charbonnier", {"eps": -1e-3}, "eps"),
        ("pinball", {"tau": 0.0}, "tau"),
        ("pinball", {"tau": 1.0}, "tau"),
        ("pinball", {"tau": [0.2, 1.2]}, "tau"),
        ("l1_mse_mix", {"alpha": 1.5}, "alpha"),
    ],
)
def test_bad_hyperparameters_name_the_argument(name, kwargs, arg):
    with pytest.raises(ValueError, match=rf"{arg} must lie in .*got {arg}="):
        losses.LOSSES[name](jnp.zeros((4, 2)), jnp.zeros((4, 2)), **kwargs)


def test_pinball_vector_tau_shape_errors():
    with pytest.raises(ValueError, match="trailing axis of length 3"):
        losses.pinball(jnp.zeros((5, 2)), jnp.zeros(5), tau=jnp.array([0.1, 0.5, 0.9]))
    with pytest.raises(ValueError, match="1-D"):
        losses.pinball(jnp.zeros((5, 2)), jnp.zeros((5, 2)), tau=jnp.full((2, 2), 0.5))
