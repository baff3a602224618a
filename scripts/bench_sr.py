"""Training-step throughput of the EDSR-style model: l1jax (equinox + optax) against PyTorch.

    .venv/bin/python scripts/bench_sr.py --out /tmp/bench_sr.json
    .venv/bin/python scripts/bench_sr.py --layouts      # also the CHW eqx.nn.Conv2d variant

One step = forward, L1 loss, backward and an Adam update on a fixed batch (16 LR patches of
48x48, x2, so 96x96 targets), identical architecture and parameter count in both frameworks.
The frameworks are measured in alternating rounds in one process, so background load on a shared
machine hits both alike; the reported figure per framework is the median over rounds and the
ratio is l1jax / PyTorch (> 1 means l1jax is faster). On a GPU the same command reports images
per second; PyTorch is timed only where it can use the same kind of device (a CPU-only torch
build is skipped on a GPU run rather than compared across devices).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--depth", type=int, default=8, help="residual blocks")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=48, help="LR patch side")
    p.add_argument("--steps", type=int, default=3, help="timed steps per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2, help="untimed steps after compiling")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    p.add_argument("--layouts", action="store_true", help="also time eqx.nn.Conv2d (CHW + vmap)")
    p.add_argument("--no-torch", action="store_true")
    p.add_argument("--xla-flags", default="", help="appended to XLA_FLAGS before JAX starts")
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


ARGS = parse_args() if __name__ == "__main__" else None
if ARGS is not None and ARGS.xla_flags:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " " + ARGS.xla_flags).strip()

import equinox as eqx  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

from l1jax import losses  # noqa: E402
from l1jax.sr import EDSR  # noqa: E402
from l1jax.sr._models import DIV2K_RGB_MEAN, _upsample_stages  # noqa: E402

LR = 1e-4


# ----------------------------------------------------------------------------- l1jax (NHWC)
def jax_step_fn(model, opt):
    @eqx.filter_jit
    def step(model, opt_state, lr, hr):
        def loss_fn(m):
            return losses.l1(m(lr), hr)

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step


# ------------------------------------------------------- equinox CHW variant (eqx.nn.Conv2d)
class _EDSRCHW(eqx.Module):
    """The same network with eqx.nn.Conv2d on (C, H, W) images, vmapped over the batch."""

    head: eqx.nn.Conv2d
    blocks: tuple
    body_tail: eqx.nn.Conv2d
    upsampler: tuple
    tail: eqx.nn.Conv2d
    stages: tuple = eqx.field(static=True)

    def __init__(self, scale, channels, width, depth, *, key):
        conv = lambda i, o, k: eqx.nn.Conv2d(i, o, 3, padding=1, key=k)  # noqa: E731
        keys = iter(jax.random.split(key, 2 * depth + 8))
        self.stages = _upsample_stages(scale)
        self.head = conv(channels, width, next(keys))
        self.blocks = tuple(
            (conv(width, width, next(keys)), conv(width, width, next(keys))) for _ in range(depth)
        )
        self.body_tail = conv(width, width, next(keys))
        self.upsampler = tuple(conv(width, width * r * r, next(keys)) for r in self.stages)
        self.tail = conv(width, channels, next(keys))

    def __call__(self, x):  # (C, h, w)
        mean = jnp.asarray(DIV2K_RGB_MEAN, x.dtype)[:, None, None]
        h = self.head(x - mean)
        y = h
        for c1, c2 in self.blocks:
            y = y + c2(jax.nn.relu(c1(y)))
        y = self.body_tail(y) + h
        for conv, r in zip(self.upsampler, self.stages, strict=True):
            y = conv(y)
            c, hh, ww = y.shape
            y = y.reshape(c // (r * r), r, r, hh, ww).transpose(0, 3, 1, 4, 2)
            y = y.reshape(c // (r * r), hh * r, ww * r)
        return self.tail(y) + mean


def jax_chw_step_fn(opt):
    @eqx.filter_jit
    def step(model, opt_state, lr, hr):  # lr, hr: (B, C, H, W)
        def loss_fn(m):
            return losses.l1(jax.vmap(m)(lr), hr)

        loss, grads = eqx.filter_value_and_grad(loss_fn)(model)
        updates, opt_state = opt.update(grads, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    return step


# ------------------------------------------------------------------------------- PyTorch
def torch_edsr(scale, channels, width, depth):
    import torch
    from torch import nn

    class ResBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(width, width, 3, padding=1)
            self.c2 = nn.Conv2d(width, width, 3, padding=1)

        def forward(self, x):
            return x + self.c2(torch.relu(self.c1(x)))

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("mean", torch.tensor(DIV2K_RGB_MEAN).view(1, 3, 1, 1))
            self.head = nn.Conv2d(channels, width, 3, padding=1)
            self.body = nn.Sequential(*[ResBlock() for _ in range(depth)])
            self.body_tail = nn.Conv2d(width, width, 3, padding=1)
            up = []
            for r in _upsample_stages(scale):
                up += [nn.Conv2d(width, width * r * r, 3, padding=1), nn.PixelShuffle(r)]
            self.up = nn.Sequential(*up)
            self.tail = nn.Conv2d(width, channels, 3, padding=1)

        def forward(self, x):
            h = self.head(x - self.mean)
            y = self.body_tail(self.body(h)) + h
            return self.tail(self.up(y)) + self.mean

    return Net()


def torch_runner(args, lr_np, hr_np, channels_last, device):
    import torch

    torch.manual_seed(0)
    net = torch_edsr(args.scale, 3, args.width, args.depth).to(device)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    lr = torch.from_numpy(lr_np).permute(0, 3, 1, 2).contiguous(memory_format=fmt).to(device)
    hr = torch.from_numpy(hr_np).permute(0, 3, 1, 2).contiguous(memory_format=fmt).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=LR)
    loss_fn = torch.nn.L1Loss()
    sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

    def run(n):
        for _ in range(n):
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(net(lr), hr)
            loss.backward()
            opt.step()
        sync()
        return float(loss.detach())

    n_params = sum(p.numel() for p in net.parameters())
    return run, n_params


def jax_runner(args, lr_np, hr_np, layout):
    key = jax.random.key(0)
    opt = optax.adam(LR)
    if layout == "nhwc":
        model = EDSR(args.scale, 3, args.width, args.depth, key=key)
        step = jax_step_fn(model, opt)
        lr, hr = jnp.asarray(lr_np), jnp.asarray(hr_np)
    else:
        model = _EDSRCHW(args.scale, 3, args.width, args.depth, key=key)
        step = jax_chw_step_fn(opt)
        lr = jnp.asarray(lr_np.transpose(0, 3, 1, 2))
        hr = jnp.asarray(hr_np.transpose(0, 3, 1, 2))
    opt_state = opt.init(eqx.filter(model, eqx.is_array))
    state = [model, opt_state]

    def run(n):
        loss = None
        for _ in range(n):
            state[0], state[1], loss = step(state[0], state[1], lr, hr)
        return float(jax.block_until_ready(loss))

    n_params = sum(x.size for x in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))
    return run, n_params


def machine_info():
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "jax_backend": jax.default_backend(),
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
    try:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    except ImportError:
        pass
    return info


def main(args):
    rng = np.random.default_rng(0)
    size = args.patch
    lr_np = rng.random((args.batch, size, size, 3), dtype=np.float32)
    hr_np = rng.random((args.batch, size * args.scale, size * args.scale, 3), dtype=np.float32)

    backend = jax.default_backend()
    runners = {}
    t0 = time.perf_counter()
    runners["l1jax NHWC"] = jax_runner(args, lr_np, hr_np, "nhwc")
    if args.layouts:
        runners["l1jax CHW (eqx.nn.Conv2d)"] = jax_runner(args, lr_np, hr_np, "chw")
    skipped = None
    if not args.no_torch:
        try:
            import torch

            torch.set_num_threads(args.threads)
            device = "cuda" if torch.cuda.is_available() else "cpu"
            if backend != "cpu" and device == "cpu":
                skipped = f"torch {torch.__version__} has no GPU here; not compared across devices"
            else:
                runners["PyTorch NCHW"] = torch_runner(args, lr_np, hr_np, False, device)
                runners["PyTorch channels_last"] = torch_runner(args, lr_np, hr_np, True, device)
        except ImportError:
            skipped = "torch is not installed"
    if skipped:
        print(f"PyTorch skipped: {skipped}")

    params = {name: r[1] for name, r in runners.items()}
    compile_s = {}
    for name, (run, _) in runners.items():
        t = time.perf_counter()
        run(1)  # compile (jax) / allocator warm-up (torch)
        compile_s[name] = time.perf_counter() - t
        run(args.warmup)
    print(f"set-up + first steps: {time.perf_counter() - t0:.1f}s")

    names = list(runners)
    per_round = {n: [] for n in names}
    for rnd in range(args.rounds):
        # Alternate the order each round so neither framework always runs first.
        order = names if rnd % 2 == 0 else names[::-1]
        for name in order:
            t = time.perf_counter()
            runners[name][0](args.steps)
            per_round[name].append(args.steps / (time.perf_counter() - t))

    base = "PyTorch NCHW" if "PyTorch NCHW" in per_round else None
    rows = []
    for name in names:
        sps = statistics.median(per_round[name])
        rows.append(
            {
                "impl": name,
                "steps_per_s": sps,
                "images_per_s": sps * args.batch,
                "ms_per_step": 1e3 / sps,
                "min_steps_per_s": min(per_round[name]),
                "max_steps_per_s": max(per_round[name]),
                "first_call_s": compile_s[name],
                "params": int(params[name]),
            }
        )
    if base:
        ref = statistics.median(per_round[base])
        best_torch = max(statistics.median(per_round[n]) for n in names if "PyTorch" in n)
        for row in rows:
            row["vs_torch_nchw"] = row["steps_per_s"] / ref
            row["vs_best_torch"] = row["steps_per_s"] / best_torch

    cfg = {k: getattr(args, k) for k in ("width", "depth", "scale", "batch", "patch", "steps")}
    cfg["rounds"] = args.rounds
    print(
        f"\nEDSR width={args.width} blocks={args.depth} x{args.scale}, batch {args.batch} of "
        f"{args.patch}x{args.patch} LR, L1 + Adam; backend={backend}; median of {args.rounds} "
        f"alternating rounds x {args.steps} steps"
    )
    head = f"{'impl':<28}{'steps/s':>9}{'img/s':>9}{'ms/step':>10}{'first call s':>14}"
    head += f"{'vs torch NCHW':>15}{'vs best torch':>15}" if base else ""
    print(head)
    for r in rows:
        line = (
            f"{r['impl']:<28}{r['steps_per_s']:>9.3f}{r['images_per_s']:>9.1f}"
            f"{r['ms_per_step']:>10.1f}{r['first_call_s']:>14.1f}"
        )
        if base:
            line += f"{r['vs_torch_nchw']:>15.2f}{r['vs_best_torch']:>15.2f}"
        print(line)
    result = {"config": cfg, "machine": machine_info(), "results": rows, "torch_skipped": skipped}
    if args.out:
        with open(args.out, "w") as f:
            json.dump(result, f, indent=2)
        print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main(ARGS)
