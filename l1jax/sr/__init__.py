"""Super-resolution pieces: bundled images, on-device patch sampling, MATLAB bicubic, models."""

from l1jax.registry import MODELS as _MODEL_REGISTRY
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
from l1jax.sr._models import EDSR as EDSR
from l1jax.sr._models import ESPCN as ESPCN
from l1jax.sr._models import MODELS as MODELS
from l1jax.sr._models import SRCNN as SRCNN
from l1jax.sr._models import Conv2d as Conv2d
from l1jax.sr._models import make_model as make_model
from l1jax.sr._models import pixel_shuffle as pixel_shuffle
from l1jax.sr._resize import downsample as downsample
from l1jax.sr._resize import imresize as imresize
from l1jax.sr._resize import modcrop as modcrop
from l1jax.sr._resize import upsample as upsample


def _register_models() -> None:
    # The runner's MODELS registry imports this module on its first lookup; a model a user
    # registered under the same name first keeps its name.
    for name, cls in MODELS.items():
        try:
            _MODEL_REGISTRY.register(name, cls)
        except ValueError:
            pass


_register_models()
