"""Separable Gaussian filtering and 2x2 average pooling of ``(..., H, W, K)`` arrays.

Each 1-D pass is a matrix product rather than ``lax.conv_general_dilated``: on XLA's CPU
backend a depthwise convolution of a batch of 48x48 patches was 30-50x slower than the same
filter as a matrix product (forward and gradient), and on accelerators matrix products are
the fastest primitive there is. Short axes (training patches) use one dense matrix with the
border handling folded in; long axes (full validation images) use banded products over tiles,
about ``2 T`` multiply-adds per pixel (``T`` the tile length) instead of the axis length.
Products run at ``Precision.HIGHEST``: the TF32 default of recent GPUs would ruin the
``E[x^2] - E[x]^2`` variances of SSIM.
"""

from __future__ import annotations

import math
import numbers
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from l1jax._checks import as_array

# skimage.metrics.structural_similarity truncates its Gaussian at 3.5 sigma (an 11-tap window
# for sigma = 1.5, as in Wang et al. 2004).
TRUNCATE = 3.5
_TILE = 32
# Axes up to this length are filtered by one dense (out_len, length) matrix with the border
# handling folded in (one product per axis: small graphs, fast compiles for training patches);
# longer ones by tiles.
_DENSE_MAX = 128


def _check_positive(value, name: str, fn: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not (math.isfinite(value) and float(value) > 0)
    ):
        raise ValueError(f"{fn}: {name} must be a finite number > 0, got {name}={value!r}.")
    return float(value)


def window_size(sigma: float, truncate: float = TRUNCATE) -> int:
    """Taps of the truncated Gaussian, ``2 int(truncate sigma + 0.5) + 1`` (scipy.ndimage's).

    Raises:
      ValueError: unless ``sigma`` and ``truncate`` are finite numbers ``> 0``.

    Examples:
      >>> from l1jax import image
      >>> image.window_size(1.5)  # scikit-image's 2 * int(3.5 * 1.5 + 0.5) + 1
      11
    """
    sigma = _check_positive(sigma, "sigma", "window_size")
    truncate = _check_positive(truncate, "truncate", "window_size")
    return 2 * int(truncate * sigma + 0.5) + 1


