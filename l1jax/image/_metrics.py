"""PSNR, SSIM and MS-SSIM of ``(..., H, W, C)`` images, and the SR-paper evaluation recipe.

Every metric reduces over ``(H, W, C)`` and keeps the leading (batch) axes, so a batch
``(N, H, W, C)`` gives ``(N,)`` and one image ``(H, W, C)`` a scalar. Arithmetic is done in
at least float32 whatever the input dtype.
"""

from __future__ import annotations

import functools
import operator
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float

from l1jax import subgrad
from l1jax.image._color import crop_border, quantize_8bit, rgb_to_y
from l1jax.image._filters import avg_pool2, gaussian_filter
from l1jax.image._validate import (
    check_constants,
    check_fits,
    check_max_val,
    filter_size_for,
    image_pair,
    integer,
    scale_weights,
    static_positive,
)

# Wang, Simoncelli & Bovik (2003): the exponents of scales 1 (finest) .. 5.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


# --- shared with the losses --------------------------------------------------------------------


# One scale of MS-SSIM: (sigma, window size, padding, halve the images first).
Scale = tuple[float, int, Literal["valid", "same"], bool]


def compute_dtype(x: jax.Array):
    return jnp.promote_types(x.dtype, jnp.float32)


def ssim_constants(max_val, k1, k2, dtype) -> tuple[jax.Array, jax.Array]:
    m = jnp.asarray(max_val, dtype)
    return (jnp.asarray(k1, dtype) * m) ** 2, (jnp.asarray(k2, dtype) * m) ** 2


def ssim_complements(
    x: jax.Array,
    y: jax.Array,
    *,
    sigma: float,
    size: int,
    padding: Literal["valid", "same"],
    c1,
    c2,
) -> tuple[jax.Array, jax.Array]:
    """Per-pixel ``1 - l`` and ``1 - cs``, the complements of SSIM's two factors.

    Luminance ``l = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1)`` and contrast-structure
    ``cs = (2 s_xy + C2) / (s_x^2 + s_y^2 + C2)``, with Gaussian-weighted means and population
    (co)variances; ``l cs`` is the SSIM map. In terms of ``u = x + y`` and ``v = x - y``:

    ``1 - l = 2 mu_v^2 / (mu_u^2 + mu_v^2 + 2 C1)``, ``1 - cs = 2 s_v^2 / (s_u^2 + s_v^2 + 2 C2)``.

    Four filtered moments instead of five; rounding errors of ``1 - cs`` scale with the
    difference ``v`` rather than the intensities, which matters when the images are close (the
    regime a trained network lives in); both complements, and their gradients, are exactly 0
    for identical images (``v = 0``); and both denominators are at least ``2 C1, 2 C2 > 0``, so
    constant images are finite too.

    Returns:
      ``(1 - l, 1 - cs)``, each ``(..., H', W', C)``.
    """
    c = x.shape[-1]
    u = x + y
    v = x - y
    moments = gaussian_filter(
        jnp.concatenate([u, v, u * u, v * v], axis=-1), sigma=sigma, size=size, padding=padding
    )
    mu, mv, muu, mvv = (moments[..., i * c : (i + 1) * c] for i in range(4))
    mu2 = mu * mu
    mv2 = mv * mv
    var_u = muu - mu2
    var_v = mvv - mv2
    d_lum = 2 * mv2 / (mu2 + mv2 + 2 * c1)
    d_cs = 2 * var_v / (var_u + var_v + 2 * c2)
    return d_lum, d_cs


def one_minus_ssim(d_lum: jax.Array, d_cs: jax.Array) -> jax.Array:
    """``1 - l cs`` from the complements, without cancellation: ``a + b - a b``."""
    return d_lum + d_cs - d_lum * d_cs


def mean_from_complement(d: jax.Array, axis) -> jax.Array:
    """``mean(1 - d)`` as ``1 - mean(d)``: exactly 1 when ``d`` is 0.

    Compiled XLA divides by the element count as a multiplication by its rounded reciprocal,
    so a plain mean of ones can come out as ``1 - 2^-27``; a mean of zeros cannot.
    """
    return 1.0 - jnp.mean(d, axis=axis)


def _pow(v: jax.Array, w: float) -> jax.Array:
    """``v ** w`` for ``v >= 0`` with a finite gradient at ``v = 0`` (where it is 0); NaN stays
    NaN (``NaN ** 0`` is 1 in IEEE arithmetic, and ``NaN > 0`` is False)."""
    if w == 1:
        return v
    nan = jnp.isnan(v)
    if w == 0:
        return jnp.where(nan, v, jnp.ones_like(v))
    pos = v > 0
    # Double where: the unselected branch must not evaluate 0 ** (w - 1) = inf in the gradient.
    zero_or_nan = jnp.where(nan, v, jnp.zeros_like(v))
    return jnp.where(pos, jnp.where(pos, v, jnp.ones_like(v)) ** w, zero_or_nan)


