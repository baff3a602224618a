"""Where the SR training step's time goes on the CPU: XLA against PyTorch, phase by phase.

    .venv/bin/python scripts/profile_sr.py --out docs/results/profile_sr.json

Two views of the step that ``scripts/bench_sr.py`` times (EDSR width 64, 8 blocks, x2, batch 16
of 48x48 LR patches, L1 + Adam, float32):

* **Phases of the step**: the forward pass alone, forward + backward (loss and gradients), and
  the whole step (forward, backward and the Adam update), each jitted on its own for l1jax
  (``l1jax.sr.EDSR``, NHWC) and run eagerly for PyTorch (channels-last and NCHW).
* **One body convolution** (64 -> 64 channels, 3x3, on the 16 x 48 x 48 batch, 2.7 GFLOP): its
  forward pass, the gradient with respect to its input and the gradient with respect to its
  weights, for XLA (``lax.conv_general_dilated`` and its VJP) and PyTorch
  (``torch.nn.functional.conv2d`` and ``torch.nn.grad``).

Each timing is the best of ``--repeats`` calls after a warm-up call, the two frameworks
alternating call by call so that background load hits both alike; the load average is recorded
before and after. GFLOP/s counts 2 flops per multiply-add of the convolutions only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from l1jax import losses
from l1jax.sr import EDSR

LR = 1e-4


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=8)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


def best_alternating(fns, repeats):
    """Best wall time of each callable over ``repeats`` rounds, one call of each per round."""
    for f in fns.values():
        f()  # compile / warm up
    times = {k: [] for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            f()
            times[k].append(time.perf_counter() - t)
    return {k: min(v) for k, v in times.items()}


def jax_phases(args, lr, hr):
    model = EDSR(2, 3, args.width, args.depth, key=jax.random.key(0))
    opt = optax.adam(LR)
    opt_state = opt.init(eqx.filter(model, eqx.is_array))
    fwd = eqx.filter_jit(lambda m, x: m(x))
    grad = eqx.filter_jit(eqx.filter_value_and_grad(lambda m, x, y: losses.l1(m(x), y)))

    @eqx.filter_jit
    def step(m, s, x, y):
        loss, g = eqx.filter_value_and_grad(lambda m_: losses.l1(m_(x), y))(m)
        upd, s = opt.update(g, s, eqx.filter(m, eqx.is_array))
        return eqx.apply_updates(m, upd), s, loss

    return {
        "forward": lambda: jax.block_until_ready(fwd(model, lr)),
        "forward + backward": lambda: jax.block_until_ready(grad(model, lr, hr)),
        "step": lambda: jax.block_until_ready(step(model, opt_state, lr, hr)),
    }


def torch_phases(args, lr_np, hr_np, channels_last):
    import torch
    from bench_sr import torch_edsr

    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = torch_edsr(2, 3, args.width, args.depth).to(memory_format=fmt)
    lr = torch.from_numpy(lr_np).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    hr = torch.from_numpy(hr_np).permute(0, 3, 1, 2).contiguous(memory_format=fmt)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.L1Loss()

    def forward():
        with torch.no_grad():
            net(lr)

    def fwd_bwd():
        net.zero_grad(set_to_none=True)
        loss_fn(net(lr), hr).backward()

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(lr), hr).backward()
        opt.step()

    return {"forward": forward, "forward + backward": fwd_bwd, "step": step}


def conv_parts(args):
    """Forward, input gradient and weight gradient of one 3x3 width -> width convolution."""
    import torch

    rng = np.random.default_rng(0)
    B, H, C = args.batch, args.patch, args.width
    x = rng.standard_normal((B, H, H, C), dtype=np.float32)
    w = rng.standard_normal((3, 3, C, C), dtype=np.float32) * 0.05
    g = rng.standard_normal((B, H, H, C), dtype=np.float32)
    dn = ("NHWC", "HWIO", "NHWC")

    def conv(x_, w_):
        return jax.lax.conv_general_dilated(x_, w_, (1, 1), "SAME", dimension_numbers=dn)

    xj, wj, gj = jnp.asarray(x), jnp.asarray(w), jnp.asarray(g)
    fwd = jax.jit(conv)
    dx = jax.jit(lambda x_, w_, g_: jax.vjp(lambda a: conv(a, w_), x_)[1](g_)[0])
    dw = jax.jit(lambda x_, w_, g_: jax.vjp(lambda b: conv(x_, b), w_)[1](g_)[0])
    out = {
        "xla": {
            "forward": lambda: jax.block_until_ready(fwd(xj, wj)),
            "input gradient": lambda: jax.block_until_ready(dx(xj, wj, gj)),
            "weight gradient": lambda: jax.block_until_ready(dw(xj, wj, gj)),
        }
    }
    # PyTorch, channels-last: (B, C, H, W) tensors with NHWC memory, OIHW weights.
    cl = torch.channels_last
    xt = torch.from_numpy(x).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    gt = torch.from_numpy(g).permute(0, 3, 1, 2).contiguous(memory_format=cl)
    wt = torch.from_numpy(w).permute(3, 2, 0, 1).contiguous(memory_format=cl)
    F = torch.nn.functional

    def t_fwd():
        with torch.no_grad():
            F.conv2d(xt, wt, padding=1)

    out["torch"] = {
        "forward": t_fwd,
        "input gradient": lambda: torch.nn.grad.conv2d_input(xt.shape, wt, gt, padding=1),
        "weight gradient": lambda: torch.nn.grad.conv2d_weight(xt, wt.shape, gt, padding=1),
    }
    # Agreement: the three results of both frameworks, relative to their scale.
    with torch.no_grad():
        ref = [
            F.conv2d(xt, wt, padding=1).permute(0, 2, 3, 1).numpy(),
            torch.nn.grad.conv2d_input(xt.shape, wt, gt, padding=1).permute(0, 2, 3, 1).numpy(),
            torch.nn.grad.conv2d_weight(xt, wt.shape, gt, padding=1).permute(2, 3, 1, 0).numpy(),
        ]
    mine = [np.asarray(fwd(xj, wj)), np.asarray(dx(xj, wj, gj)), np.asarray(dw(xj, wj, gj))]
    agree = [
        float(np.max(np.abs(a - b)) / np.max(np.abs(b))) for a, b in zip(mine, ref, strict=True)
    ]
    gflop = 2 * B * H * H * C * C * 9 / 1e9
    return out, agree, gflop


def main(args):
    import sys

    import torch

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    rng = np.random.default_rng(0)
    lr_np = rng.random((args.batch, args.patch, args.patch, 3), dtype=np.float32)
    hr_np = rng.random((args.batch, 2 * args.patch, 2 * args.patch, 3), dtype=np.float32)
    lr, hr = jnp.asarray(lr_np), jnp.asarray(hr_np)

    impls = {
        "l1jax NHWC": jax_phases(args, lr, hr),
        "PyTorch channels_last": torch_phases(args, lr_np, hr_np, True),
        "PyTorch NCHW": torch_phases(args, lr_np, hr_np, False),
    }
    flat = {(i, p): f for i, ph in impls.items() for p, f in ph.items()}
    t = best_alternating(flat, args.repeats)
    phases = {i: {p: t[(i, p)] for p in ph} for i, ph in impls.items()}

    parts, agree, gflop = conv_parts(args)
    flat = {(i, p): f for i, ph in parts.items() for p, f in ph.items()}
    t = best_alternating(flat, 4 * args.repeats)
    conv = {i: {p: t[(i, p)] for p in ph} for i, ph in parts.items()}
    load_after = os.getloadavg()

    print(
        f"EDSR width {args.width}, {args.depth} blocks, x2, batch {args.batch} of "
        f"{args.patch}x{args.patch}; best of {args.repeats}; load {load_before[0]:.2f} before, "
        f"{load_after[0]:.2f} after"
    )
    names = list(phases)
    print("phase                 " + "".join(f"{n:>24s}" for n in names) + "   l1jax / CL")
    for p in phases[names[0]]:
        row = "".join(f"{phases[n][p] * 1e3:21.0f} ms" for n in names)
        print(f"{p:22s}{row}   {phases[names[0]][p] / phases[names[1]][p]:8.2f}")
    print(
        f"one 3x3 {args.width}->{args.width} convolution ({gflop:.2f} GFLOP); XLA vs torch "
        f"relative differences {', '.join(f'{a:.1e}' for a in agree)}"
    )
    for p in conv["xla"]:
        a, b = conv["xla"][p], conv["torch"][p]
        print(
            f"{p:22s} XLA {a * 1e3:7.1f} ms ({gflop / a:5.1f} GFLOP/s)   torch {b * 1e3:7.1f} ms "
            f"({gflop / b:5.1f} GFLOP/s)   XLA / torch time {a / b:5.2f}"
        )
    result = {
        "args": vars(args),
        "phases_s": phases,
        "conv_s": conv,
        "conv_gflop": gflop,
        "conv_agreement": dict(
            zip(["forward", "input gradient", "weight gradient"], agree, strict=True)
        ),
        "load_before": load_before,
        "load_after": load_after,
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "jax": jax.__version__,
            "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "xla_flags": os.environ.get("XLA_FLAGS", ""),
        },
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main(parse_args())
