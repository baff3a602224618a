"""Image losses for training: 1 - SSIM, 1 - MS-SSIM and the MS-SSIM + L1 mix of Zhao et al.

Every loss has the :mod:`l1jax.losses` signature ``f(predictions, targets, *,
reduction="mean", weights=None, where=None, ...)`` with one loss per image: inputs are
``(..., H, W, C)``, the per-image losses have the batch shape ``(...)``, and ``reduction``,
``weights`` and ``where`` act on that batch shape as in :func:`l1jax.losses.reduce_loss`. A NaN
pixel makes its image's loss NaN, and so the mean and the sum; images that ``where`` drops are
ignored, NaN included, in the value and in the gradient.

Gradients are finite everywhere, constant patches and identical images included: both SSIM
denominators are at least ``2 (k max_val)^2 > 0``, the MS-SSIM powers use a where-guarded
``v ** w`` whose gradient at ``v = 0`` is 0, and the L1 term uses :func:`l1jax.subgrad.abs`
(derivative 0 where the images agree).

Training patches (48 px and less) are too small for the five halvings of the standard
MS-SSIM, which needs 161 px. Zhao et al. instead build the scales on the patch itself with
Gaussian windows of growing width ``sigma_j = 0.5, 1, 2, 4, 8`` (``variant="sigmas"``, the
default here); ``variant="pyramid"`` is the standard downsampling MS-SSIM of
:func:`l1jax.image.ms_ssim` for images large enough.

How the "sigmas" variant evaluates the patch: Zhao et al. define the loss of a patch as the
mean over its pixels of a per-pixel error and, since the network is convolutional, evaluate it
at the centre pixel only, with windows cut at the patch border (their Caffe layers, NVlabs
PL4NN). Here every pixel is evaluated instead, with "same" filtering and symmetric reflection at
the border (scipy.ndimage's ``mode="reflect"``, the boundary skimage uses before its crop): the
per-image value uses every output pixel of the patch, is the paper's per-patch mean over
pixels up to the border handling, and does not require odd patch sides. The per-scale means are
then combined as in Wang et al.'s MS-SSIM, ``mean(l_M cs_M)^{w_M} prod_j mean(cs_j)^{w_j}``,
so the two variants differ only in how the scales are built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Real

from l1jax import subgrad
from l1jax._checks import check_scalar
from l1jax.image._filters import window_size
from l1jax.image._metrics import (
    MS_SSIM_WEIGHTS,
    Scale,
    ms_ssim_value,
    one_minus_ssim,
    prepare_pair,
    pyramid_scales,
    ssim_complements,
)
from l1jax.image._validate import (
    check_fits,
    choice,
    filter_size_for,
    scale_weights,
    static_positive,
)
from l1jax.losses import broadcast_mask, reduce_loss

# Zhao et al. (2017): the Gaussian widths standing in for the five scales on a patch.
ZHAO_SIGMAS = (0.5, 1.0, 2.0, 4.0, 8.0)
VARIANTS = ("sigmas", "pyramid")
PADDINGS = ("same", "valid")
NEGATIVE_CS = ("clip", "rescale")


def _prepare(predictions, targets, max_val, k1, k2, fn: str, where=None):
    p, t, c1, c2 = prepare_pair(
        predictions, targets, max_val, k1, k2, fn, ("predictions", "targets")
    )
    if where is not None:
        # reduce_loss drops these images from the value; zeroing them here as well keeps a NaN
        # in one out of the gradient (0 times a NaN derivative is NaN).
        keep = broadcast_mask(where, p.shape[:-3], fn)[..., None, None, None]
        zero = jnp.zeros((), p.dtype)
        p, t = jnp.where(keep, p, zero), jnp.where(keep, t, zero)
    return p, t, c1, c2


def ssim_loss(
    predictions: Float[ArrayLike, "*batch h w c"],
    targets: Float[ArrayLike, "*batch h w c"],
    *,
    sigma: float = 1.5,
    filter_size: int | None = None,
    padding: Literal["valid", "same"] = "same",
    max_val: ArrayLike = 1.0,
    k1: ArrayLike = 0.01,
    k2: ArrayLike = 0.03,
    reduction: Literal["none", "mean", "sum"] = "mean",
    weights: Real[ArrayLike, "*#batch"] | None = None,
    where: Bool[ArrayLike, "*#batch"] | None = None,
) -> Float[Array, "*#batch"]:
    """``1 - SSIM`` per image, with a Gaussian window of any width.

    The SSIM map is that of :func:`l1jax.image.ssim`, averaged over pixels and channels. The
    window has ``filter_size`` taps, by default ``2 int(3.5 sigma + 0.5) + 1`` (11 for
    ``sigma = 1.5``, 37 for 5, 65 for 9: Zhao et al. train "SSIM_5" and "SSIM_9").

    Args:
      predictions: floating images ``(..., H, W, C)`` in ``[0, max_val]``.
      targets: same shape.
      sigma: width of the Gaussian window in pixels, a concrete number ``> 0``.
      filter_size: odd window side, or ``None`` to derive it from ``sigma``.
      padding: ``"same"`` (default) evaluates SSIM at every pixel with the image extended by
        symmetric reflection, so a window wider than the patch still works and every output
        pixel gets a gradient; ``"valid"`` uses only the positions whose window lies inside
        the image, so that ``1 - ssim_loss(..., padding="valid", reduction="none")`` equals
        :func:`l1jax.image.ssim`.
      max_val: data range, ``> 0``.
      k1, k2: SSIM stabilisers, ``> 0``.
      reduction: ``"none"`` (per-image losses, shape ``(...)``), ``"mean"`` or ``"sum"``.
      weights: non-negative per-image weights broadcastable to ``(...)``.
      where: boolean per-image mask broadcastable to ``(...)``.

    Returns:
      A scalar, or ``(...)`` for ``reduction="none"``.

    Raises:
      ValueError: on a shape mismatch, a non-floating image, bad hyperparameters, or (with
        ``padding="valid"``) an image smaller than the window.

    References:
      - Wang, Z. et al. (2004). Image quality assessment: from error visibility to structural
      - similarity. IEEE TIP 13(4). Zhao, H., Gallo, O., Frosio, I. and Kautz, J. (2017). Loss
      - functions for image restoration with neural networks. IEEE TCI 3(1), 47-57.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> a = jnp.full((1, 16, 16, 3), 0.5)  # (N, H, W, C) in [0, max_val]
      >>> b = a.at[:, :8].add(0.1)
      >>> print(float(image.ssim_loss(a, a)), round(float(image.ssim_loss(a, b)), 4))  # 1 - SSIM
      0.0 0.2226
    """
    fn = "ssim_loss"
    p, t, c1, c2 = _prepare(predictions, targets, max_val, k1, k2, fn, where)
    sigma = static_positive(sigma, "sigma", fn)
    size = filter_size_for(filter_size, sigma, fn)
    padding = choice(padding, "padding", PADDINGS, fn)
    if padding == "valid":
        check_fits(p.shape, size, fn, f"the filter_size={size} window with padding='valid'")
    d_lum, d_cs = ssim_complements(p, t, sigma=sigma, size=size, padding=padding, c1=c1, c2=c2)
    per_image = jnp.mean(one_minus_ssim(d_lum, d_cs), axis=(-3, -2, -1))
    return reduce_loss(per_image, reduction=reduction, weights=weights, where=where, fn=fn)


def _ms_ssim_per_image(
    predictions,
    targets,
    *,
    variant,
    sigmas,
    scale_weights_,
    sigma,
    filter_size,
    max_val,
    k1,
    k2,
    negative_cs,
    where,
    fn: str,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Validated inputs and the per-image MS-SSIM of either variant."""
    p, t, c1, c2 = _prepare(predictions, targets, max_val, k1, k2, fn, where)
    variant = choice(variant, "variant", VARIANTS, fn)
    negative_cs = choice(negative_cs, "negative_cs", NEGATIVE_CS, fn)
    if variant == "sigmas":
        for name, value in (("sigma", sigma), ("filter_size", filter_size)):
            if value is not None:
                raise ValueError(
                    f"{fn}: {name} applies to variant='pyramid' only (variant='sigmas' uses "
                    f"one window per entry of sigmas), got {name}={value!r}."
                )
        sig = ZHAO_SIGMAS if sigmas is None else sigmas
        if isinstance(sig, jax.core.Tracer) or not hasattr(sig, "__len__") or len(sig) == 0:
            raise ValueError(
                f"{fn}: sigmas must be a non-empty sequence of numbers > 0, got sigmas={sig!r}."
            )
        sig = tuple(static_positive(s, "sigmas", fn) for s in sig)
        default = (1.0,) * len(sig)
        w = scale_weights(
            default if scale_weights_ is None else scale_weights_,
            "scale_weights",
            fn,
            length=len(sig),
        )
        scales: tuple[Scale, ...] = tuple((s, window_size(s), "same", False) for s in sig)
    else:
        if sigmas is not None:
            raise ValueError(
                f"{fn}: sigmas applies to variant='sigmas' only, got sigmas={sigmas!r}."
            )
        w = scale_weights(
            MS_SSIM_WEIGHTS if scale_weights_ is None else scale_weights_, "scale_weights", fn
        )
        s = static_positive(1.5 if sigma is None else sigma, "sigma", fn)
        size = filter_size_for(filter_size, s, fn)
        scales = pyramid_scales(p.shape, w, s, size, fn)
    value = ms_ssim_value(p, t, scales=scales, weights=w, c1=c1, c2=c2, negative_cs=negative_cs)
    return p, t, value