def ms_ssim_value(
    x: jax.Array,
    y: jax.Array,
    *,
    scales: tuple[Scale, ...],
    weights: tuple[float, ...],
    c1,
    c2,
    negative_cs: Literal["clip", "rescale"] = "clip",
) -> jax.Array:
    """``prod_j f(mean cs_j)^w_j`` (last scale: ``mean(l cs)``), averaged over channels.

    ``scales`` holds ``(sigma, size, padding, halve_first)`` per scale, finest first;
    ``halve_first`` applies :func:`avg_pool2` to both images before that scale. ``f`` maps a
    mean in ``[-1, 1]`` to ``[0, 1]``: ``relu`` for ``negative_cs="clip"``, ``(1 + m) / 2``
    for ``"rescale"``.
    """
    factors = []
    for j, ((sigma, size, padding, halve), w) in enumerate(zip(scales, weights, strict=True)):
        if halve:
            x, y = avg_pool2(x), avg_pool2(y)
        d_lum, d_cs = ssim_complements(x, y, sigma=sigma, size=size, padding=padding, c1=c1, c2=c2)
        d = one_minus_ssim(d_lum, d_cs) if j == len(scales) - 1 else d_cs
        m = mean_from_complement(d, (-3, -2))
        # A negative mean (anti-correlated structure) would make a fractional power NaN: it is
        # clipped to 0 with derivative 0, as tf.image.ssim_multiscale and pytorch_msssim do, or
        # the whole range is rescaled (relu only absorbs rounding below -1).
        m = subgrad.relu(m) if negative_cs == "clip" else subgrad.relu(0.5 * (1.0 + m))
        factors.append(_pow(m, w))
    return mean_from_complement(1.0 - functools.reduce(operator.mul, factors), -1)


def pyramid_scales(
    shape: tuple[int, ...], weights: tuple[float, ...], sigma: float, size: int, fn: str
) -> tuple[Scale, ...]:
    n = len(weights)
    min_side = (size - 1) * 2 ** (n - 1) + 1
    check_fits(shape, min_side, fn, f"{n} scales, each halving the image, with a {size}-tap window")
    return tuple((sigma, size, "valid", j > 0) for j in range(n))


def prepare_pair(a, b, max_val, k1, k2, fn: str, names: tuple[str, str] = ("a", "b")):
    """Checks an image pair and the SSIM constants; returns both images in the compute dtype
    and ``(c1, c2)``."""
    x, y = image_pair(a, b, names, fn)
    check_max_val(max_val, fn)
    check_constants(k1, k2, fn)
    dtype = compute_dtype(x)
    c1, c2 = ssim_constants(max_val, k1, k2, dtype)
    return x.astype(dtype), y.astype(dtype), c1, c2


# --- public metrics ----------------------------------------------------------------------------


def psnr(
    a: Float[ArrayLike, "*batch h w c"],
    b: Float[ArrayLike, "*batch h w c"],
    *,
    max_val: ArrayLike = 1.0,
) -> Float[Array, "*batch"]:
    """Peak signal-to-noise ratio ``10 log10(max_val^2 / mean((a - b)^2))`` in dB.

    The mean runs over ``(H, W, C)``; identical images give ``+inf``, a NaN pixel NaN.

    Args:
      a: floating image ``(..., H, W, C)`` with values in ``[0, max_val]``.
      b: image of the same shape.
      max_val: peak value (the data range), a real scalar ``> 0``.

    Returns:
      ``(...)``: one PSNR per image.

    Raises:
      ValueError: on a shape mismatch, a non-floating image, fewer than 3 axes, an empty
        ``H``, ``W`` or ``C`` axis, or ``max_val`` not a scalar or ``<= 0``.

    References:
      - ``skimage.metrics.peak_signal_noise_ratio(a, b, data_range=max_val)`` (same value).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> a = jnp.full((1, 16, 16, 3), 0.5)  # (N, H, W, C) in [0, max_val]
      >>> b = a.at[:, :8].add(0.1)
      >>> print([round(float(v), 2) for v in image.psnr(a, b)])  # 10 log10(1 / 0.005) per image
      [23.01]
    """
    x, y = image_pair(a, b, ("a", "b"), "psnr")
    check_max_val(max_val, "psnr")
    dtype = compute_dtype(x)
    x, y = x.astype(dtype), y.astype(dtype)
    m = jnp.asarray(max_val, dtype)
    mse = jnp.mean(jnp.square(x - y), axis=(-3, -2, -1))
    return 10.0 * jnp.log10(m * m / mse)


