"""l1jax.image against scikit-image 0.26, SciPy and closed forms; loss gradients under jit."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.ndimage as ndi
from jax.test_util import check_grads
from skimage import color, data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

import l1jax.image as im

# --- test images -------------------------------------------------------------------------------


def _crops() -> np.ndarray:
    """Three 64x64 RGB crops of real photographs, float64 in [0, 1]."""
    return (
        np.stack(
            [
                data.astronaut()[120:184, 200:264],
                data.chelsea()[100:164, 150:214],
                data.coffee()[150:214, 250:314],
            ]
        ).astype(np.float64)
        / 255.0
    )


@pytest.fixture(scope="module")
def pairs() -> tuple[np.ndarray, np.ndarray]:
    """Clean crops and distorted versions (noise, blur, blur + noise), ``(3, 64, 64, 3)``."""
    rng = np.random.default_rng(0)
    clean = _crops()
    noisy = clean[0] + rng.normal(0.0, 0.08, clean[0].shape)
    blurred = ndi.gaussian_filter(clean[1], (1.2, 1.2, 0))
    both = ndi.gaussian_filter(clean[2], (0.8, 0.8, 0)) + rng.normal(0.0, 0.03, clean[2].shape)
    return clean, np.clip(np.stack([noisy, blurred, both]), 0.0, 1.0)


@pytest.fixture(scope="module")
def big_gray() -> np.ndarray:
    """A 192x192 grey crop of ``camera``, ``(192, 192, 1)``; five 11-tap scales need 161 px."""
    return (data.camera()[100:292, 150:342] / 255.0)[..., None]


def _sk_ssim(a, b, *, sigma=1.5, data_range=1.0):
    return structural_similarity(
        a,
        b,
        gaussian_weights=True,
        sigma=sigma,
        use_sample_covariance=False,
        data_range=data_range,
        channel_axis=-1,
    )


def f32(x):
    return jnp.asarray(x, jnp.float32)


# Module-level jits: one compile per shape, shared by the tests.
_ssim = jax.jit(im.ssim)
_ssim5 = jax.jit(functools.partial(im.ssim, sigma=5.0))
_ms_ssim = jax.jit(im.ms_ssim)
_psnr = jax.jit(im.psnr)
_filter = jax.jit(im.gaussian_filter, static_argnames=("sigma", "size", "padding"))
_ms_ssim_w = jax.jit(im.ms_ssim, static_argnames=("weights",))


# --- filters -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sigma", "taps"),
    [(0.5, 5), (1.0, 9), (1.5, 11), (2.0, 15), (4.0, 29), (5.0, 37), (8.0, 57), (9.0, 65)],
)
def test_window_size_is_skimage_rule(sigma, taps):
    assert im.window_size(sigma) == taps == 2 * int(3.5 * sigma + 0.5) + 1


@pytest.mark.parametrize("sigma", [0.5, 1.5, 5.0, 8.0])
# 150 and 190 exceed the 128-px limit of the dense path and go through the tiled one.
@pytest.mark.parametrize("shape", [(2, 48, 40, 3), (1, 9, 14, 2), (1, 150, 190, 1)])
def test_gaussian_filter_matches_scipy(x64, sigma, shape):
    x = np.random.default_rng(1).random(shape)
    size = im.window_size(sigma)
    ref = ndi.gaussian_filter(x, (0, sigma, sigma, 0), truncate=3.5, mode="reflect")
    # "same" reflects the border like scipy, repeatedly when the window is wider than the image.
    same = _filter(jnp.asarray(x), sigma=sigma, size=size, padding="same")
    np.testing.assert_allclose(same, ref, atol=1e-13)
    r = size // 2
    if min(shape[1:3]) >= size:
        valid = _filter(jnp.asarray(x), sigma=sigma, size=size, padding="valid")
        np.testing.assert_allclose(valid, ref[:, r:-r, r:-r], atol=1e-13)


def test_avg_pool2_repeats_last_row_and_column():
    from l1jax.image._filters import avg_pool2

    x = np.arange(15.0).reshape(3, 5, 1)
    padded = np.pad(x, ((0, 1), (0, 1), (0, 0)), mode="edge")
    expected = padded.reshape(2, 2, 3, 2, 1).mean(axis=(1, 3))
    np.testing.assert_allclose(avg_pool2(jnp.asarray(x)), expected)


# --- PSNR --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("offset", "max_val"), [(0.1, 1.0), (0.01, 1.0), (5.0, 255.0)])
def test_psnr_constant_offset_closed_form(offset, max_val):
    a = np.full((2, 8, 8, 3), 0.25 * max_val)
    got = im.psnr(f32(a), f32(a + offset), max_val=max_val)
    assert got.shape == (2,)
    np.testing.assert_allclose(got, 20 * np.log10(max_val / offset), rtol=1e-5)


def test_psnr_matches_skimage(pairs):
    clean, dist = pairs
    got = _psnr(f32(clean), f32(dist))
    expected = [
        peak_signal_noise_ratio(c, d, data_range=1.0) for c, d in zip(clean, dist, strict=True)
    ]
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_psnr_identical_is_inf():
    a = f32(np.full((4, 4, 1), 0.5))
    assert np.isposinf(im.psnr(a, a))


# --- SSIM --------------------------------------------------------------------------------------


def test_ssim_rgb_matches_skimage(pairs):
    clean, dist = pairs
    got = _ssim(f32(clean), f32(dist))
    assert got.shape == (3,)
    expected = [_sk_ssim(c, d) for c, d in zip(clean, dist, strict=True)]
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # Not trivially close: the three distortions give clearly different values.
    assert np.ptp(expected) > 0.1


def test_ssim_gray_matches_skimage(pairs):
    clean, dist = pairs
    gray_c, gray_d = clean[..., 1:2], dist[..., 1:2]
    got = _ssim(f32(gray_c), f32(gray_d))
    expected = [_sk_ssim(c, d) for c, d in zip(gray_c, gray_d, strict=True)]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_ssim_sigma5_and_255_range_match_skimage(pairs):
    clean, dist = pairs
    got = _ssim5(f32(255 * clean), f32(255 * dist), max_val=255.0)
    expected = [
        _sk_ssim(255 * c, 255 * d, sigma=5.0, data_range=255.0)
        for c, d in zip(clean, dist, strict=True)
    ]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_ssim_float64_matches_skimage_tightly(x64, pairs):
    clean, dist = pairs
    got = _ssim(jnp.asarray(clean[0]), jnp.asarray(dist[0]))
    np.testing.assert_allclose(got, _sk_ssim(clean[0], dist[0]), atol=1e-12)


def test_ssim_identical_is_exactly_one_and_symmetric(pairs):
    clean, dist = pairs
    assert np.all(_ssim(f32(clean), f32(clean)) == 1.0)
    np.testing.assert_allclose(
        _ssim(f32(dist), f32(clean)), _ssim(f32(clean), f32(dist)), atol=1e-6
    )


def test_ssim_and_psnr_vmap_match_batch(pairs):
    clean, dist = pairs
    np.testing.assert_allclose(
        jax.vmap(im.ssim)(f32(clean), f32(dist)), _ssim(f32(clean), f32(dist)), atol=1e-6
    )
    np.testing.assert_allclose(
        jax.vmap(im.psnr)(f32(clean), f32(dist)), _psnr(f32(clean), f32(dist)), rtol=1e-6
    )


# --- colour and SR conventions -----------------------------------------------------------------


def test_rgb_to_y_closed_form_and_skimage(pairs):
    clean, _ = pairs
    y = jax.jit(im.rgb_to_y)(f32(clean))
    assert y.shape == clean.shape[:-1] + (1,)
    r, g, b = clean[..., 0], clean[..., 1], clean[..., 2]
    closed = (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    np.testing.assert_allclose(y[..., 0], closed, atol=1e-6)
    np.testing.assert_allclose(y[..., 0], color.rgb2ycbcr(clean)[..., 0] / 255.0, atol=1e-6)
    # With max_val=255 the output is MATLAB's / skimage's Y in [16, 235] itself.
    y255 = im.rgb_to_y(f32(255 * clean), max_val=255.0)
    np.testing.assert_allclose(y255[..., 0], color.rgb2ycbcr(clean)[..., 0], atol=1e-3)
    # Black, white and the primaries: the studio range [16, 235] / 255 of MATLAB's rgb2ycbcr.
    corners = im.rgb_to_y(f32([[[[0, 0, 0], [1, 1, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]]]]))
    expected = np.array([16.0, 235.0, 16 + 65.481, 16 + 128.553, 16 + 24.966]) / 255.0
    np.testing.assert_allclose(corners[0, 0, :, 0], expected, atol=1e-6)


def test_crop_border_and_quantize():
    x = jnp.arange(2 * 7 * 9 * 1, dtype=jnp.float32).reshape(2, 7, 9, 1)
    np.testing.assert_array_equal(im.crop_border(x, 2), np.asarray(x)[:, 2:5, 2:7])
    np.testing.assert_array_equal(im.crop_border(x, 0), x)
    v = f32([[[[-0.2], [0.0], [0.3], [0.50196], [1.0], [1.7]]]])
    q = im.quantize_8bit(v)
    expected = np.round(np.clip(np.asarray(v), 0, 1) * 255) / 255
    np.testing.assert_allclose(q, expected, atol=1e-7)
    np.testing.assert_array_equal(im.quantize_8bit(q), q)
    np.testing.assert_allclose(im.quantize_8bit(255 * v, max_val=255.0), 255 * expected, atol=1e-4)


def test_sr_metrics_follow_the_paper_recipe(pairs):
    clean, dist = pairs
    scale = 3
    got = jax.jit(functools.partial(im.sr_metrics, scale=scale))(f32(dist), f32(clean))
    assert set(got) == {"psnr", "ssim"}
    for i in range(3):
        sr = np.round(np.clip(dist[i], 0, 1) * 255) / 255
        hr = np.round(clean[i] * 255) / 255
        ys, yh = (color.rgb2ycbcr(v)[scale:-scale, scale:-scale, :1] / 255 for v in (sr, hr))
        np.testing.assert_allclose(
            got["psnr"][i], peak_signal_noise_ratio(yh, ys, data_range=1.0), rtol=1e-5
        )
        np.testing.assert_allclose(got["ssim"][i], _sk_ssim(yh, ys), atol=1e-4)


def test_sr_metrics_rgb_without_quantization(pairs):
    clean, dist = pairs
    got = im.sr_metrics(f32(dist[:1]), f32(clean[:1]), scale=2, y_only=False, quantize=False)
    c, d = clean[0, 2:-2, 2:-2], dist[0, 2:-2, 2:-2]
    np.testing.assert_allclose(
        got["psnr"][0], peak_signal_noise_ratio(c, d, data_range=1.0), rtol=1e-5
    )
    np.testing.assert_allclose(got["ssim"][0], _sk_ssim(c, d), atol=1e-4)


# --- MS-SSIM -----------------------------------------------------------------------------------


def _reference_ms_ssim(x, y, weights=im.MS_SSIM_WEIGHTS):
    """Wang et al. (2003) per channel with SciPy filters and skimage's SSIM at the last scale."""

    def pool(v):
        v = np.pad(v, ((0, v.shape[0] % 2), (0, v.shape[1] % 2), (0, 0)), mode="edge")
        return v.reshape(v.shape[0] // 2, 2, v.shape[1] // 2, 2, -1).mean(axis=(1, 3))

    def filt(v):
        return ndi.gaussian_filter(v, (1.5, 1.5, 0), truncate=3.5, mode="reflect")[5:-5, 5:-5]

    c2 = 0.03**2
    out = np.ones(x.shape[-1])
    for j, w in enumerate(weights):
        if j:
            x, y = pool(x), pool(y)
        if j == len(weights) - 1:
            term = np.array(
                [_sk_ssim(x[..., k : k + 1], y[..., k : k + 1]) for k in range(x.shape[-1])]
            )
        else:
            mx, my = filt(x), filt(y)
            vx, vy = filt(x * x) - mx**2, filt(y * y) - my**2
            cov = filt(x * y) - mx * my
            term = ((2 * cov + c2) / (vx + vy + c2)).mean(axis=(0, 1))
        out = out * np.maximum(term, 0.0) ** w
    return out.mean()


def test_ms_ssim_matches_reference(big_gray):
    rng = np.random.default_rng(2)
    x = np.concatenate([big_gray, big_gray[::-1]], axis=-1)  # two channels
    y = np.clip(ndi.gaussian_filter(x, (1.0, 1.0, 0)) + rng.normal(0, 0.05, x.shape), 0, 1)
    np.testing.assert_allclose(_ms_ssim(f32(x), f32(y)), _reference_ms_ssim(x, y), atol=1e-4)


def test_ms_ssim_odd_size_matches_reference(big_gray):
    rng = np.random.default_rng(3)
    x = big_gray[:171, :183]
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    np.testing.assert_allclose(_ms_ssim(f32(x), f32(y)), _reference_ms_ssim(x, y), atol=1e-4)


def test_ms_ssim_properties(big_gray):
    rng = np.random.default_rng(4)
    noise = rng.normal(0.0, 1.0, big_gray.shape)
    levels = [0.0, 0.01, 0.03, 0.1, 0.3]
    batch = np.stack([np.clip(big_gray + s * noise, 0, 1) for s in levels])
    x = f32(np.broadcast_to(big_gray, batch.shape))
    scores = np.asarray(_ms_ssim(x, f32(batch)))
    assert scores[0] == 1.0  # identical images, exactly
    assert np.all(np.diff(scores) < 0), scores  # strictly decreasing with the noise level
    assert np.all((scores >= 0) & (scores <= 1))
    np.testing.assert_allclose(_ms_ssim(f32(batch), x), scores, atol=1e-6)  # symmetric
    np.testing.assert_allclose(jax.jit(jax.vmap(im.ms_ssim))(x, f32(batch)), scores, atol=1e-6)


def test_ms_ssim_minimum_size(big_gray):
    x = f32(big_gray[:161, :161])
    assert float(_ms_ssim(x, x)) == 1.0
    with pytest.raises(ValueError, match=r"at least 161x161.*160 x 161"):
        im.ms_ssim(x[:160], x[:160])
    # Three scales need (11 - 1) * 4 + 1 = 41 px.
    small = f32(big_gray[:41, :41])
    assert float(_ms_ssim_w(small, small, weights=(0.2, 0.3, 0.5))) == 1.0


# --- losses ------------------------------------------------------------------------------------


_LOSS_FNS = {
    "ssim": im.ssim_loss,
    "ssim_sigma5": functools.partial(im.ssim_loss, sigma=5.0),
    "ssim_sigma9": functools.partial(im.ssim_loss, sigma=9.0),
    "ms_ssim_sigmas": im.ms_ssim_loss,
    "mix_sigmas": im.mix_loss,
    "mix_fractional": functools.partial(im.mix_loss, scale_weights=im.MS_SSIM_WEIGHTS),
    "ms_ssim_rescale": functools.partial(
        im.ms_ssim_loss, scale_weights=im.MS_SSIM_WEIGHTS, negative_cs="rescale"
    ),
}
_LOSS_GRADS = {name: jax.jit(jax.value_and_grad(f)) for name, f in _LOSS_FNS.items()}


@pytest.fixture(scope="module")
def patch_cases() -> dict[str, tuple[jax.Array, jax.Array]]:
    """Degenerate and ordinary ``(2, 24, 24, 3)`` patch pairs, one compile shape for all."""
    rng = np.random.default_rng(5)
    shape = (2, 24, 24, 3)
    img = f32(_crops()[:2, 20:44, 20:44])
    noisy = jnp.clip(img + f32(rng.normal(0, 0.1, shape)), 0, 1)
    return {
        "identical": (img, img),
        "zeros": (jnp.zeros(shape), jnp.zeros(shape)),
        "ones": (jnp.ones(shape), jnp.ones(shape)),
        "zeros_vs_ones": (jnp.zeros(shape), jnp.ones(shape)),
        "constant_vs_image": (jnp.full(shape, 0.5), img),
        "image_vs_constant": (img, jnp.full(shape, 0.5)),
        "anticorrelated": (1.0 - img, img),
        "noisy": (noisy, img),
    }


@pytest.mark.parametrize("loss", sorted(_LOSS_FNS))
def test_loss_gradients_finite_under_jit(loss, patch_cases):
    for case, (p, t) in patch_cases.items():
        value, grad = _LOSS_GRADS[loss](p, t)
        assert np.isfinite(value), (loss, case)
        assert np.all(np.isfinite(grad)), (loss, case)
        if case in ("identical", "zeros", "ones"):
            assert float(value) == 0.0, (loss, case)
            assert np.all(grad == 0.0), (loss, case)
        else:
            assert float(value) > 0.0, (loss, case)


def test_loss_ranges_and_orderings(patch_cases):
    p, t = patch_cases["noisy"]
    mild = jnp.clip(t + 0.2 * (p - t), 0, 1)
    for loss in _LOSS_FNS.values():
        assert 0.0 < float(loss(mild, t)) < float(loss(p, t)) <= 1.0


def test_negative_cs_clip_kills_the_gradient_and_rescale_keeps_it(patch_cases):
    from l1jax.image._metrics import ssim_complements

    p, t = patch_cases["anticorrelated"]
    clip = _LOSS_GRADS["ms_ssim_sigmas"](p, t)
    assert float(clip[0]) == 1.0
    assert np.all(clip[1] == 0.0)
    value, grad = jax.jit(
        jax.value_and_grad(
            functools.partial(im.ms_ssim_loss, negative_cs="rescale", reduction="sum")
        )
    )(p, t)
    assert np.all(np.abs(grad).sum(axis=(1, 2)) > 0)  # every image and channel keeps a gradient
    # Closed form: prod_j (1 + m_j) / 2 with m_j the per-scale means, all exponents 1.
    c1, c2 = jnp.float32(0.01**2), jnp.float32(0.03**2)
    prod = 1.0
    for s in im.ZHAO_SIGMAS:
        d_lum, d_cs = ssim_complements(
            p, t, sigma=s, size=im.window_size(s), padding="same", c1=c1, c2=c2
        )
        term = (1 - d_lum) * (1 - d_cs) if s == im.ZHAO_SIGMAS[-1] else 1 - d_cs
        prod = prod * (1 + jnp.mean(term, axis=(1, 2))) / 2
    np.testing.assert_allclose(value, jnp.sum(1 - prod.mean(axis=-1)), rtol=1e-5)


def test_ssim_loss_valid_is_one_minus_ssim(pairs):
    clean, dist = pairs
    got = im.ssim_loss(f32(dist), f32(clean), padding="valid", reduction="none")
    np.testing.assert_allclose(1.0 - got, _ssim(f32(dist), f32(clean)), atol=1e-6)


def test_ssim_loss_check_grads(x64):
    rng = np.random.default_rng(6)
    p = jnp.asarray(rng.random((1, 10, 10, 2)))
    t = jnp.asarray(rng.random((1, 10, 10, 2)))
    loss = jax.jit(functools.partial(im.mix_loss, alpha=0.5, sigmas=(1.0, 3.0)))
    check_grads(lambda q: loss(q, t), (p,), order=1, modes=("rev",))


def test_ms_ssim_loss_pyramid_is_one_minus_ms_ssim(big_gray):
    rng = np.random.default_rng(7)
    y = np.clip(big_gray + rng.normal(0, 0.05, big_gray.shape), 0, 1)
    loss = jax.jit(functools.partial(im.ms_ssim_loss, variant="pyramid"))(f32(y), f32(big_gray))
    np.testing.assert_allclose(1.0 - loss, _ms_ssim(f32(y), f32(big_gray)), atol=1e-6)


def test_ms_ssim_loss_sigmas_closed_form_on_scales(patch_cases):
    """The default is ``mean(l cs)_{sigma=8} * prod_{sigma<8} mean(cs)`` (all exponents 1)."""
    from l1jax.image._metrics import ssim_complements

    p, t = patch_cases["noisy"]
    c1, c2 = jnp.float32(0.01**2), jnp.float32(0.03**2)
    value = jnp.ones(p.shape[:1] + p.shape[-1:])
    for s in im.ZHAO_SIGMAS:
        d_lum, d_cs = ssim_complements(
            p, t, sigma=s, size=im.window_size(s), padding="same", c1=c1, c2=c2
        )
        term = (1 - d_lum) * (1 - d_cs) if s == im.ZHAO_SIGMAS[-1] else 1 - d_cs
        value = value * jnp.mean(term, axis=(1, 2))
    got = im.ms_ssim_loss(p, t, reduction="none")
    np.testing.assert_allclose(got, 1.0 - value.mean(axis=-1), atol=1e-6)


def test_gaussian_weighted_l1_mean_is_plain_l1(patch_cases):
    """The identity behind mix_loss: symmetric borders give every pixel total weight 1."""
    p, t = patch_cases["noisy"]
    err = jnp.abs(p - t)
    for sigma in (1.5, 8.0, 20.0):  # 20: a 141-tap window, reflected several times
        filtered = _filter(err, sigma=sigma, size=im.window_size(sigma), padding="same")
        np.testing.assert_allclose(
            filtered.mean(axis=(1, 2, 3)), err.mean(axis=(1, 2, 3)), rtol=1e-5
        )


def test_mix_loss_endpoints_and_mixture(patch_cases):
    p, t = patch_cases["noisy"]
    l1 = jnp.mean(jnp.abs(p - t), axis=(1, 2, 3))
    ms = im.ms_ssim_loss(p, t, reduction="none")
    np.testing.assert_allclose(im.mix_loss(p, t, alpha=0.0, reduction="none"), l1, rtol=1e-6)
    np.testing.assert_allclose(im.mix_loss(p, t, alpha=1.0, reduction="none"), ms, rtol=1e-6)
    np.testing.assert_allclose(im.mix_loss(p, t), jnp.mean(0.84 * ms + 0.16 * l1), rtol=1e-6)
    # max_val rescales the L1 term away: [0, 255] images give the [0, 1] loss.
    np.testing.assert_allclose(
        im.mix_loss(255 * p, 255 * t, max_val=255.0), im.mix_loss(p, t), rtol=1e-4
    )


def test_loss_reductions_weights_and_mask(patch_cases):
    p, t = patch_cases["noisy"]
    per = im.ssim_loss(p, t, reduction="none")
    assert per.shape == (2,)
    np.testing.assert_allclose(im.ssim_loss(p, t), per.mean(), rtol=1e-6)
    np.testing.assert_allclose(im.ssim_loss(p, t, reduction="sum"), per.sum(), rtol=1e-6)
    w = f32([1.0, 3.0])
    np.testing.assert_allclose(
        im.ms_ssim_loss(p, t, weights=w),
        (im.ms_ssim_loss(p, t, reduction="none") * w).sum() / 4,
        rtol=1e-6,
    )
    np.testing.assert_allclose(
        im.mix_loss(p, t, where=jnp.array([False, True])),
        im.mix_loss(p, t, reduction="none")[1],
        rtol=1e-6,
    )
    # One image without batch axes gives a scalar.
    assert im.ssim_loss(p[0], t[0], reduction="none").shape == ()


def test_losses_vmap_matches_batch(patch_cases):
    p, t = patch_cases["noisy"]
    for loss in (im.ssim_loss, im.ms_ssim_loss, im.mix_loss):
        per = jax.vmap(lambda a, b, loss=loss: loss(a, b))(p, t)
        # float32 windows summed in another order: a few ulps of the loss (1.5e-6 seen)
        np.testing.assert_allclose(per, loss(p, t, reduction="none"), rtol=1e-5)


def test_losses_registry():
    assert im.LOSSES == {"ssim": im.ssim_loss, "ms_ssim": im.ms_ssim_loss, "mix": im.mix_loss}


# --- bad inputs --------------------------------------------------------------------------------


_IMG = jnp.zeros((1, 16, 16, 3))


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda: im.psnr(_IMG, _IMG[..., :2]),
            r"psnr: a and b .*\(1, 16, 16, 3\).*\(1, 16, 16, 2\)",
        ),
        (lambda: im.ssim(_IMG, _IMG[:, :15]), r"ssim: a and b must have the same shape"),
        (lambda: im.ssim_loss(_IMG, _IMG[0]), r"predictions and targets .*targets.shape"),
        (lambda: im.psnr(_IMG, _IMG, max_val=0.0), r"psnr: max_val must lie in \(0.0, inf\)"),
        (lambda: im.ssim(_IMG, _IMG, max_val=-1.0), r"ssim: max_val"),
        (
            lambda: im.ssim(_IMG[:, :10, :10], _IMG[:, :10, :10]),
            r"ssim: images must be at least 11x11 .* 10 x 10",
        ),
        (lambda: im.ssim(_IMG, _IMG, sigma=5.0), r"at least 37x37 .* 16 x 16"),
        (lambda: im.ssim(_IMG, _IMG, filter_size=4), r"filter_size must be a positive odd"),
        (lambda: im.ssim(_IMG, _IMG, sigma=0.0), r"sigma must be a finite number > 0"),
        (lambda: im.ssim(_IMG, _IMG, k2=0.0), r"k2 must lie in"),
        (lambda: im.ssim(_IMG[0, 0], _IMG[0, 0]), r"must have shape \(..., H, W, C\)"),
        (lambda: im.ms_ssim(_IMG, _IMG), r"ms_ssim: images must be at least 161x161"),
        (lambda: im.ms_ssim(_IMG, _IMG, weights=(0.5, -0.1)), r"weights must be .* >= 0"),
        (lambda: im.ssim_loss(_IMG, _IMG, padding="full"), r"padding must be one of"),
        (lambda: im.ssim_loss(_IMG, _IMG, sigma=9.0, padding="valid"), r"at least 65x65"),
        (lambda: im.ms_ssim_loss(_IMG, _IMG, variant="scales"), r"variant must be one of"),
        (lambda: im.mix_loss(_IMG, _IMG, negative_cs="abs"), r"negative_cs must be one of"),
        (lambda: im.ms_ssim_loss(_IMG, _IMG, sigma=2.0), r"sigma applies to variant='pyramid'"),
        (
            lambda: im.ms_ssim_loss(_IMG, _IMG, variant="pyramid", sigmas=(1.0,)),
            r"sigmas applies to variant='sigmas'",
        ),
        (
            lambda: im.ms_ssim_loss(_IMG, _IMG, scale_weights=(1.0, 1.0)),
            r"scale_weights must have one entry per scale \(5\)",
        ),
        (lambda: im.ms_ssim_loss(_IMG, _IMG, variant="pyramid"), r"at least 161x161"),
        (lambda: im.mix_loss(_IMG, _IMG, alpha=1.5), r"mix_loss: alpha must lie in \[0.0, 1.0\]"),
        (lambda: im.ssim_loss(_IMG, _IMG, reduction="avg"), r"reduction must be one of"),
        (lambda: im.rgb_to_y(_IMG[..., :2]), r"rgb_to_y: img must have 3 channels"),
        (lambda: im.crop_border(_IMG, 8), r"crop_border: cropping n=8 .* 16 x 16"),
        (lambda: im.crop_border(_IMG, -1), r"n must be an integer >= 0"),
        (lambda: im.sr_metrics(_IMG[..., :2], _IMG[..., :2], scale=2), r"y_only=True needs RGB"),
        (lambda: im.sr_metrics(_IMG, _IMG, scale=0), r"scale must be an integer >= 1"),
    ],
)
def test_bad_inputs_raise(call, match):
    with pytest.raises(ValueError, match=match):
        call()


@pytest.mark.parametrize("fn", [im.psnr, im.ssim, im.ssim_loss, im.mix_loss])
def test_integer_images_raise_value_and_type_error(fn):
    ints = jnp.zeros((1, 16, 16, 3), jnp.int32)
    with pytest.raises(ValueError, match=r"must be a floating-point image.*int32"):
        fn(ints, _IMG)
    with pytest.raises(TypeError):
        fn(_IMG, ints)


def test_traced_sigma_is_refused():
    with pytest.raises(ValueError, match=r"sigma sets the window size"):
        jax.jit(lambda s: im.ssim_loss(_IMG, _IMG, sigma=s))(1.5)


def test_traced_max_val_is_allowed(pairs):
    clean, dist = pairs
    got = jax.jit(lambda m: im.ssim(f32(clean), f32(dist), max_val=m))(1.0)
    np.testing.assert_allclose(got, _ssim(f32(clean), f32(dist)), atol=1e-6)