def ms_ssim_loss(
    predictions: Float[ArrayLike, "*batch h w c"],
    targets: Float[ArrayLike, "*batch h w c"],
    *,
    variant: Literal["sigmas", "pyramid"] = "sigmas",
    sigmas=None,
    scale_weights=None,
    sigma: float | None = None,
    filter_size: int | None = None,
    max_val: ArrayLike = 1.0,
    k1: ArrayLike = 0.01,
    k2: ArrayLike = 0.03,
    negative_cs: Literal["clip", "rescale"] = "clip",
    reduction: Literal["none", "mean", "sum"] = "mean",
    weights: Real[ArrayLike, "*#batch"] | None = None,
    where: Bool[ArrayLike, "*#batch"] | None = None,
) -> Float[Array, "*#batch"]:
    """``1 - MS-SSIM`` per image, multi-sigma (Zhao et al.) or pyramid (Wang et al.).

    ``MS-SSIM = relu(mean(l_M cs_M))^{w_M} prod_{j<M} relu(mean cs_j)^{w_j}``, averaged over
    channels; the module docstring explains how the variants build scale ``j``:

    * ``variant="sigmas"`` (default; what Zhao et al. trained with): scale ``j`` is the patch
      itself under a Gaussian window of width ``sigmas[j]`` (default ``0.5, 1, 2, 4, 8``),
      ``2 int(3.5 sigma + 0.5) + 1`` taps, "same" filtering with symmetric reflection. Any
      patch size works. The exponents default to 1 for every scale, the paper's choice
      (``alpha = beta_j = 1``), which makes the value ``mean(l_M cs_M) prod_{j<M} mean(cs_j)``.
    * ``variant="pyramid"``: exactly ``1 - l1jax.image.ms_ssim`` (2x2 pooling between scales,
      valid ``filter_size`` windows of width ``sigma``, default 1.5; exponents default to Wang
      et al.'s ``0.0448, 0.2856, 0.3001, 0.2363, 0.1333``). Needs ``H, W >= 161`` for the
      defaults.

    Negative means: a mean ``m`` of ``cs`` (or of ``l cs``) lies in ``[-1, 1]`` and is negative
    where the images are anti-correlated at that scale, and ``m^w`` is undefined for
    fractional ``w``. ``negative_cs="clip"`` (default) uses ``relu(m)``, the handling of
    ``tf.image.ssim_multiscale`` and ``pytorch_msssim``: standard values (``variant="pyramid"``
    gives exactly ``1 - ms_ssim``), but a clipped scale zeroes the product and with it every
    gradient of that image and channel. That is common at initialisation: for a random 3-layer
    CNN on 48 px patches, 20-99% of (image, channel) pairs (over four seeds) had a clipped
    scale, mostly at sigma 4 and 8 where the sign of a random network's low-pass gain is a coin
    flip. ``negative_cs="rescale"`` uses ``(1 + m) / 2`` instead (``normalize=True`` of
    jorge-pessoa/pytorch-msssim): positive for every ``m > -1``, so no image ever loses its
    gradient, at the price of non-standard values and half the slope near ``m = 1``. Use it,
    :func:`mix_loss` (whose L1 term always pulls) or a short L1 warm-up when training from
    scratch.

    Args:
      predictions: floating images ``(..., H, W, C)`` in ``[0, max_val]``.
      targets: same shape.
      variant: ``"sigmas"`` or ``"pyramid"``.
      sigmas: window widths of the "sigmas" variant, finest first (concrete numbers ``> 0``).
      scale_weights: exponents ``>= 0``, one per scale; ``None`` for the variant's reference
        values above. (Not ``weights``, which are per-image weights as in every l1jax loss.)
      sigma: window width of the "pyramid" variant.
      filter_size: window side of the "pyramid" variant (odd), ``None`` to derive it.
      max_val, k1, k2: as in :func:`ssim_loss`.
      negative_cs: ``"clip"`` or ``"rescale"``, see above.
      reduction, weights, where: per-image reduction, as in :func:`ssim_loss`.

    Returns:
      A scalar, or ``(...)`` for ``reduction="none"``.

    Raises:
      ValueError: on a shape mismatch, a non-floating image, bad hyperparameters, arguments of
        the other variant, or (pyramid) images too small for the scales.

    References:
      - Zhao, H., Gallo, O., Frosio, I. and Kautz, J. (2017). Loss functions for image
      - restoration with neural networks. IEEE TCI 3(1), 47-57. Wang, Z., Simoncelli, E. P. and
      - Bovik, A. C. (2003). Multiscale structural similarity for image quality assessment.
      - Asilomar Conference on Signals, Systems and Computers.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> a = jnp.full((1, 16, 16, 3), 0.5)  # (N, H, W, C) in [0, max_val]
      >>> b = a.at[:, :8].add(0.1)
      >>> print(float(image.ms_ssim_loss(a, a)))
      0.0
    """
    fn = "ms_ssim_loss"
    _, _, value = _ms_ssim_per_image(
        predictions,
        targets,
        variant=variant,
        sigmas=sigmas,
        scale_weights_=scale_weights,
        sigma=sigma,
        filter_size=filter_size,
        max_val=max_val,
        k1=k1,
        k2=k2,
        negative_cs=negative_cs,
        where=where,
        fn=fn,
    )
    return reduce_loss(1.0 - value, reduction=reduction, weights=weights, where=where, fn=fn)


