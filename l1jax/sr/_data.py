"""Super-resolution data: bundled natural images, a folder loader, on-device patch sampling.

The bundled images are the natural colour photographs that ship inside the scikit-image and
scikit-learn wheels, so a study runs offline and reproducibly. Images scikit-image would fetch
with pooch (``kidney``, ``lily``, ``cells3d``, ...) are not used. Synthetic or non-photographic
ones (``colorwheel``, ``logo``, ``checkerboard``, phantoms) are left out too, and so is the right
view of the motorcycle stereo pair, which is near-identical to the left one and would leak
between a train and a test split.

Patches are drawn on the device: every image of a split lives in one flat ``(pixels, C)``
buffer (images differ in size, and padding them to the largest, ``retina`` at 1411x1411, would
waste ~10x the memory), and a batch is a single gather at indices computed from the sampled
(image, y, x, dihedral transform). The flips and 90-degree rotations are applied to the index
grid, so augmentation costs nothing beyond the gather.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

from l1jax.image import rgb_to_y
from l1jax.sr._resize import downsample, modcrop

__all__ = [
    "TRAIN_IMAGES",
    "TEST_IMAGES",
    "IMAGE_EXTENSIONS",
    "available_images",
    "load_image",
    "load_images",
    "load_image_folder",
    "load_split",
    "PatchDataset",
    "eval_pairs",
]

_INSTALL_HINT = "pip install 'l1jax[studies]'"

# name -> (package, loader name). Shapes (H, W) for reference: astronaut 512x512, chelsea
# 300x451, coffee 400x600, rocket 427x640, immunohistochemistry 512x512, retina 1411x1411,
# hubble_deep_field 872x1000, motorcycle 500x741, china 427x640, flower 427x640.
_BUNDLED = {
    "astronaut": ("skimage", "astronaut"),
    "chelsea": ("skimage", "chelsea"),
    "coffee": ("skimage", "coffee"),
    "rocket": ("skimage", "rocket"),
    "immunohistochemistry": ("skimage", "immunohistochemistry"),
    "retina": ("skimage", "retina"),
    "hubble_deep_field": ("skimage", "hubble_deep_field"),
    "motorcycle": ("skimage", "stereo_motorcycle"),
    "china": ("sklearn", "china.jpg"),
    "flower": ("sklearn", "flower.jpg"),
}

# A default split: the test images are mid-sized so full-image evaluation stays cheap on a CPU.
TRAIN_IMAGES = (
    "astronaut",
    "rocket",
    "immunohistochemistry",
    "retina",
    "hubble_deep_field",
    "motorcycle",
    "china",
)
TEST_IMAGES = ("chelsea", "coffee", "flower")

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")


def available_images() -> tuple[str, ...]:
    """Names of the bundled images, usable with ``load_image``.

    Examples:
      >>> from l1jax import sr
      >>> names = sr.available_images()  # bundled with scikit-image and scikit-learn
      >>> print(len(names), names[:3])
      10 ('astronaut', 'chelsea', 'coffee')
    """
    return tuple(_BUNDLED)


def _to_unit_float(arr: np.ndarray, name: str, channels: int) -> np.ndarray:
    """uint8/uint16/float image (H, W[, C]) -> float32 (H, W, channels) in [0, 1]."""
    arr = np.asarray(arr)
    if arr.dtype == np.uint8:
        out = arr.astype(np.float32) / 255.0
    elif arr.dtype == np.uint16:
        out = arr.astype(np.float32) / 65535.0
    elif np.issubdtype(arr.dtype, np.floating):
        out = np.clip(arr.astype(np.float32), 0.0, 1.0)
    else:
        raise TypeError(f"load_image: {name!r} has unsupported pixel dtype {arr.dtype}.")
    if out.ndim == 2:
        out = out[:, :, None]
    if out.ndim != 3:
        raise ValueError(f"load_image: {name!r} has shape {arr.shape}, expected (H, W[, C]).")
    if out.shape[-1] in (2, 4):  # drop alpha
        out = out[..., :-1]
    have = out.shape[-1]
    if have == channels:
        return out
    if have == 1 and channels == 3:
        return np.repeat(out, 3, axis=-1)
    if have == 3 and channels == 1:
        # The one BT.601 luma of l1jax: the studio-range Y that SR models are trained and
        # evaluated on, so a model fed these images is scored on the Y that sr_metrics uses.
        return np.asarray(rgb_to_y(out))
    raise ValueError(f"load_image: cannot turn {have} channels of {name!r} into {channels}.")


def _load_bundled(name: str) -> np.ndarray:
    package, loader = _BUNDLED[name]
    try:
        if package == "skimage":
            import skimage.data

            out = getattr(skimage.data, loader)()
            return out[0] if loader == "stereo_motorcycle" else out
        from sklearn.datasets import load_sample_image

        return load_sample_image(loader)
    except ImportError as err:
        raise ImportError(
            f"load_image: the bundled image {name!r} needs scikit-image and scikit-learn; "
            f"install them with `{_INSTALL_HINT}`."
        ) from err


def _read_file(path: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError as err:
        raise ImportError(
            f"load_image: reading the image file {path!r} needs Pillow; install it with "
            f"`{_INSTALL_HINT}`."
        ) from err

    with Image.open(path) as opened:
        im: Image.Image = opened
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            return np.asarray(im, dtype=np.uint16)
        if im.mode not in ("L", "RGB", "RGBA", "LA"):
            im = im.convert("RGBA" if "A" in im.getbands() else "RGB")
        return np.asarray(im)


def load_image(name: str | os.PathLike, *, channels: int = 3) -> jax.Array:
    """Loads a bundled image by name, or an image file by path, as float32 ``(H, W, C)`` in [0, 1].

    Args:
      name: one of ``available_images()``, or a path to a PNG/JPEG/... file.
      channels: 3 for RGB (grey files are replicated); 1 for the BT.601 luma of RGB images,
        :func:`l1jax.image.rgb_to_y` (studio range, ``[16/255, 235/255]``, as MATLAB's
        ``rgb2ycbcr``), while grey files are returned as stored.

    Returns:
      float32 array ``(H, W, channels)`` with values in ``[0, 1]``; alpha is dropped.

    Raises:
      ValueError: if ``name`` is neither a bundled image nor an existing file, or ``channels`` is
        not 1 or 3.
      ImportError: if a bundled image is asked for without scikit-image/scikit-learn, or a file
        without Pillow (all in the ``studies`` extra).

    Examples:
      >>> from l1jax import sr
      >>> img = sr.load_image("astronaut")  # float32 in [0, 1], (H, W, C)
      >>> print(img.shape, img.dtype, float(img.min()) >= 0.0, float(img.max()) <= 1.0)
      (512, 512, 3) float32 True True
    """
    if channels not in (1, 3):
        raise ValueError(f"load_image: channels must be 1 or 3, got channels={channels!r}.")
    key = os.fspath(name)
    if key in _BUNDLED:
        arr = _load_bundled(key)
    elif os.path.isfile(key):
        arr = _read_file(key)
    else:
        raise ValueError(
            f"load_image: name must be one of {available_images()} or an image file, "
            f"got name={key!r}."
        )
    return jnp.asarray(_to_unit_float(arr, key, channels))


def load_images(names: Iterable[str | os.PathLike], *, channels: int = 3) -> list[jax.Array]:
    """``[load_image(n, channels=channels) for n in names]``.

    Examples:
      >>> from l1jax import sr
      >>> print([im.shape for im in sr.load_images(["astronaut", "chelsea"], channels=1)])
      [(512, 512, 1), (300, 451, 1)]
    """
    return [load_image(n, channels=channels) for n in names]


def load_image_folder(
    folder: str | os.PathLike,
    *,
    channels: int = 3,
    extensions: Sequence[str] = IMAGE_EXTENSIONS,
) -> dict[str, jax.Array]:
    """Loads every image file in ``folder`` (not recursive), sorted by file name.

    Args:
      folder: directory with the user's own images.
      channels: as in ``load_image``.
      extensions: lower-case file suffixes to read.

    Returns:
      Dict file name -> float32 ``(H, W, channels)`` in [0, 1], in sorted order.

    Raises:
      ValueError: if ``folder`` is not a directory or holds no matching file.

    Examples:
      >>> import pathlib, tempfile
      >>> import numpy as np
      >>> from PIL import Image
      >>> from l1jax import sr
      >>> with tempfile.TemporaryDirectory() as folder:
      ...     Image.fromarray(np.zeros((8, 6, 3), np.uint8)).save(pathlib.Path(folder) / "a.png")
      ...     images = sr.load_image_folder(folder)
      >>> print({name: im.shape for name, im in images.items()})
      {'a.png': (8, 6, 3)}
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise ValueError(f"load_image_folder: folder must be a directory, got {folder!r}.")
    files = sorted(
        f
        for f in os.listdir(folder)
        if os.path.splitext(f)[1].lower() in extensions and os.path.isfile(os.path.join(folder, f))
    )
    if not files:
        raise ValueError(
            f"load_image_folder: no files ending in {tuple(extensions)} in folder={folder!r}."
        )
    return {f: load_image(os.path.join(folder, f), channels=channels) for f in files}