def gaussian_kernel(sigma: float, size: int) -> np.ndarray:
    """Normalised 1-D Gaussian ``exp(-x^2 / (2 sigma^2))`` on ``size`` taps centred at 0."""
    r = size // 2
    x = np.arange(-r, r + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    return g / g.sum()


def _reflect(index: np.ndarray, length: int) -> np.ndarray:
    """Symmetric reflection ``d c b a | a b c d``, repeated: the even ``2 length``-periodic
    extension (``numpy.pad(mode="symmetric")``, ``scipy.ndimage`` ``mode="reflect"``)."""
    m = np.mod(index, 2 * length)
    return np.where(m < length, m, 2 * length - 1 - m)


def _axis_matrix(taps: np.ndarray, length: int, padding: str) -> np.ndarray:
    """The filter along one axis as an ``(out_len, length)`` matrix, borders folded in."""
    n = taps.shape[0]
    r = n // 2
    out_len = length if padding == "same" else length - n + 1
    rows = np.repeat(np.arange(out_len), n)
    src = (np.arange(out_len)[:, None] + np.arange(n)[None, :]).ravel()
    if padding == "same":
        src = _reflect(src - r, length)
    mat = np.zeros((out_len, length))
    np.add.at(mat, (rows, src), np.tile(taps, out_len))
    return mat


def _dense_axis(x: jax.Array, mat: np.ndarray, axis: int) -> jax.Array:
    spec = "ij,...jwk->...iwk" if axis == -3 else "ij,...hjk->...hik"
    return jnp.einsum(spec, jnp.asarray(mat, x.dtype), x, precision=lax.Precision.HIGHEST)


def _tiled_axis(x: jax.Array, taps: np.ndarray, axis: int) -> jax.Array:
    """Valid correlation along ``axis`` (-3 or -2) as banded products over tiles."""
    n = taps.shape[0]
    length = x.shape[axis]
    out_len = length - n + 1
    tile = max(n - 1, min(_TILE, out_len), 1)
    n_tiles = -(-out_len // tile)
    # Output tile t reads input tiles t and t + 1 (n - 1 <= tile), so one zero tile at the end
    # covers the last one.
    pad = [(0, 0)] * x.ndim
    pad[axis] = (0, (n_tiles + 1) * tile - length)
    x = jnp.pad(x, pad)
    x = x.reshape(x.shape[:axis] + (n_tiles + 1, tile) + x.shape[axis + 1 :])
    i = np.arange(tile)[:, None]
    j = np.arange(tile)[None, :]

    def band(offset: int) -> jax.Array:
        d = j + offset - i
        return jnp.asarray(np.where((d >= 0) & (d < n), taps[np.clip(d, 0, n - 1)], 0.0), x.dtype)

    spec = "ij,...tjwk->...tiwk" if axis == -3 else "ij,...htjk->...htik"
    tile_axis = axis - 1
    cur = lax.slice_in_dim(x, 0, n_tiles, axis=tile_axis)
    nxt = lax.slice_in_dim(x, 1, n_tiles + 1, axis=tile_axis)
    hi = lax.Precision.HIGHEST
    y = jnp.einsum(spec, band(0), cur, precision=hi)
    y = y + jnp.einsum(spec, band(tile), nxt, precision=hi)
    # Trailing axes are unchanged, so the (tile index, offset) pair sits at (axis - 1, axis).
    y = y.reshape(y.shape[:tile_axis] + (n_tiles * tile,) + y.shape[axis + 1 :])
    return lax.slice_in_dim(y, 0, out_len, axis=axis)


def _filter_axis(x: jax.Array, taps: np.ndarray, axis: int, padding: str) -> jax.Array:
    length = x.shape[axis]
    if length <= _DENSE_MAX:
        return _dense_axis(x, _axis_matrix(taps, length, padding), axis)
    if padding == "same":
        r = taps.shape[0] // 2
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        x = jnp.pad(x, pad, mode="symmetric")
    return _tiled_axis(x, taps, axis)


def gaussian_filter(
    x: jax.Array, *, sigma: float, size: int, padding: Literal["valid", "same"] = "valid"
) -> jax.Array:
    """Separable Gaussian filter over the ``H`` and ``W`` axes of ``(..., H, W, K)``.

    Args:
      x: floating array ``(..., H, W, K)``; the ``K`` channels are filtered independently.
      sigma: standard deviation in pixels.
      size: odd number of taps.
      padding: ``"valid"`` keeps the ``(H - size + 1, W - size + 1)`` positions whose window
        lies inside the image (scikit-image's SSIM after its border crop); ``"same"`` first
        extends the image by symmetric reflection (``d c b a | a b c d``, scipy.ndimage's
        ``mode="reflect"``, repeated when the window is wider than the image).

    Returns:
      The filtered array, ``(..., H', W', K)``.

    Raises:
      TypeError: if ``x`` is not floating point (an integer filter would truncate the taps).
      ValueError: on fewer than 3 axes, ``sigma`` not a finite number ``> 0``, ``size`` not a
        positive odd integer, an unknown ``padding``, or (``"valid"``) an image smaller than
        the window.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import image
      >>> x = jnp.ones((1, 16, 16, 1))
      >>> print(image.gaussian_filter(x, sigma=1.5, size=11).shape)  # "valid": 16 - 11 + 1
      (1, 6, 6, 1)
      >>> y = image.gaussian_filter(x, sigma=1.5, size=11, padding="same")
      >>> print(y.shape, round(float(y[0, 8, 8, 0]), 4))  # the weights sum to one
      (1, 16, 16, 1) 1.0
    """
    fn = "gaussian_filter"
    x = as_array(x, "x", fn=fn, expected="a floating-point array")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{fn}: x must be a floating-point array, got dtype {x.dtype}.")
    if x.ndim < 3:
        raise ValueError(f"{fn}: x must have shape (..., H, W, K), got x.shape={x.shape}.")
    sigma = _check_positive(sigma, "sigma", fn)
    if isinstance(size, bool) or not isinstance(size, numbers.Integral) or size % 2 != 1:
        raise ValueError(f"{fn}: size must be a positive odd integer, got size={size!r}.")
    if padding not in ("valid", "same"):
        raise ValueError(f"{fn}: padding must be 'valid' or 'same', got padding={padding!r}.")
    if padding == "valid" and min(x.shape[-3], x.shape[-2]) < size:
        raise ValueError(
            f"{fn}: with padding='valid' the image must be at least {size}x{size} pixels, got "
            f"x.shape={x.shape}."
        )
    if padding == "same" and 0 in x.shape[-3:-1]:
        raise ValueError(f"{fn}: x has no pixel to reflect, got x.shape={x.shape}.")
    taps = gaussian_kernel(sigma, size)
    return _filter_axis(_filter_axis(x, taps, -3, padding), taps, -2, padding)


def avg_pool2(x: jax.Array) -> jax.Array:
    """2x2 mean with stride 2 over ``(H, W)`` of ``(..., H, W, K)``.

    An odd ``H`` or ``W`` is first extended by repeating its last row / column (what
    ``tf.image.ssim_multiscale`` does with its symmetric pad), so every pixel is used and the
    result has ``ceil(H / 2) x ceil(W / 2)`` pixels.
    """
    h, w = x.shape[-3], x.shape[-2]
    pad = [(0, 0)] * (x.ndim - 3) + [(0, h % 2), (0, w % 2), (0, 0)]
    x = jnp.pad(x, pad, mode="edge")
    h2, w2 = (h + 1) // 2, (w + 1) // 2
    x = x.reshape(x.shape[:-3] + (h2, 2, w2, 2, x.shape[-1]))
    return jnp.mean(x, axis=(-4, -2))