def mix_loss(
    predictions: Float[ArrayLike, "*batch h w c"],
    targets: Float[ArrayLike, "*batch h w c"],
    *,
    alpha: ArrayLike = 0.84,
    variant: Literal["sigmas", "pyramid"] = "sigmas",
    sigmas=None,
    scale_weights=None,
    sigma: float | None = None,
    filter_size: int | None = None,
    max_val: ArrayLike = 1.0,
    k1: ArrayLike = 0.01,
    k2: ArrayLike = 0.03,
    negative_cs: Literal["clip", "rescale"] = "clip",
    reduction: Literal["none", "mean", "sum"] = "mean",
    weights: Real[ArrayLike, "*#batch"] | None = None,
    where: Bool[ArrayLike, "*#batch"] | None = None,
) -> Float[Array, "*#batch"]:
    """Zhao et al.'s mix ``alpha (1 - MS-SSIM) + (1 - alpha) mean(G_M * |p - t|) / max_val``.

    The MS-SSIM term is :func:`ms_ssim_loss` with the same arguments. In the paper the L1 term
    is weighted by the Gaussian of the coarsest scale, ``G_M``, so that it looks at the
    same neighbourhood of the centre pixel as the MS-SSIM term. Evaluated at every pixel and
    averaged, as here, the Gaussian drops out: with symmetric-reflection borders each pixel's
    total weight over all window positions is exactly 1, so
    ``mean_p (G * |e|)(p) = mean_p |e|(p)``, and the term is the plain mean absolute error over
    ``(H, W, C)``. It is divided by ``max_val`` so that the mix does not depend on the
    intensity scale (no change for ``[0, 1]`` images, the paper's setting).

    Derivative of the L1 term: ``sign(p - t) / (H W C max_val)``, 0 where ``p = t``.

    Args:
      predictions: floating images ``(..., H, W, C)`` in ``[0, max_val]``.
      targets: same shape.
      alpha: weight of the MS-SSIM term in ``[0, 1]``, a real scalar; 0.84 in the paper.
      variant, sigmas, scale_weights, sigma, filter_size, max_val, k1, k2, negative_cs: as in
        :func:`ms_ssim_loss`.
      reduction, weights, where: per-image reduction, as in :func:`ssim_loss`.

    Returns:
      A scalar, or ``(...)`` for ``reduction="none"``.

    Raises:
      ValueError: as :func:`ms_ssim_loss`, or ``alpha`` outside ``[0, 1]``.

    References:
      - Zhao, H., Gallo, O., Frosio, I. and Kautz, J. (2017). Loss functions for image
      - restoration with neural networks. IEEE TCI 3(1), 47-57 (Eq. for L^Mix, alpha = 0.84).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> a = jnp.full((1, 16, 16, 3), 0.5)  # (N, H, W, C) in [0, max_val]
      >>> b = a.at[:, :8].add(0.1)
      >>> print(float(image.mix_loss(a, a)), float(image.mix_loss(a, b)) > 0)  # MS-SSIM and L1
      0.0 True
    """
    fn = "mix_loss"
    check_scalar("alpha", alpha, low=0.0, high=1.0, fn=fn)
    p, t, value = _ms_ssim_per_image(
        predictions,
        targets,
        variant=variant,
        sigmas=sigmas,
        scale_weights_=scale_weights,
        sigma=sigma,
        filter_size=filter_size,
        max_val=max_val,
        k1=k1,
        k2=k2,
        negative_cs=negative_cs,
        where=where,
        fn=fn,
    )
    a = jnp.asarray(alpha, p.dtype)
    l1 = jnp.mean(subgrad.abs(p - t), axis=(-3, -2, -1)) / jnp.asarray(max_val, p.dtype)
    per_image = a * (1.0 - value) + (1.0 - a) * l1
    return reduce_loss(per_image, reduction=reduction, weights=weights, where=where, fn=fn)


LOSSES: dict[str, Callable[..., jax.Array]] = {
    "ssim": ssim_loss,
    "ms_ssim": ms_ssim_loss,
    "mix": mix_loss,
}