def load_split(
    *,
    train: Sequence[str] = TRAIN_IMAGES,
    test: Sequence[str] = TEST_IMAGES,
    channels: int = 3,
) -> tuple[list[jax.Array], list[jax.Array]]:
    """Loads a train/test split given by names (bundled names or file paths).

    Raises:
      ValueError: if a name appears in both lists, or either list is empty.

    Examples:
      >>> from l1jax import sr
      >>> train, test = sr.load_split(train=["astronaut"], test=["chelsea", "coffee"])
      >>> print(len(train), len(test), test[0].shape)
      1 2 (300, 451, 3)
    """
    train, test = list(train), list(test)
    if not train or not test:
        raise ValueError(f"load_split: train and test must be non-empty, got {train=}, {test=}.")
    both = sorted(set(map(os.fspath, train)) & set(map(os.fspath, test)))
    if both:
        raise ValueError(f"load_split: train and test must be disjoint, both contain {both}.")
    return load_images(train, channels=channels), load_images(test, channels=channels)


def _flatten(images: Sequence[jax.Array]) -> tuple[jax.Array, np.ndarray]:
    offsets = np.cumsum([0] + [im.shape[0] * im.shape[1] for im in images[:-1]])
    flat = jnp.concatenate([jnp.reshape(im, (-1, im.shape[-1])) for im in images], axis=0)
    return flat, offsets.astype(np.int32)