def ssim(
    a: Float[ArrayLike, "*batch h w c"],
    b: Float[ArrayLike, "*batch h w c"],
    *,
    max_val: ArrayLike = 1.0,
    filter_size: int | None = None,
    sigma: float = 1.5,
    k1: ArrayLike = 0.01,
    k2: ArrayLike = 0.03,
) -> Float[Array, "*batch"]:
    """Structural similarity, Gaussian window, averaged over the valid region and channels.

    ``SSIM = mean_p [(2 mu_a mu_b + C1)(2 s_ab + C2) / ((mu_a^2 + mu_b^2 + C1)(s_a^2 + s_b^2
    + C2))]`` with ``C1 = (k1 max_val)^2``, ``C2 = (k2 max_val)^2``, local means and population
    (co)variances weighted by a normalised Gaussian of standard deviation ``sigma``, and ``p``
    over the ``(H - filter_size + 1) x (W - filter_size + 1)`` positions whose window lies in
    the image, then over channels.

    This is exactly ``skimage.metrics.structural_similarity(a, b, gaussian_weights=True,
    sigma=sigma, use_sample_covariance=False, data_range=max_val, channel_axis=-1)``: skimage
    truncates the Gaussian at 3.5 sigma (11 taps for sigma = 1.5, Wang et al.'s window),
    filters with reflected borders and then crops the ``filter_size // 2`` border, which
    leaves the valid region. The value can be negative for anti-correlated images.

    Args:
      a: floating image ``(..., H, W, C)`` with values in ``[0, max_val]``.
      b: image of the same shape.
      max_val: data range, a real scalar ``> 0``.
      filter_size: odd window side; ``None`` gives skimage's ``2 int(3.5 sigma + 0.5) + 1``.
      sigma: standard deviation of the Gaussian window in pixels, ``> 0`` (a concrete number:
        it sets the window size).
      k1: luminance stabiliser, a real scalar ``> 0``.
      k2: contrast stabiliser, a real scalar ``> 0``.

    Returns:
      ``(...)``: one SSIM per image.

    Raises:
      ValueError: on a shape mismatch, a non-floating image, bad hyperparameters, or an image
        smaller than the window.

    References:
      - Wang, Z., Bovik, A. C., Sheikh, H. R. and Simoncelli, E. P. (2004). Image quality
      - assessment: from error visibility to structural similarity. IEEE TIP 13(4), 600-612.
      - scikit-image 0.26 ``skimage.metrics.structural_similarity``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> a = jnp.full((1, 16, 16, 3), 0.5)  # (N, H, W, C) in [0, max_val]
      >>> b = a.at[:, :8].add(0.1)
      >>> print(float(image.ssim(a, a)[0]), round(float(image.ssim(a, b)[0]), 4))
      1.0 0.4524
    """
    x, y, c1, c2 = prepare_pair(a, b, max_val, k1, k2, "ssim")
    sigma = static_positive(sigma, "sigma", "ssim")
    size = filter_size_for(filter_size, sigma, "ssim")
    check_fits(x.shape, size, "ssim", f"the filter_size={size} window of sigma={sigma}")
    d_lum, d_cs = ssim_complements(x, y, sigma=sigma, size=size, padding="valid", c1=c1, c2=c2)
    return mean_from_complement(one_minus_ssim(d_lum, d_cs), (-3, -2, -1))


