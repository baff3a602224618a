"""The evaluation conventions of super-resolution papers: luma, border crop, 8-bit rounding."""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, ArrayLike, Float

from l1jax.image._validate import as_image, check_max_val, integer

# ITU-R BT.601 luma for R'G'B' in [0, 1] mapped to the 8-bit studio range [16, 235], as in
# MATLAB's rgb2ycbcr and skimage.color.rgb2ycbcr.
_Y_OFFSET = 16.0
_Y_COEFFS = (65.481, 128.553, 24.966)


def rgb_to_y(
    img: Float[ArrayLike, "*batch h w 3"], *, max_val: ArrayLike = 1.0
) -> Float[Array, "*batch h w 1"]:
    """Luma ``Y`` of ITU-R BT.601 (MATLAB's ``rgb2ycbcr``), on the scale of the input.

    ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255 * max_val`` with ``R, G, B`` the
    channels divided by ``max_val``. For images in ``[0, 1]`` the output lies in
    ``[16/255, 235/255]``: MATLAB's ``Y`` (in ``[16, 235]``) divided by 255, so PSNR and SSIM
    of it with ``max_val=1`` equal MATLAB's on the ``[0, 255]`` scale with peak 255. For
    ``max_val=255`` the output is MATLAB's ``Y`` itself. It is not rounded to integers.

    Args:
      img: floating RGB image ``(..., H, W, 3)`` with values in ``[0, max_val]``.
      max_val: peak value of ``img`` (1 for ``[0, 1]`` images, 255 for ``[0, 255]``).

    Returns:
      ``(..., H, W, 1)``: the channel axis is kept so the result feeds :func:`psnr` and
      :func:`ssim` directly.

    Raises:
      ValueError: if ``img`` is not floating point, not ``(..., H, W, 3)``, or ``max_val <= 0``.

    References:
      - ITU-R Recommendation BT.601-7 (2011). MATLAB ``rgb2ycbcr``; ``skimage.color.rgb2ycbcr``
      - (same matrix; returns ``[16, 235]`` for ``[0, 1]`` input).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> white = jnp.ones((1, 1, 3))
      >>> print(round(float(image.rgb_to_y(white)[0, 0, 0]), 4))  # ITU-R BT.601: (16 + 219) / 255
      0.9216
    """
    x = as_image(img, "img", "rgb_to_y")
    check_max_val(max_val, "rgb_to_y")
    if x.shape[-1] != 3:
        raise ValueError(
            f"rgb_to_y: img must have 3 channels (R, G, B) on its last axis, got "
            f"img.shape={x.shape}."
        )
    coeffs = jnp.asarray(_Y_COEFFS, x.dtype) / 255.0
    m = jnp.asarray(max_val, x.dtype)
    # HIGHEST: the TF32 default of recent GPUs would cost about three decimal digits here.
    y = jnp.einsum("...c,c->...", x, coeffs, precision=lax.Precision.HIGHEST)[..., None]
    return y + m * (_Y_OFFSET / 255.0)


def crop_border(img: ArrayLike, n: int) -> jax.Array:
    """Drops ``n`` pixels from each side of ``H`` and ``W`` of ``(..., H, W, C)``.

    SR papers crop ``scale`` pixels (the border the upsampler cannot reconstruct) before
    PSNR / SSIM. ``n = 0`` returns the image unchanged.

    Raises:
      ValueError: if ``n`` is not an integer ``>= 0`` or leaves no pixel.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> a = jnp.full((1, 16, 16, 3), 0.5)  # (N, H, W, C) in [0, max_val]
      >>> b = a.at[:, :8].add(0.1)
      >>> print(image.crop_border(a, 2).shape)
      (1, 12, 12, 3)
    """
    x = as_image(img, "img", "crop_border")
    n = integer(n, "n", "crop_border", minimum=0)
    h, w = x.shape[-3], x.shape[-2]
    if 2 * n >= h or 2 * n >= w:
        raise ValueError(
            f"crop_border: cropping n={n} pixels per side leaves nothing of an image with "
            f"H x W = {h} x {w} (img.shape={x.shape}); expected n < {min(h, w) / 2}."
        )
    return x[..., n : h - n, n : w - n, :]


def quantize_8bit(
    img: Float[ArrayLike, "*batch h w c"], *, max_val: ArrayLike = 1.0
) -> Float[Array, "*batch h w c"]:
    """Clips to ``[0, max_val]`` and rounds to the 256 levels ``k max_val / 255``.

    ``round(clip(x / max_val, 0, 1) * 255) / 255 * max_val``, the value a network output has
    once saved as an 8-bit image (EDSR's ``quantize``). Rounding is half-to-even, as in
    ``torch.round`` and ``numpy.round``. The derivative is 0 almost everywhere: this is for
    evaluation, not for a training loss.

    Args:
      img: floating image with values nominally in ``[0, max_val]``.
      max_val: peak value.

    Returns:
      An array of the shape and dtype of ``img``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> img = jnp.array([0.1234, 0.5]).reshape(1, 1, 2)
      >>> print([round(float(v) * 255, 3) for v in image.quantize_8bit(img).ravel()])
      [31.0, 128.0]
    """
    x = as_image(img, "img", "quantize_8bit")
    check_max_val(max_val, "quantize_8bit")
    m = jnp.asarray(max_val, x.dtype)
    levels = jnp.round(jnp.clip(x / m, 0.0, 1.0) * 255.0)
    return levels / 255.0 * m
