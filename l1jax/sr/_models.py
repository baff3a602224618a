"""Super-resolution networks as equinox modules, channels-last (NHWC).

Convention: a model maps an LR image ``(h, w, C)`` or a batch ``(B, h, w, C)`` to the HR
``(s h, s w, C)`` / ``(B, s h, s w, C)``; pixel values are in [0, 1] and outputs are not clipped.
Training calls it on a batch of patches, evaluation on one full image of any size (models are
fully convolutional).

Convolutions are ``lax.conv_general_dilated`` in NHWC/HWIO rather than ``eqx.nn.Conv2d`` (CHW,
one image at a time): on the CPU, XLA runs NHWC convolutions of a whole batch faster than a
vmapped CHW one (``scripts/bench_sr.py --layouts`` measures it), and NHWC is also the layout
GPUs and TPUs prefer. Initialisation is PyTorch's default for ``nn.Conv2d``, the same as
``eqx.nn.Conv2d``: weights and bias ``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
from jax.typing import ArrayLike

from l1jax.sr._resize import upsample

__all__ = ["Conv2d", "pixel_shuffle", "SRCNN", "ESPCN", "EDSR"]

# RGB mean of DIV2K, which EDSR subtracts before the head and adds back after the tail.
DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def pixel_shuffle(x: ArrayLike, scale: int) -> jax.Array:
    """Sub-pixel rearrangement ``(..., h, w, C r^2) -> (..., r h, r w, C)`` (channels last).

    ``out[..., r i + a, r j + b, c] = x[..., i, j, c r^2 + a r + b]``: the channel order of
    ``torch.nn.functional.pixel_shuffle``, so weights port between the two.

    Args:
      x: array ``(..., h, w, C r^2)``.
      scale: upscale factor ``r >= 1``.

    Returns:
      Array ``(..., r h, r w, C)``.

    Raises:
      ValueError: if the channel count is not a multiple of ``r^2``.

    References:
      - Shi, W. et al. (2016). Real-Time Single Image and Video Super-Resolution Using an Efficient
      - Sub-Pixel Convolutional Neural Network. CVPR.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import sr
      >>> print(sr.pixel_shuffle(jnp.zeros((1, 4, 4, 12)), 2).shape)  # C r^2 -> r x r blocks
      (1, 8, 8, 3)
    """
    x = jnp.asarray(x)
    r = int(scale)
    if r < 1 or x.ndim < 3 or x.shape[-1] % (r * r):
        raise ValueError(
            f"pixel_shuffle: x must have shape (..., h, w, C * scale^2) with scale >= 1, got "
            f"shape {x.shape} and scale={scale!r}."
        )
    *lead, h, w, crr = x.shape
    c = crr // (r * r)
    n = len(lead)
    x = x.reshape(*lead, h, w, c, r, r)
    # (..., h, w, c, a, b) -> (..., h, a, w, b, c)
    perm = (*range(n), n, n + 3, n + 1, n + 4, n + 2)
    return x.transpose(perm).reshape(*lead, h * r, w * r, c)


class Conv2d(eqx.Module):
    """2D convolution on NHWC batches with "same" zero padding and stride 1.

    Attributes:
      weight: ``(k, k, in, out)`` (HWIO).
      bias: ``(out,)``.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import sr
      >>> x = jnp.zeros((1, 8, 8, 3))  # (N, H, W, C) low-resolution input
      >>> conv = sr.Conv2d(3, 5, 3, key=jax.random.key(0))  # "same" padding, NHWC
      >>> print(conv(x).shape)
      (1, 8, 8, 5)
    """

    weight: jax.Array
    bias: jax.Array

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, *, key: jax.Array):
        wkey, bkey = jax.random.split(key)
        lim = 1.0 / math.sqrt(in_channels * kernel_size * kernel_size)
        shape = (kernel_size, kernel_size, in_channels, out_channels)
        self.weight = jax.random.uniform(wkey, shape, minval=-lim, maxval=lim)
        self.bias = jax.random.uniform(bkey, (out_channels,), minval=-lim, maxval=lim)

    def __call__(self, x: jax.Array) -> jax.Array:
        """``(B, H, W, in) -> (B, H, W, out)``."""
        y = jax.lax.conv_general_dilated(
            x,
            self.weight.astype(x.dtype),
            window_strides=(1, 1),
            padding="SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        return y + self.bias.astype(x.dtype)[None, None, None, :]


def _check_common(name: str, scale, channels, width, depth, min_depth: int) -> None:
    for arg, value, low in (("scale", scale, 1), ("channels", channels, 1), ("width", width, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name}: {arg} must be an int >= {low}, got {arg}={value!r}.")
    if isinstance(depth, bool) or not isinstance(depth, int) or depth < min_depth:
        raise ValueError(f"{name}: depth must be an int >= {min_depth}, got depth={depth!r}.")


def _as_batch(fn: Callable[[jax.Array], jax.Array], x: ArrayLike, name: str) -> jax.Array:
    x = jnp.asarray(x)
    if x.ndim == 3:
        return fn(x[None])[0]
    if x.ndim == 4:
        return fn(x)
    raise ValueError(f"{name}: x must have shape (h, w, C) or (B, h, w, C), got {x.shape}.")


def _check_channels(x: jax.Array, channels: int, name: str) -> None:
    if x.shape[-1] != channels:
        raise ValueError(f"{name}: x must have {channels} channels (last axis), got {x.shape}.")


class SRCNN(eqx.Module):
    """SRCNN on the bicubic-upsampled input, predicting the residual.

    ``f(x) = U(x) + g(U(x))`` with ``U`` MATLAB-style bicubic upsampling (``upsample``) and ``g``
    a stack of ``depth`` convolutions (default kernels 9-5-5, ReLU between them, widths
    ``width, width/2, ..., C``). Predicting the residual (as VDSR does) rather than the image
    makes a zero last layer start exactly at bicubic.

    References:
      - Dong, C. et al. (2016). Image Super-Resolution Using Deep Convolutional Networks. TPAMI.
      - Kim, J. et al. (2016). Accurate Image Super-Resolution Using Very Deep Convolutional
      - Networks (VDSR). CVPR.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import sr
      >>> x = jnp.zeros((1, 8, 8, 3))  # (N, H, W, C) low-resolution input
      >>> model = sr.SRCNN(2, width=8, key=jax.random.key(0))  # convolves the bicubic upsample
      >>> print(model(x).shape)
      (1, 16, 16, 3)
    """

    layers: tuple[Conv2d, ...]
    scale: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)

    def __init__(
        self,
        scale: int,
        channels: int = 3,
        width: int = 64,
        depth: int = 3,
        *,
        kernel_sizes: Sequence[int] | None = None,
        key: jax.Array,
    ):
        _check_common("SRCNN", scale, channels, width, depth, 2)
        ks = tuple(kernel_sizes) if kernel_sizes is not None else (9,) + (5,) * (depth - 1)
        if len(ks) != depth:
            raise ValueError(
                f"SRCNN: kernel_sizes must have depth={depth} entries, got kernel_sizes={ks}."
            )
        widths = (channels, width) + (max(width // 2, 1),) * (depth - 2) + (channels,)
        keys = jax.random.split(key, depth)
        self.layers = tuple(
            Conv2d(widths[i], widths[i + 1], ks[i], key=keys[i]) for i in range(depth)
        )
        self.scale = scale
        self.channels = channels

    def __call__(self, x: ArrayLike) -> jax.Array:
        """``(h, w, C)`` or ``(B, h, w, C)`` LR -> HR with ``scale`` times the side."""

        def run(xb):
            _check_channels(xb, self.channels, "SRCNN")
            up = upsample(xb, self.scale)
            h = up
            for layer in self.layers[:-1]:
                h = jax.nn.relu(layer(h))
            return up + self.layers[-1](h)

        return _as_batch(run, x, "SRCNN")


class ESPCN(eqx.Module):
    """ESPCN: convolutions at LR resolution, then one sub-pixel (pixel-shuffle) layer.

    Layers: ``5x5 (C -> width)``, ``tanh``, ``3x3`` convolutions down to ``width/2``, ``tanh``, and
    a last ``3x3`` to ``C scale^2`` channels followed by ``pixel_shuffle``; ``depth`` counts the
    convolutions (3 in the paper).

    References:
      - Shi, W. et al. (2016). Real-Time Single Image and Video Super-Resolution Using an Efficient
      - Sub-Pixel Convolutional Neural Network. CVPR.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import sr
      >>> x = jnp.zeros((1, 8, 8, 3))  # (N, H, W, C) low-resolution input
      >>> model = sr.ESPCN(2, width=8, key=jax.random.key(0))
      >>> print(model(x).shape)
      (1, 16, 16, 3)
    """

    layers: tuple[Conv2d, ...]
    scale: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)

    def __init__(
        self, scale: int, channels: int = 3, width: int = 64, depth: int = 3, *, key: jax.Array
    ):
        _check_common("ESPCN", scale, channels, width, depth, 2)
        widths = (channels, width) + (max(width // 2, 1),) * (depth - 2) + (channels * scale**2,)
        ks = (5,) + (3,) * (depth - 1)
        keys = jax.random.split(key, depth)
        self.layers = tuple(
            Conv2d(widths[i], widths[i + 1], ks[i], key=keys[i]) for i in range(depth)
        )
        self.scale = scale
        self.channels = channels

    def __call__(self, x: ArrayLike) -> jax.Array:
        """``(h, w, C)`` or ``(B, h, w, C)`` LR -> HR with ``scale`` times the side."""

        def run(xb):
            _check_channels(xb, self.channels, "ESPCN")
            h = xb
            for layer in self.layers[:-1]:
                h = jnp.tanh(layer(h))
            return pixel_shuffle(self.layers[-1](h), self.scale)

        return _as_batch(run, x, "ESPCN")


class _ResBlock(eqx.Module):
    conv1: Conv2d
    conv2: Conv2d

    def __init__(self, width: int, *, key: jax.Array):
        k1, k2 = jax.random.split(key)
        self.conv1 = Conv2d(width, width, 3, key=k1)
        self.conv2 = Conv2d(width, width, 3, key=k2)

    def __call__(self, x: jax.Array, res_scale: float) -> jax.Array:
        return x + res_scale * self.conv2(jax.nn.relu(self.conv1(x)))


class EDSR(eqx.Module):
    """EDSR-baseline style network: no batch norm, scaled residual blocks, pixel shuffle.

    ``x - mean -> conv3x3 (C -> width) -> [depth residual blocks
    y + res_scale conv(relu(conv(y)))] -> conv3x3 -> + head -> upsampler -> conv3x3 (width -> C)
    -> + mean``. The upsampler is ``conv3x3 (width -> width s^2) + pixel_shuffle(s)`` for
    ``s`` in {2, 3} and two x2 stages for ``s = 4``; ``mean`` is DIV2K's RGB mean for 3 channels
    and 0.5 otherwise.

    References:
      - Lim, B. et al. (2017). Enhanced Deep Residual Networks for Single Image Super-Resolution.
      - CVPRW.

    Examples:
      >>> import jax, jax.numpy as jnp
      >>> from l1jax import sr
      >>> x = jnp.zeros((1, 8, 8, 3))  # (N, H, W, C) low-resolution input
      >>> model = sr.EDSR(2, width=8, depth=2, key=jax.random.key(0))
      >>> print(model(x).shape)
      (1, 16, 16, 3)
    """

    head: Conv2d
    blocks: tuple[_ResBlock, ...]
    body_tail: Conv2d
    upsampler: tuple[Conv2d, ...]
    tail: Conv2d
    scale: int = eqx.field(static=True)
    channels: int = eqx.field(static=True)
    res_scale: float = eqx.field(static=True)
    mean: tuple[float, ...] = eqx.field(static=True)

    def __init__(
        self,
        scale: int,
        channels: int = 3,
        width: int = 64,
        depth: int = 16,
        *,
        res_scale: float = 1.0,
        key: jax.Array,
    ):
        _check_common("EDSR", scale, channels, width, depth, 0)
        if not res_scale > 0:
            raise ValueError(f"EDSR: res_scale must be > 0, got res_scale={res_scale!r}.")
        stages = _upsample_stages(scale)
        k_head, k_body, k_bt, k_up, k_tail = jax.random.split(key, 5)
        self.head = Conv2d(channels, width, 3, key=k_head)
        self.blocks = tuple(_ResBlock(width, key=k) for k in jax.random.split(k_body, depth))
        self.body_tail = Conv2d(width, width, 3, key=k_bt)
        up_keys = jax.random.split(k_up, len(stages))
        self.upsampler = tuple(
            Conv2d(width, width * r * r, 3, key=k) for r, k in zip(stages, up_keys, strict=True)
        )
        self.tail = Conv2d(width, channels, 3, key=k_tail)
        self.scale = scale
        self.channels = channels
        self.res_scale = float(res_scale)
        self.mean = DIV2K_RGB_MEAN if channels == 3 else (0.5,) * channels

    def __call__(self, x: ArrayLike) -> jax.Array:
        """``(h, w, C)`` or ``(B, h, w, C)`` LR -> HR with ``scale`` times the side."""
        stages = _upsample_stages(self.scale)

        def run(xb):
            _check_channels(xb, self.channels, "EDSR")
            mean = jnp.asarray(self.mean, dtype=xb.dtype)[None, None, None, :]
            h = self.head(xb - mean)
            y = h
            for block in self.blocks:
                y = block(y, self.res_scale)
            y = self.body_tail(y) + h
            for conv, r in zip(self.upsampler, stages, strict=True):
                y = pixel_shuffle(conv(y), r)
            return self.tail(y) + mean

        return _as_batch(run, x, "EDSR")


def _upsample_stages(scale: int) -> tuple[int, ...]:
    if scale in (2, 3):
        return (scale,)
    if scale >= 1 and scale & (scale - 1) == 0:  # powers of two: x2 stages
        return (2,) * (scale.bit_length() - 1)
    raise ValueError(f"EDSR: scale must be 2, 3 or a power of two, got scale={scale!r}.")