def ms_ssim(
    a: Float[ArrayLike, "*batch h w c"],
    b: Float[ArrayLike, "*batch h w c"],
    *,
    max_val: ArrayLike = 1.0,
    weights=MS_SSIM_WEIGHTS,
    filter_size: int | None = None,
    sigma: float = 1.5,
    k1: ArrayLike = 0.01,
    k2: ArrayLike = 0.03,
) -> Float[Array, "*batch"]:
    """Multi-scale SSIM of Wang, Simoncelli & Bovik (2003), per channel, then channel mean.

    ``MS-SSIM = mean(l_M cs_M)^{w_M} prod_{j<M} mean(cs_j)^{w_j}``: scale 1 is the image,
    scale ``j + 1`` is scale ``j`` after 2x2 average pooling (an odd side first repeats its
    last row / column), each mean runs over the valid region of that scale's
    ``filter_size`` Gaussian window (as in :func:`ssim`), and the last scale contributes the
    full SSIM. A negative mean is clipped to 0 before the power (the handling of
    ``tf.image.ssim_multiscale`` and ``pytorch_msssim``), which keeps the value in ``[0, 1]``.
    Identical images give exactly 1; a NaN pixel gives NaN (for that image), not 0.

    Args:
      a: floating image ``(..., H, W, C)``; ``H`` and ``W`` must be at least
        ``(filter_size - 1) 2^(M - 1) + 1`` (161 for five scales and 11 taps).
      b: image of the same shape.
      max_val: data range, ``> 0``.
      weights: exponents ``w_1 .. w_M >= 0``, finest scale first; their number sets ``M``.
      filter_size, sigma, k1, k2: as in :func:`ssim`, at every scale.

    Returns:
      ``(...)``: one MS-SSIM per image.

    Raises:
      ValueError: on a shape mismatch, a non-floating image, bad hyperparameters, or images
        too small for ``M`` scales.

    References:
      - Wang, Z., Simoncelli, E. P. and Bovik, A. C. (2003). Multiscale structural similarity for
      - image quality assessment. Asilomar Conference on Signals, Systems and Computers.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> a = jnp.full((1, 176, 176, 1), 0.5)  # five scales need a side of at least 161
      >>> print(float(image.ms_ssim(a, a)[0]))
      1.0
    """
    x, y, c1, c2 = prepare_pair(a, b, max_val, k1, k2, "ms_ssim")
    w = scale_weights(weights, "weights", "ms_ssim")
    sigma = static_positive(sigma, "sigma", "ms_ssim")
    size = filter_size_for(filter_size, sigma, "ms_ssim")
    scales = pyramid_scales(x.shape, w, sigma, size, "ms_ssim")
    return ms_ssim_value(x, y, scales=scales, weights=w, c1=c1, c2=c2)


def sr_metrics(
    sr: Float[ArrayLike, "*batch h w c"],
    hr: Float[ArrayLike, "*batch h w c"],
    *,
    scale: int,
    max_val: ArrayLike = 1.0,
    y_only: bool = True,
    quantize: bool = True,
    border: int | None = None,
) -> dict[str, Float[Array, "*batch"]]:
    """PSNR and SSIM the way super-resolution papers report them.

    In order: both images rounded to 8 bits (:func:`quantize_8bit`, if ``quantize``), RGB
    reduced to BT.601 luma (:func:`rgb_to_y`, if ``y_only``; not rounded again, as in EDSR and
    BasicSR), ``border`` pixels (default ``scale``) cropped from each side, then :func:`psnr`
    and :func:`ssim` (Gaussian 11x11, sigma 1.5) with ``max_val``.

    Args:
      sr: super-resolved image ``(..., H, W, C)`` in ``[0, max_val]``.
      hr: ground truth, same shape.
      scale: upscaling factor, an integer ``>= 1``.
      max_val: peak value of both images.
      y_only: evaluate on the luma of RGB images (``C = 3``); a grey image (``C = 1``) is used
        as it is.
      quantize: round both images to 8 bits first.
      border: pixels cropped per side; ``None`` means ``scale``.

    Returns:
      ``{"psnr": (...), "ssim": (...)}``, one value per image.

    Raises:
      ValueError: on bad images or arguments, e.g. ``y_only`` with ``C`` not 1 or 3.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> a = jnp.full((1, 16, 16, 3), 0.5)  # (N, H, W, C) in [0, max_val]
      >>> b = a.at[:, :8].add(0.1)
      >>> m = image.sr_metrics(a, b, scale=2)  # on the luma channel, border of `scale` cropped
      >>> print(sorted(m), [round(float(v), 2) for v in m["psnr"]])
      ['psnr', 'ssim'] [24.5]
    """
    fn = "sr_metrics"
    x, y = image_pair(sr, hr, ("sr", "hr"), fn)
    check_max_val(max_val, fn)
    scale = integer(scale, "scale", fn, minimum=1)
    crop = scale if border is None else integer(border, "border", fn, minimum=0)
    if quantize:
        x, y = quantize_8bit(x, max_val=max_val), quantize_8bit(y, max_val=max_val)
    if y_only:
        if x.shape[-1] == 3:
            x, y = rgb_to_y(x, max_val=max_val), rgb_to_y(y, max_val=max_val)
        elif x.shape[-1] != 1:
            raise ValueError(
                f"{fn}: y_only=True needs RGB (C=3) or grey (C=1) images, got sr.shape={x.shape}."
            )
    x, y = crop_border(x, crop), crop_border(y, crop)
    return {"psnr": psnr(x, y, max_val=max_val), "ssim": ssim(x, y, max_val=max_val)}
