"""Image metrics (PSNR, SSIM, MS-SSIM), SR evaluation helpers and SSIM-family training losses.

Images are ``(..., H, W, C)`` floating arrays with values in ``[0, max_val]``; metrics and
losses reduce over ``(H, W, C)`` and keep the leading batch axes.
"""

from l1jax.image._color import crop_border as crop_border
from l1jax.image._color import quantize_8bit as quantize_8bit
from l1jax.image._color import rgb_to_y as rgb_to_y
from l1jax.image._filters import gaussian_filter as gaussian_filter
from l1jax.image._filters import window_size as window_size
from l1jax.image._losses import LOSSES as LOSSES
from l1jax.image._losses import ZHAO_SIGMAS as ZHAO_SIGMAS
from l1jax.image._losses import mix_loss as mix_loss
from l1jax.image._losses import ms_ssim_loss as ms_ssim_loss
from l1jax.image._losses import ssim_loss as ssim_loss
from l1jax.image._metrics import MS_SSIM_WEIGHTS as MS_SSIM_WEIGHTS
from l1jax.image._metrics import ms_ssim as ms_ssim
from l1jax.image._metrics import psnr as psnr
from l1jax.image._metrics import sr_metrics as sr_metrics
from l1jax.image._metrics import ssim as ssim
from l1jax.image._validate import FloatDTypeError as FloatDTypeError

__all__ = [
    "FloatDTypeError",
    "LOSSES",
    "MS_SSIM_WEIGHTS",
    "ZHAO_SIGMAS",
    "crop_border",
    "gaussian_filter",
    "mix_loss",
    "ms_ssim",
    "ms_ssim_loss",
    "psnr",
    "quantize_8bit",
    "rgb_to_y",
    "sr_metrics",
    "ssim",
    "ssim_loss",
    "window_size",
]
