"""Super-resolution pieces: bundled images, on-device patch sampling, MATLAB bicubic, models and
the metric set SR papers report."""

from l1jax.sr._data import IMAGE_EXTENSIONS as IMAGE_EXTENSIONS
from l1jax.sr._data import TEST_IMAGES as TEST_IMAGES
from l1jax.sr._data import TRAIN_IMAGES as TRAIN_IMAGES
from l1jax.sr._data import PatchDataset as PatchDataset
from l1jax.sr._data import available_images as available_images
from l1jax.sr._data import eval_pairs as eval_pairs
from l1jax.sr._data import load_image as load_image
from l1jax.sr._data import load_image_folder as load_image_folder
from l1jax.sr._data import load_images as load_images
from l1jax.sr._data import load_split as load_split
from l1jax.sr._metrics import METRICS as METRICS
from l1jax.sr._metrics import MS_SSIM_MIN_SIDE as MS_SSIM_MIN_SIDE
from l1jax.sr._metrics import image_metrics as image_metrics
from l1jax.sr._models import EDSR as EDSR
from l1jax.sr._models import ESPCN as ESPCN
from l1jax.sr._models import SRCNN as SRCNN
from l1jax.sr._models import Conv2d as Conv2d
from l1jax.sr._models import pixel_shuffle as pixel_shuffle
from l1jax.sr._resize import downsample as downsample
from l1jax.sr._resize import imresize as imresize
from l1jax.sr._resize import modcrop as modcrop
from l1jax.sr._resize import upsample as upsample

__all__ = [
    "IMAGE_EXTENSIONS",
    "TEST_IMAGES",
    "TRAIN_IMAGES",
    "PatchDataset",
    "available_images",
    "eval_pairs",
    "load_image",
    "load_image_folder",
    "load_images",
    "load_split",
    "METRICS",
    "MS_SSIM_MIN_SIDE",
    "image_metrics",
    "EDSR",
    "ESPCN",
    "SRCNN",
    "Conv2d",
    "pixel_shuffle",
    "downsample",
    "imresize",
    "modcrop",
    "upsample",
]
