"""MATLAB-compatible bicubic resizing (``imresize(x, s, 'bicubic')``) for NHWC images.

Super-resolution benchmarks (SRCNN, EDSR, DIV2K) define their low-resolution inputs with MATLAB's
``imresize``: the Keys cubic kernel with ``a = -0.5``, widened by ``1/s`` when shrinking
(antialiasing), and symmetric (half-sample mirror) padding at the borders. ``jax.image.resize``
uses the same kernel and widening but renormalises the weights at the border instead of
mirroring, so the two agree in the interior and differ in the outer ``2/s``-ish output pixels.

Each axis is resized by a dense ``(out, in)`` weight matrix computed in NumPy float64 from the
static shapes, so the resize is two matrix products that run under ``jit``/``vmap``/``grad`` on
any backend.
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.typing import ArrayLike

__all__ = ["imresize", "downsample", "upsample", "modcrop"]


def _keys_cubic(t: np.ndarray) -> np.ndarray:
    # Keys (1981) with a = -0.5, written as MATLAB's imresize writes it.
    a = np.abs(t)
    inner = (1.5 * a - 2.5) * a * a + 1.0
    outer = ((-0.5 * a + 2.5) * a - 4.0) * a + 2.0
    return np.where(a <= 1.0, inner, np.where(a <= 2.0, outer, 0.0))


@functools.lru_cache(maxsize=64)
def _weight_matrix(in_len: int, out_len: int, scale: float, antialias: bool) -> np.ndarray:
    """``(out_len, in_len)`` matrix ``W`` with ``resized = W @ signal`` along one axis."""
    if scale < 1.0 and antialias:
        width = 4.0 / scale

        def kernel(t):
            return scale * _keys_cubic(scale * t)
    else:
        width = 4.0
        kernel = _keys_cubic
    # 1-based output/input coordinates, as in MATLAB's contributions().
    u = np.arange(1, out_len + 1, dtype=np.float64) / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    idx = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    w = kernel(u[:, None] - idx)
    w = w / np.sum(w, axis=1, keepdims=True)
    # Half-sample symmetric padding: ... x1 x0 | x0 x1 ... x_{n-1} | x_{n-1} x_{n-2} ...
    zero_based = idx.astype(np.int64) - 1
    period = 2 * in_len
    m = np.mod(zero_based, period)
    src = np.where(m < in_len, m, period - 1 - m)
    mat = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(mat, (np.repeat(np.arange(out_len), taps), src.ravel()), w.ravel())
    return mat


def imresize(
    images: ArrayLike,
    *,
    scale: float,
    out_size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> jax.Array:
    """Bicubic resize of ``(..., H, W, C)`` images, matching MATLAB's ``imresize``.

    ``out[o] = sum_i w(o, i) x[i]`` per axis, with ``w`` the Keys cubic (``a = -0.5``) evaluated
    at ``u(o) - i``, ``u(o) = (o + 0.5) / scale - 0.5``, widened to ``scale * k(scale * t)`` when
    ``scale < 1`` and ``antialias``, normalised to sum to one, and folded back into the image
    by half-sample symmetric padding.

    Args:
      images: floating-point array ``(..., H, W, C)``; leading axes are batch axes.
      scale: resize factor ``> 0``, the same on both axes (``0.5`` halves, ``2`` doubles).
      out_size: ``(H_out, W_out)``; default ``(ceil(H * scale), ceil(W * scale))``.
      antialias: widen the kernel when shrinking (MATLAB's default).

    Returns:
      Array ``(..., H_out, W_out, C)`` of the input's dtype. Values are not clipped: bicubic
      overshoots slightly at edges.

    Raises:
      ValueError: if ``images`` has fewer than 3 axes or ``scale <= 0``.

    References:
      - Keys, R. (1981). Cubic convolution interpolation for digital image processing. IEEE Trans.
      - Acoustics, Speech, and Signal Processing 29(6).
      - MathWorks, ``imresize`` (Image Processing Toolbox), method ``'bicubic'``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import sr
      >>> out = sr.imresize(jnp.ones((1, 16, 16, 3)), scale=0.5)  # MATLAB's bicubic, antialiased
      >>> print(out.shape, round(float(out.mean()), 4))
      (1, 8, 8, 3) 1.0
    """
    x = jnp.asarray(images)
    if x.ndim < 3:
        raise ValueError(f"imresize: images must have shape (..., H, W, C), got shape {x.shape}.")
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"imresize: images must be floating point, got dtype {x.dtype}.")
    scale = float(scale)
    if not scale > 0.0:
        raise ValueError(f"imresize: scale must be > 0, got scale={scale}.")
    h, w = x.shape[-3], x.shape[-2]
    if out_size is None:
        # round() guards against ceil(300 * (1/3)) = 101 from float error.
        out_size = (math.ceil(round(h * scale, 9)), math.ceil(round(w * scale, 9)))
    ho, wo = (int(s) for s in out_size)
    mh = jnp.asarray(_weight_matrix(h, ho, scale, antialias), dtype=x.dtype)
    mw = jnp.asarray(_weight_matrix(w, wo, scale, antialias), dtype=x.dtype)
    # HIGHEST: GPUs would otherwise run these float32 products in TF32 (~1e-3 relative error).
    hi = jax.lax.Precision.HIGHEST
    y = jnp.einsum("oh,...hwc->...owc", mh, x, precision=hi)
    return jnp.einsum("pw,...owc->...opc", mw, y, precision=hi)


def _check_factor(factor, fn):
    if isinstance(factor, bool) or not isinstance(factor, int | np.integer) or factor < 1:
        raise ValueError(f"{fn}: factor must be a positive int, got factor={factor!r}.")
    return int(factor)


def downsample(images: ArrayLike, factor: int) -> jax.Array:
    """Antialiased bicubic downsampling by an integer ``factor`` (MATLAB ``imresize(x, 1/s)``).

    Args:
      images: ``(..., H, W, C)`` with ``H`` and ``W`` multiples of ``factor`` (see ``modcrop``).
      factor: integer scale ``s >= 1``.

    Returns:
      ``(..., H / s, W / s, C)``.

    Raises:
      ValueError: if ``factor`` is not a positive int or does not divide ``H`` and ``W``.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import sr
      >>> print(sr.downsample(jnp.zeros((1, 16, 16, 3)), 2).shape)  # imresize by 1 / factor
      (1, 8, 8, 3)
    """
    s = _check_factor(factor, "downsample")
    x = jnp.asarray(images)
    if x.ndim < 3 or x.shape[-3] % s or x.shape[-2] % s:
        raise ValueError(
            f"downsample: images must have shape (..., H, W, C) with H and W multiples of "
            f"factor={s}, got shape {x.shape}; crop with modcrop first."
        )
    return imresize(x, scale=1.0 / s, out_size=(x.shape[-3] // s, x.shape[-2] // s))


def upsample(images: ArrayLike, factor: int) -> jax.Array:
    """Bicubic upsampling by an integer ``factor`` (MATLAB ``imresize(x, s)``).

    Returns:
      ``(..., s H, s W, C)``; an image is interpolated, not smoothed (no antialiasing applies).

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import sr
      >>> print(sr.upsample(jnp.zeros((1, 8, 8, 3)), 2).shape)  # the bicubic baseline
      (1, 16, 16, 3)
    """
    s = _check_factor(factor, "upsample")
    x = jnp.asarray(images)
    if x.ndim < 3:
        raise ValueError(f"upsample: images must have shape (..., H, W, C), got shape {x.shape}.")
    return imresize(x, scale=float(s), out_size=(x.shape[-3] * s, x.shape[-2] * s))


def modcrop(image: ArrayLike, factor: int) -> jax.Array:
    """Crops ``(..., H, W, C)`` to the top-left ``(H - H % s, W - W % s)``, as SR benchmarks do.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import sr
      >>> print(sr.modcrop(jnp.zeros((17, 18, 3)), 4).shape)
      (16, 16, 3)
    """
    s = _check_factor(factor, "modcrop")
    x = jnp.asarray(image)
    if x.ndim < 3:
        raise ValueError(f"modcrop: image must have shape (..., H, W, C), got shape {x.shape}.")
    h, w = x.shape[-3], x.shape[-2]
    return x[..., : h - h % s, : w - w % s, :]
