"""The metric set of super-resolution results: PSNR, SSIM and MS-SSIM in RGB and on Y."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from l1jax import image

__all__ = ["METRICS", "MS_SSIM_MIN_SIDE", "image_metrics"]

# Five scales of 11-tap windows: (11 - 1) * 2**4 + 1 pixels per side (l1jax.image.ms_ssim).
MS_SSIM_MIN_SIDE = 161
METRICS = ("psnr", "ssim", "ms_ssim", "psnr_y", "ssim_y", "ms_ssim_y")


def image_metrics(out: jax.Array, hr: jax.Array, *, scale: int) -> dict[str, jax.Array]:
    """RGB and Y-channel PSNR / SSIM / MS-SSIM of one super-resolved image ``(H, W, 3)``.

    RGB metrics use the output clipped to ``[0, 1]``; the Y metrics follow the SR papers (both
    images rounded to 8 bits, BT.601 luma, ``scale`` pixels cropped from each border). MS-SSIM
    is NaN for an image with a side under :data:`MS_SSIM_MIN_SIDE` (after the crop, for Y).

    Args:
      out: the model's output, ``(H, W, 3)`` in ``[0, 1]`` (values outside are clipped).
      hr: the ground truth, same shape.
      scale: the super-resolution factor (the border cropped for Y).

    Returns:
      ``{name: scalar}`` for every name in :data:`METRICS`.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import sr
      >>> hr = jnp.full((1, 16, 16, 3), 0.5)
      >>> m = sr.image_metrics(hr.at[:, :8].add(0.1), hr, scale=2)
      >>> print(sorted(m))  # MS-SSIM is NaN for images under sr.MS_SSIM_MIN_SIDE
      ['ms_ssim', 'ms_ssim_y', 'psnr', 'psnr_y', 'ssim', 'ssim_y']
    """
    out = jnp.clip(out, 0.0, 1.0)
    y = image.sr_metrics(out, hr, scale=scale)
    yo = image.crop_border(image.rgb_to_y(image.quantize_8bit(out)), scale)
    yh = image.crop_border(image.rgb_to_y(image.quantize_8bit(hr)), scale)
    nan = jnp.asarray(jnp.nan, jnp.float32)
    ok_rgb = min(hr.shape[0], hr.shape[1]) >= MS_SSIM_MIN_SIDE
    ok_y = min(yh.shape[0], yh.shape[1]) >= MS_SSIM_MIN_SIDE
    return {
        "psnr": image.psnr(out, hr),
        "ssim": image.ssim(out, hr),
        "ms_ssim": image.ms_ssim(out, hr) if ok_rgb else nan,
        "psnr_y": y["psnr"],
        "ssim_y": y["ssim"],
        "ms_ssim_y": image.ms_ssim(yo, yh) if ok_y else nan,
    }
