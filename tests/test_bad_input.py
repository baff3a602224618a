"""Bad input to losses, subgrad, prox, penalties and image: a clear error at trace time, or NaN.

Three tables: calls that must raise (exception type and a regex that names the function, the
argument, what was expected and what was given), calls whose value or gradient must be NaN (NaN
in, NaN out), and calls with a NaN where ``where`` drops it, which must stay finite.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import l1jax.image as im
from l1jax import losses, penalties, prox, subgrad

NAN = float("nan")
P = jnp.array([1.0, -2.0, 0.5, 3.0])
T = jnp.array([0.5, -2.5, 0.0, 1.0])
P_NAN = P.at[1].set(NAN)
T_NAN = T.at[1].set(NAN)
W_NAN = jnp.array([1.0, NAN, 1.0, 2.0])
KEEP = jnp.array([True, False, True, True])  # drops index 1, where the NaNs are
ALL = sorted(losses.LOSSES)

# Images: 33 px is the smallest side for five pyramid scales with 3-tap windows, so one shape
# serves every metric and loss (one compile per primitive and shape).
_rng = np.random.default_rng(0)
A = jnp.asarray(_rng.random((1, 33, 33, 1)), jnp.float32)
B = jnp.clip(A + jnp.asarray(_rng.normal(0, 0.05, A.shape), jnp.float32), 0, 1)
B_NAN = B.at[0, 5, 7, 0].set(NAN)
A2, B2 = jnp.concatenate([A, A]), jnp.concatenate([B, B_NAN])  # the NaN is in image 1
B2_CLEAN = jnp.concatenate([B, B])
KEEP2 = jnp.array([True, False])
PYRAMID = {"variant": "pyramid", "filter_size": 3}
# Two scales with fractional exponents: the where-guarded powers, at a fraction of the compiles.
PYRAMID2 = {"variant": "pyramid", "filter_size": 3, "scale_weights": (0.3, 0.7)}
EMPTY_H = jnp.zeros((1, 0, 8, 1))
EMPTY_W = jnp.zeros((1, 8, 0, 1))
EMPTY_C = jnp.zeros((1, 8, 8, 0))


def _grad(f, *args, argnum=0):
    return jax.grad(f, argnums=argnum)(*args)


# --- calls that must raise -----------------------------------------------------------------------

_SCALAR = r"must be a scalar \(a number or a 0-d array\), got {}\.shape={}"
_REAL = r"must be a real number, got {}={}"
_REAL_OR_ARRAY = r"must be a real number or an array of real numbers, got {}={}"
_NOT_BROADCAST = r"{}\.shape={} does not broadcast to the shape {} of {}"

RAISES = [
    # Loss hyperparameters of the wrong shape: deep JAX errors or a loss silently broadcast.
    pytest.param(
        lambda: losses.huber(P, T, delta=jnp.ones(2)),
        ValueError,
        "huber: delta " + _SCALAR.format("delta", r"\(2,\)"),
        id="huber-delta-(2,)",
    ),
    pytest.param(
        lambda: losses.huber(P, T, delta=jnp.ones((4, 1))),
        ValueError,
        "huber: delta " + _SCALAR.format("delta", r"\(4, 1\)"),
        id="huber-delta-(4,1)",
    ),
    pytest.param(
        lambda: jax.jit(lambda d: losses.huber(P, T, delta=d))(jnp.ones(2)),
        ValueError,
        "huber: delta " + _SCALAR.format("delta", r"\(2,\)"),
        id="huber-delta-traced",
    ),
    pytest.param(
        lambda: losses.smooth_l1(P, T, beta=jnp.ones(2)),
        ValueError,
        "smooth_l1: beta " + _SCALAR.format("beta", r"\(2,\)"),
        id="smooth_l1-beta-(2,)",
    ),
    pytest.param(
        lambda: losses.smooth_l1(P, T, beta=jnp.ones((4, 1))),
        ValueError,
        "smooth_l1: beta " + _SCALAR.format("beta", r"\(4, 1\)"),
        id="smooth_l1-beta-(4,1)",
    ),
    pytest.param(
        lambda: losses.charbonnier(P, T, eps=jnp.full(2, 1e-3)),
        ValueError,
        "charbonnier: eps " + _SCALAR.format("eps", r"\(2,\)"),
        id="charbonnier-eps-(2,)",
    ),
    pytest.param(
        lambda: losses.charbonnier(P, T, eps=jnp.full((4, 1), 1e-3)),
        ValueError,
        "charbonnier: eps " + _SCALAR.format("eps", r"\(4, 1\)"),
        id="charbonnier-eps-(4,1)",
    ),
    pytest.param(
        lambda: losses.l1_mse_mix(P, T, alpha=jnp.full(2, 0.5)),
        ValueError,
        "l1_mse_mix: alpha " + _SCALAR.format("alpha", r"\(2,\)"),
        id="l1_mse_mix-alpha-(2,)",
    ),
    pytest.param(
        lambda: losses.l1_mse_mix(P, T, alpha=jnp.full((4, 1), 0.5)),
        ValueError,
        "l1_mse_mix: alpha " + _SCALAR.format("alpha", r"\(4, 1\)"),
        id="l1_mse_mix-alpha-(4,1)",
    ),
    pytest.param(
        lambda: losses.pinball(P, T, tau=jnp.full((4, 1), 0.5)),
        ValueError,
        r"pinball: tau must be a scalar or a 1-D array, got tau.shape=\(4, 1\)",
        id="pinball-tau-(4,1)",
    ),
    pytest.param(
        lambda: losses.pinball(P, T, tau=jnp.array([0.1, 0.5, 0.9])),
        ValueError,
        r"pinball: with 3 quantile levels, predictions must have a trailing axis of "
        r"length 3, got predictions.shape=\(4,\)",
        id="pinball-tau-(3,)-on-(4,)",
    ),
    # Loss hyperparameters of the wrong type: a string converted by NumPy, None, a bool.
    pytest.param(
        lambda: losses.huber(P, T, delta="a"),
        TypeError,
        "huber: delta " + _REAL.format("delta", "'a'"),
        id="huber-delta-str",
    ),
    pytest.param(
        lambda: losses.huber(P, T, delta="1"),
        TypeError,
        "huber: delta " + _REAL.format("delta", "'1'"),
        id="huber-delta-numeric-str",
    ),
    pytest.param(
        lambda: losses.huber(P, T, delta=None),
        TypeError,
        "huber: delta " + _REAL.format("delta", "None"),
        id="huber-delta-None",
    ),
    pytest.param(
        lambda: losses.huber(P, T, delta=True),
        TypeError,
        "huber: delta " + _REAL.format("delta", "True"),
        id="huber-delta-bool",
    ),
    pytest.param(
        lambda: losses.smooth_l1(P, T, beta="a"),
        TypeError,
        "smooth_l1: beta " + _REAL.format("beta", "'a'"),
        id="smooth_l1-beta-str",
    ),
    pytest.param(
        lambda: losses.charbonnier(P, T, eps="a"),
        TypeError,
        "charbonnier: eps " + _REAL.format("eps", "'a'"),
        id="charbonnier-eps-str",
    ),
    pytest.param(
        lambda: losses.l1_mse_mix(P, T, alpha="a"),
        TypeError,
        "l1_mse_mix: alpha " + _REAL.format("alpha", "'a'"),
        id="l1_mse_mix-alpha-str",
    ),
    pytest.param(
        lambda: losses.pinball(P, T, tau="a"),
        TypeError,
        "pinball: tau " + _REAL_OR_ARRAY.format("tau", "'a'"),
        id="pinball-tau-str",
    ),
    pytest.param(
        lambda: losses.pinball(P, T, tau=None),
        TypeError,
        "pinball: tau " + _REAL_OR_ARRAY.format("tau", "None"),
        id="pinball-tau-None",
    ),
    # Loss inputs that are not arrays at all.
    pytest.param(
        lambda: losses.l1(None, T),
        TypeError,
        "l1: predictions must be a floating-point array, got predictions=None",
        id="l1-predictions-None",
    ),
    pytest.param(
        lambda: losses.mse(P, "a"),
        TypeError,
        "mse: targets must be a floating-point array, got targets='a'",
        id="mse-targets-str",
    ),
    pytest.param(
        lambda: losses.l1(P, T, weights="a"),
        TypeError,
        "l1: weights must be a floating-point array, got weights='a'",
        id="l1-weights-str",
    ),
    pytest.param(
        lambda: losses.l1(P, T, where="a"),
        TypeError,
        "l1: where must be a boolean mask, got where='a'",
        id="l1-where-str",
    ),
    pytest.param(
        lambda: losses.l1(P, T, where=jnp.ones(4)),
        TypeError,
        "l1: where must be a boolean mask, got dtype float32",
        id="l1-where-float",
    ),
    pytest.param(
        lambda: losses.reduce_loss(P, weights="a"),
        TypeError,
        "reduce_loss: weights must be a floating-point array",
        id="reduce_loss-weights-str",
    ),
    # subgrad.
    pytest.param(
        lambda: subgrad.abs("a"),
        TypeError,
        "abs: x must be a floating-point array, got x='a'",
        id="abs-str",
    ),
    pytest.param(
        lambda: subgrad.relu(None),
        TypeError,
        "relu: x must be a floating-point array, got x=None",
        id="relu-None",
    ),
    pytest.param(
        lambda: subgrad.sign(jnp.arange(3)),
        TypeError,
        "sign: x must be a floating-point array, got dtype int32",
        id="sign-int",
    ),
    pytest.param(
        lambda: subgrad.pinball_elementwise(P, "0.5"),
        TypeError,
        "pinball_elementwise: tau " + _REAL_OR_ARRAY.format("tau", "'0.5'"),
        id="pinball_elementwise-tau-str",
    ),
    pytest.param(
        lambda: subgrad.pinball_elementwise(P, jnp.full(3, 0.5)),
        ValueError,
        r"pinball_elementwise: tau must be broadcastable against r, got "
        r"tau.shape=\(3,\) and r.shape=\(4,\)",
        id="pinball_elementwise-tau-(3,)",
    ),
    pytest.param(
        lambda: subgrad.pinball_elementwise(P, 1.5),
        ValueError,
        r"pinball_elementwise: tau must lie in the open interval \(0, 1\), got tau=1.5",
        id="pinball_elementwise-tau-range",
    ),
    # prox: t and the hyperparameters broadcast to every leaf, without enlarging it.
    pytest.param(
        lambda: prox.soft_threshold(P, jnp.ones(3)),
        ValueError,
        "soft_threshold: " + _NOT_BROADCAST.format("t", r"\(3,\)", r"\(4,\)", "x"),
        id="soft_threshold-t-(3,)",
    ),
    pytest.param(
        lambda: prox.soft_threshold(P, jnp.ones((2, 4))),
        ValueError,
        "soft_threshold: " + _NOT_BROADCAST.format("t", r"\(2, 4\)", r"\(4,\)", "x"),
        id="soft_threshold-t-enlarges",
    ),
    pytest.param(
        lambda: prox.soft_threshold({"a": P, "b": jnp.ones(2)}, jnp.ones(4)),
        ValueError,
        "soft_threshold: " + _NOT_BROADCAST.format("t", r"\(4,\)", r"\(2,\)", r"x\['b'\]"),
        id="soft_threshold-t-one-leaf",
    ),
    pytest.param(
        lambda: jax.jit(prox.soft_threshold)(P, jnp.ones(3)),
        ValueError,
        "soft_threshold: " + _NOT_BROADCAST.format("t", r"\(3,\)", r"\(4,\)", "x"),
        id="soft_threshold-t-traced",
    ),
    pytest.param(
        lambda: prox.soft_threshold(P, "a"),
        TypeError,
        "soft_threshold: t " + _REAL_OR_ARRAY.format("t", "'a'"),
        id="soft_threshold-t-str",
    ),
    pytest.param(
        lambda: prox.soft_threshold(P, None),
        TypeError,
        "soft_threshold: t " + _REAL_OR_ARRAY.format("t", "None"),
        id="soft_threshold-t-None",
    ),
    pytest.param(
        lambda: prox.soft_threshold({"a": "s"}, 1.0),
        TypeError,
        r"soft_threshold: x\['a'\] must be a floating-point array, got x\['a'\]='s'",
        id="soft_threshold-x-str-leaf",
    ),
    pytest.param(
        lambda: prox.prox_elastic_net(P, 1.0, l1_ratio=jnp.full(3, 0.5)),
        ValueError,
        "prox_elastic_net: " + _NOT_BROADCAST.format("l1_ratio", r"\(3,\)", r"\(4,\)", "x"),
        id="prox_elastic_net-l1_ratio-(3,)",
    ),
    pytest.param(
        lambda: prox.prox_elastic_net(P, 1.0, l1_ratio="a"),
        TypeError,
        "prox_elastic_net: l1_ratio " + _REAL_OR_ARRAY.format("l1_ratio", "'a'"),
        id="prox_elastic_net-l1_ratio-str",
    ),
    pytest.param(
        lambda: prox.prox_pinball(P, 1.0, tau=jnp.full(3, 0.5)),
        ValueError,
        "prox_pinball: " + _NOT_BROADCAST.format("tau", r"\(3,\)", r"\(4,\)", "x"),
        id="prox_pinball-tau-(3,)",
    ),
    pytest.param(
        lambda: prox.prox_pinball(P, "a", tau=0.5),
        TypeError,
        "prox_pinball: t " + _REAL_OR_ARRAY.format("t", "'a'"),
        id="prox_pinball-t-str",
    ),
    pytest.param(
        lambda: prox.prox_huber(P, 1.0, delta=jnp.ones(3)),
        ValueError,
        "prox_huber: " + _NOT_BROADCAST.format("delta", r"\(3,\)", r"\(4,\)", "x"),
        id="prox_huber-delta-(3,)",
    ),
    pytest.param(
        lambda: prox.prox_huber(P, 1.0, delta="a"),
        TypeError,
        "prox_huber: delta " + _REAL_OR_ARRAY.format("delta", "'a'"),
        id="prox_huber-delta-str",
    ),
    # penalties.
    pytest.param(
        lambda: penalties.elastic_net({"w": P}, jnp.full(2, 0.5)),
        ValueError,
        "elastic_net: l1_ratio " + _SCALAR.format("l1_ratio", r"\(2,\)"),
        id="elastic_net-l1_ratio-(2,)",
    ),
    pytest.param(
        lambda: penalties.elastic_net({"w": P}, "a"),
        TypeError,
        "elastic_net: l1_ratio " + _REAL.format("l1_ratio", "'a'"),
        id="elastic_net-l1_ratio-str",
    ),
    pytest.param(
        lambda: penalties.l1("a"),
        TypeError,
        "l1: params<root> must be a floating-point array",
        id="penalties-l1-str",
    ),
    pytest.param(
        lambda: penalties.l2_squared({"w": jnp.arange(2)}),
        TypeError,
        r"l2_squared: params\['w'\] must be floating point, got dtype int32",
        id="l2_squared-int-leaf",
    ),
    # Image metrics and losses: empty images give NaN means.
    pytest.param(
        lambda: im.psnr(EMPTY_H, EMPTY_H),
        ValueError,
        r"psnr: a must have at least one pixel and one channel \(H, W, C >= 1\), got "
        r"a.shape=\(1, 0, 8, 1\)",
        id="psnr-empty-H",
    ),
    pytest.param(
        lambda: im.psnr(jnp.ones((1, 8, 8, 1)), EMPTY_W),
        ValueError,
        r"psnr: b must have at least one pixel .* got b.shape=\(1, 8, 0, 1\)",
        id="psnr-empty-W",
    ),
    pytest.param(
        lambda: im.psnr(EMPTY_C, EMPTY_C),
        ValueError,
        r"psnr: a must have at least one pixel .* got a.shape=\(1, 8, 8, 0\)",
        id="psnr-empty-C",
    ),
    pytest.param(
        lambda: im.ssim_loss(EMPTY_H, EMPTY_H),
        ValueError,
        r"ssim_loss: predictions must have at least one pixel .* "
        r"predictions.shape=\(1, 0, 8, 1\)",
        id="ssim_loss-empty-H",
    ),
    pytest.param(
        lambda: im.mix_loss(EMPTY_C, EMPTY_C),
        ValueError,
        r"mix_loss: predictions must have at least one pixel .* "
        r"predictions.shape=\(1, 8, 8, 0\)",
        id="mix_loss-empty-C",
    ),
    pytest.param(
        lambda: im.sr_metrics(EMPTY_C, EMPTY_C, scale=2),
        ValueError,
        r"sr_metrics: sr must have at least one pixel",
        id="sr_metrics-empty-C",
    ),
    # Image hyperparameters of the wrong shape or type.
    pytest.param(
        lambda: im.psnr(A, B, max_val="1"),
        TypeError,
        "psnr: max_val " + _REAL.format("max_val", "'1'"),
        id="psnr-max_val-str",
    ),
    pytest.param(
        lambda: jax.jit(lambda m: im.psnr(A, B, max_val=m))(jnp.ones(2)),
        ValueError,
        "psnr: max_val " + _SCALAR.format("max_val", r"\(2,\)"),
        id="psnr-max_val-traced-(2,)",
    ),
    pytest.param(
        lambda: im.ssim(A, B, k1=jnp.full(2, 0.01)),
        ValueError,
        "ssim: k1 " + _SCALAR.format("k1", r"\(2,\)"),
        id="ssim-k1-(2,)",
    ),
    pytest.param(
        lambda: im.ssim(A, B, k2="a"),
        TypeError,
        "ssim: k2 " + _REAL.format("k2", "'a'"),
        id="ssim-k2-str",
    ),
    pytest.param(
        lambda: im.mix_loss(A, B, alpha=jnp.full(3, 0.5)),
        ValueError,
        "mix_loss: alpha " + _SCALAR.format("alpha", r"\(3,\)"),
        id="mix_loss-alpha-(3,)",
    ),
    pytest.param(
        lambda: im.mix_loss(A, B, alpha="a"),
        TypeError,
        "mix_loss: alpha " + _REAL.format("alpha", "'a'"),
        id="mix_loss-alpha-str",
    ),
    pytest.param(
        lambda: im.ms_ssim(A, B, weights=("a", "b")),
        ValueError,
        r"ms_ssim: weights must be a non-empty 1-D sequence of finite numbers >= 0, got "
        r"weights=\('a', 'b'\)",
        id="ms_ssim-weights-str",
    ),
    pytest.param(
        lambda: im.ms_ssim_loss(A, B, scale_weights="abcde"),
        ValueError,
        r"ms_ssim_loss: scale_weights must be a non-empty 1-D sequence",
        id="ms_ssim_loss-scale_weights-str",
    ),
    pytest.param(
        lambda: im.ssim(A, B, sigma=np.array([1.0, 2.0])),
        ValueError,
        r"ssim: sigma must be a positive number, got sigma=array",
        id="ssim-sigma-(2,)",
    ),
    pytest.param(
        lambda: im.psnr(None, B),
        TypeError,
        r"psnr: a must be a floating-point image .* got a=None",
        id="psnr-a-None",
    ),
    pytest.param(
        lambda: im.ssim_loss(A, "b"),
        ValueError,
        r"ssim_loss: targets must be a floating-point image .* got targets='b'",
        id="ssim_loss-targets-str",
    ),
    pytest.param(
        lambda: im.ssim_loss(A, B, where="a"),
        TypeError,
        "ssim_loss: where must be a boolean mask, got where='a'",
        id="ssim_loss-where-str",
    ),
    # gaussian_filter and window_size are public: NaN taps, truncated integer taps, or a
    # silently asymmetric window before.
    pytest.param(
        lambda: im.gaussian_filter(A, sigma=0.0, size=3),
        ValueError,
        "gaussian_filter: sigma must be a finite number > 0, got sigma=0.0",
        id="gaussian_filter-sigma-0",
    ),
    pytest.param(
        lambda: im.gaussian_filter(A, sigma=1.0, size=4),
        ValueError,
        "gaussian_filter: size must be a positive odd integer, got size=4",
        id="gaussian_filter-size-even",
    ),
    pytest.param(
        lambda: im.gaussian_filter(A, sigma=1.0, size=3, padding="full"),
        ValueError,
        "gaussian_filter: padding must be 'valid' or 'same', got padding='full'",
        id="gaussian_filter-padding",
    ),
    pytest.param(
        lambda: im.gaussian_filter(jnp.ones((1, 8, 8, 1), jnp.int32), sigma=1.0, size=3),
        TypeError,
        "gaussian_filter: x must be a floating-point array, got dtype int32",
        id="gaussian_filter-int",
    ),
    pytest.param(
        lambda: im.gaussian_filter(A, sigma=1.0, size=35),
        ValueError,
        r"gaussian_filter: with padding='valid' the image must be at least 35x35 pixels",
        id="gaussian_filter-too-small",
    ),
    pytest.param(
        lambda: im.window_size(-1.0),
        ValueError,
        "window_size: sigma must be a finite number > 0, got sigma=-1.0",
        id="window_size-negative",
    ),
    pytest.param(
        lambda: im.window_size("a"),
        ValueError,
        "window_size: sigma must be a finite number > 0, got sigma='a'",
        id="window_size-str",
    ),
]


@pytest.mark.parametrize(("call", "error", "match"), RAISES)
def test_raises_clear_error(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_type_errors_are_also_value_errors():
    # Before the type check, NumPy's "could not convert string to float" was a ValueError.
    with pytest.raises(ValueError, match="huber: delta must be a real number"):
        losses.huber(P, T, delta="a")


# --- NaN in, NaN out -----------------------------------------------------------------------------

_FRACTIONAL = {"scale_weights": im.MS_SSIM_WEIGHTS}


def _loss_cases():
    for name in ALL:
        f = losses.LOSSES[name]
        yield pytest.param(functools.partial(f, P, T, weights=W_NAN), id=f"{name}-weights")
        yield pytest.param(functools.partial(f, P_NAN, T), id=f"{name}-predictions")
        yield pytest.param(functools.partial(f, P, T_NAN, reduction="sum"), id=f"{name}-targets")
        yield pytest.param(lambda f=f: _grad(f, P_NAN, T)[1], id=f"{name}-grad-at-nan")


NAN_CASES = [
    *_loss_cases(),
    pytest.param(lambda: _grad(lambda x: losses.l1(x, T, weights=W_NAN), P), id="l1-weights-grad"),
    pytest.param(lambda: losses.l1(P, T, weights=W_NAN, where=~KEEP), id="l1-weights-kept"),
    pytest.param(lambda: losses.l1(P, T, weights=W_NAN.at[1].set(jnp.inf)), id="l1-weights-inf"),
    pytest.param(lambda: losses.reduce_loss(P, weights=W_NAN), id="reduce_loss-weights"),
    pytest.param(lambda: jax.jit(losses.huber)(P, T, weights=W_NAN), id="huber-weights-jit"),
    pytest.param(lambda: jax.jit(lambda d: losses.huber(P, T, delta=d))(NAN), id="huber-delta"),
    pytest.param(lambda: _grad(lambda x: subgrad.abs(x).sum(), P_NAN)[1], id="abs-grad"),
    pytest.param(lambda: _grad(lambda x: subgrad.relu(x).sum(), P_NAN)[1], id="relu-grad"),
    pytest.param(
        lambda: _grad(lambda x: subgrad.pinball_elementwise(x, 0.3).sum(), P_NAN)[1],
        id="pinball_elementwise-grad",
    ),
    pytest.param(lambda: prox.soft_threshold(P_NAN, 0.5)[1], id="soft_threshold"),
    pytest.param(lambda: prox.prox_elastic_net(P_NAN, 0.5, l1_ratio=0.5)[1], id="prox_elastic_net"),
    pytest.param(lambda: prox.prox_pinball(P_NAN, 0.5, tau=0.3)[1], id="prox_pinball"),
    pytest.param(lambda: prox.prox_huber(P_NAN, 0.5)[1], id="prox_huber"),
    pytest.param(lambda: penalties.elastic_net({"w": P_NAN}, 0.5), id="elastic_net"),
    pytest.param(lambda: _grad(penalties.l1, {"w": P_NAN})["w"][1], id="penalties-l1-grad"),
    # Image metrics: one NaN pixel.
    pytest.param(lambda: im.psnr(A, B_NAN), id="psnr"),
    pytest.param(lambda: im.ssim(A, B_NAN), id="ssim"),
    pytest.param(lambda: im.ms_ssim(A, B_NAN, filter_size=3), id="ms_ssim"),
    pytest.param(
        lambda: im.ms_ssim(A, B_NAN, filter_size=3, weights=(0.0,) * 5), id="ms_ssim-zero-weights"
    ),
    pytest.param(lambda: im.sr_metrics(A, B_NAN, scale=1)["ssim"], id="sr_metrics"),
    pytest.param(lambda: im.ssim_loss(A, B_NAN), id="ssim_loss"),
    pytest.param(lambda: im.ms_ssim_loss(A, B_NAN), id="ms_ssim_loss"),
    pytest.param(lambda: im.ms_ssim_loss(A, B_NAN, **PYRAMID), id="ms_ssim_loss-pyramid"),
    pytest.param(lambda: im.ms_ssim_loss(A, B_NAN, **_FRACTIONAL), id="ms_ssim_loss-fractional"),
    pytest.param(
        lambda: im.ms_ssim_loss(A, B_NAN, negative_cs="rescale", **_FRACTIONAL),
        id="ms_ssim_loss-rescale",
    ),
    pytest.param(lambda: im.mix_loss(A, B_NAN), id="mix_loss"),
    pytest.param(lambda: im.mix_loss(A, B_NAN, alpha=1.0, **PYRAMID), id="mix_loss-pyramid"),
    pytest.param(
        lambda: jax.jit(jax.grad(functools.partial(im.ms_ssim_loss, sigmas=(1.0, 2.0))))(A, B_NAN)[
            0, 0, 0, 0
        ],
        id="ms_ssim_loss-grad",
    ),
    # Image losses: a NaN per-image weight.
    pytest.param(lambda: im.ssim_loss(A, B, weights=jnp.array([NAN])), id="ssim_loss-weights"),
    pytest.param(
        lambda: im.ms_ssim_loss(A, B, weights=jnp.array([NAN]), **PYRAMID),
        id="ms_ssim_loss-weights",
    ),
    pytest.param(lambda: im.mix_loss(A, B, weights=jnp.array([NAN])), id="mix_loss-weights"),
]


@pytest.mark.parametrize("call", NAN_CASES)
def test_nan_in_gives_nan_out(call):
    out = np.asarray(call())
    assert out.size and np.all(np.isnan(out)), out


@pytest.mark.parametrize(
    "metric", [im.psnr, im.ssim, functools.partial(im.ms_ssim, filter_size=3, weights=(0.3, 0.7))]
)
def test_nan_stays_in_its_own_image(metric):
    out = np.asarray(metric(A2, B2))
    assert np.isfinite(out[0]) and np.isnan(out[1]), out


# --- NaN where `where` drops it: ignored in the value and the gradient ---------------------------


def _masked_cases():
    for name in ALL:
        f = losses.LOSSES[name]
        yield pytest.param(f, (P_NAN, T), {"where": KEEP}, id=f"{name}-predictions")
        yield pytest.param(f, (P, T_NAN), {"where": KEEP}, id=f"{name}-targets")
        yield pytest.param(f, (P, T), {"where": KEEP, "weights": W_NAN}, id=f"{name}-weights")


MASKED = [
    *_masked_cases(),
    pytest.param(im.ssim_loss, (A2, B2), {"where": KEEP2}, id="ssim_loss"),
    pytest.param(im.ms_ssim_loss, (A2, B2), {"where": KEEP2, **PYRAMID2}, id="ms_ssim_loss"),
    pytest.param(im.mix_loss, (A2, B2), {"where": KEEP2}, id="mix_loss"),
    pytest.param(
        im.mix_loss,
        (A2, B2_CLEAN),
        {"weights": jnp.array([1.0, NAN]), "where": KEEP2},
        id="mix_loss-weights",
    ),
]


@pytest.mark.parametrize(("loss", "args", "kwargs"), MASKED)
def test_masked_out_nan_is_ignored(loss, args, kwargs):
    # jit: one compile instead of hundreds of eager ones for the pyramid's gradient.
    value, grad = jax.jit(jax.value_and_grad(lambda p: loss(p, *args[1:], **kwargs)))(args[0])
    keep = np.asarray(kwargs["where"])
    # The value is the (weighted) mean computed without the dropped elements at all.
    rest = {k: v for k, v in kwargs.items() if k not in ("where", "weights")}
    weights = kwargs.get("weights")
    kept_weights = None if weights is None else jnp.asarray(weights)[keep]
    expected = loss(*(a[keep] for a in args), weights=kept_weights, **rest)
    np.testing.assert_allclose(float(value), float(expected), rtol=1e-5)
    grad = np.asarray(grad)
    assert np.all(np.isfinite(grad))
    assert np.all(grad[~keep] == 0.0)


@pytest.mark.parametrize(
    "f", [subgrad.abs, subgrad.relu, functools.partial(subgrad.pinball_elementwise, tau=0.3)]
)
def test_nan_rule_keeps_the_kink_derivative(f):
    # Only NaN changed: +0.0 and -0.0 still get the kink's 0, inf the derivative of its side.
    x = jnp.array([-0.0, 0.0, jnp.inf, -jnp.inf, NAN])
    g = np.asarray(jax.vmap(jax.grad(f))(x))
    np.testing.assert_array_equal(g[:2], [0.0, 0.0])
    assert np.all(np.isfinite(g[2:4])) and np.isnan(g[4])


def test_jit_with_closed_over_concrete_weights():
    # The non-negativity check of concrete weights used jnp, whose result is a tracer under jit.
    out = jax.jit(lambda p: losses.l1(p, T, weights=jnp.array([1.0, 0.0, 1.0, 2.0])))(P)
    np.testing.assert_allclose(float(out), (0.5 + 0.5 + 2 * 2.0) / 4, rtol=1e-6)