class PatchDataset(eqx.Module):
    """Random aligned (LR, HR) patch pairs, sampled and augmented on the device.

    Each HR image is cropped to a multiple of ``scale`` and downsampled once, whole, with
    MATLAB-style bicubic (``downsample``), the way DIV2K/EDSR build their LR sets; a training
    pair is an LR crop at ``(y, x)`` and the HR crop at ``(scale * y, scale * x)``, so LR
    patches carry no artificial patch-border effects. Images are picked uniformly, positions
    uniformly within the image, and one of the 8 symmetries of the square (flips, transposes,
    90-degree rotations) uniformly, the same for both patches of a pair.

    The dataset is a pytree (the pixel buffers are leaves), so ``sample_batch`` can be called
    inside a jitted training step; ``batch_size`` must be static. Pass the dataset to the jitted
    function as an argument rather than closing over it: a closed-over buffer would be baked into
    the compiled program as a constant (tens of MB for the bundled images).

    Attributes:
      hr: flat HR pixels ``(sum_i H_i W_i, C)`` of all images.
      lr: flat LR pixels ``(sum_i H_i W_i / scale^2, C)``.
      hr_offsets, lr_offsets: start of image ``i`` in the flat buffers, int32 ``(n,)``.
      lr_heights, lr_widths: LR image sizes, int32 ``(n,)``.
      scale: upscaling factor.
      patch_size: LR patch side; HR patches are ``scale * patch_size``.
      augment: whether to apply the random symmetries.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import sr
      >>> data = sr.PatchDataset([jnp.zeros((32, 32, 3))], scale=2, patch_size=8)
      >>> lr, hr = data.sample_batch(jax.random.key(0), 4)
      >>> print(lr.shape, hr.shape)
      (4, 8, 8, 3) (4, 16, 16, 3)
    """

    hr: jax.Array
    lr: jax.Array
    hr_offsets: jax.Array
    lr_offsets: jax.Array
    lr_heights: jax.Array
    lr_widths: jax.Array
    scale: int = eqx.field(static=True)
    patch_size: int = eqx.field(static=True)
    augment: bool = eqx.field(static=True)

    def __init__(
        self,
        images: Sequence[ArrayLike],
        *,
        scale: int,
        patch_size: int,
        augment: bool = True,
    ):
        """Builds the buffers.

        Args:
          images: HR images, float ``(H_i, W_i, C)`` with the same ``C``.
          scale: integer factor 2, 3, 4, ...
          patch_size: LR patch side; every LR image must be at least this large.
          augment: random flips and 90-degree rotations.

        Raises:
          ValueError: on an empty list, mismatched channels, a bad ``scale``/``patch_size``,
            or an image smaller than ``scale * patch_size``.
        """
        if isinstance(scale, bool) or not isinstance(scale, int | np.integer) or scale < 1:
            raise ValueError(f"PatchDataset: scale must be a positive int, got scale={scale!r}.")
        if isinstance(patch_size, bool) or not isinstance(patch_size, int | np.integer):
            raise ValueError(f"PatchDataset: patch_size must be an int, got {patch_size!r}.")
        if patch_size < 1:
            raise ValueError(f"PatchDataset: patch_size must be >= 1, got {patch_size}.")
        arrays = [jnp.asarray(im, dtype=jnp.float32) for im in images]
        if not arrays:
            raise ValueError("PatchDataset: images must be a non-empty list.")
        hr_list, lr_list = [], []
        for i, im in enumerate(arrays):
            if im.ndim != 3 or im.shape[-1] != arrays[0].shape[-1]:
                raise ValueError(
                    f"PatchDataset: images[{i}] must have shape (H, W, "
                    f"{arrays[0].shape[-1]}), got {im.shape}."
                )
            hr = modcrop(im, scale)
            if min(hr.shape[0], hr.shape[1]) < scale * patch_size:
                raise ValueError(
                    f"PatchDataset: images[{i}] of shape {im.shape} is smaller than an HR patch "
                    f"of side scale * patch_size = {scale * patch_size}."
                )
            hr_list.append(hr)
            lr_list.append(downsample(hr, scale))
        self.hr, hr_offsets = _flatten(hr_list)
        self.lr, lr_offsets = _flatten(lr_list)
        self.hr_offsets = jnp.asarray(hr_offsets)
        self.lr_offsets = jnp.asarray(lr_offsets)
        self.lr_heights = jnp.asarray([im.shape[0] for im in lr_list], dtype=jnp.int32)
        self.lr_widths = jnp.asarray([im.shape[1] for im in lr_list], dtype=jnp.int32)
        self.scale = int(scale)
        self.patch_size = int(patch_size)
        self.augment = bool(augment)

    @property
    def num_images(self) -> int:
        return self.lr_heights.shape[0]

    def sample_batch(self, key: jax.Array, batch_size: int) -> tuple[jax.Array, jax.Array]:
        """Draws ``batch_size`` aligned pairs; deterministic given ``key``.

        Args:
          key: PRNG key.
          batch_size: static number of pairs.

        Returns:
          ``(lr, hr)`` float32 arrays ``(B, p, p, C)`` and ``(B, s p, s p, C)``.
        """
        k_img, k_y, k_x, k_t = jax.random.split(key, 4)
        p, s = self.patch_size, self.scale
        img = jax.random.randint(k_img, (batch_size,), 0, self.num_images)
        h, w = self.lr_heights[img], self.lr_widths[img]
        y = jax.random.randint(k_y, (batch_size,), 0, h - p + 1)
        x = jax.random.randint(k_x, (batch_size,), 0, w - p + 1)
        t = jax.random.randint(k_t, (batch_size,), 0, 8 if self.augment else 1)
        lr = self._gather(self.lr, self.lr_offsets[img], w, y, x, t, p)
        hr = self._gather(self.hr, self.hr_offsets[img], s * w, s * y, s * x, t, s * p)
        return lr, hr

    @staticmethod
    def _gather(buf, offset, width, y, x, t, size):
        # Bits of t pick transpose / row flip / column flip: the 8 elements of the dihedral
        # group D4, i.e. the identity, 3 rotations, 2 flips and 2 transposes.
        r = jnp.arange(size, dtype=jnp.int32)[None, :, None]
        c = jnp.arange(size, dtype=jnp.int32)[None, None, :]
        t = t[:, None, None]
        transpose, flip_r, flip_c = (t & 1) == 1, (t & 2) == 2, (t & 4) == 4
        src_r = jnp.where(transpose, c, r)
        src_c = jnp.where(transpose, r, c)
        src_r = jnp.where(flip_r, size - 1 - src_r, src_r)
        src_c = jnp.where(flip_c, size - 1 - src_c, src_c)
        col = lambda v: v[:, None, None]  # noqa: E731
        idx = col(offset) + (col(y) + src_r) * col(width) + col(x) + src_c
        return buf.at[idx].get(mode="promise_in_bounds")


def eval_pairs(
    images: Sequence[ArrayLike], *, scale: int
) -> tuple[list[jax.Array], list[jax.Array]]:
    """Full-image test pairs: HR cropped to a multiple of ``scale``, LR its bicubic downsample.

    Args:
      images: HR images ``(H_i, W_i, C)``.
      scale: integer factor.

    Returns:
      ``(lr_list, hr_list)`` with ``lr_list[i]`` of shape ``(H_i // s, W_i // s, C)`` and
      ``hr_list[i]`` of shape ``(s (H_i // s), s (W_i // s), C)``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import sr
      >>> lr, hr = sr.eval_pairs([jnp.zeros((17, 18, 3))], scale=4)  # HR cropped to a multiple of 4
      >>> print(lr[0].shape, hr[0].shape)
      (4, 4, 3) (16, 16, 3)
    """
    hr = [modcrop(jnp.asarray(im, dtype=jnp.float32), scale) for im in images]
    return [downsample(im, scale) for im in hr], hr
