"""Benchmark: jitted value_and_grad of each l1jax loss against a naive jnp formulation and a
memory floor, all measured in the same run.

    python scripts/bench_losses.py [--log2n 24] [--repeats 20] [--out results.json]

The floor is one fused pass that reads two arrays and writes one (``p - t``), the least memory
traffic that value_and_grad of a loss with respect to ``p`` can do. Ratios, not seconds, are the
result: the machines are shared, so only numbers measured side by side compare. Measurements of
l1jax and naive are interleaved so that drift in machine load hits both alike.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp

from l1jax import losses

TAU, DELTA, BETA, EPS, ALPHA = 0.3, 1.0, 1.0, 1e-3, 0.5


def _naive(r):
    a = jnp.abs(r)
    return {
        "l1": a,
        "mse": r * r,
        "huber": jnp.where(a <= DELTA, 0.5 * r * r, DELTA * (a - 0.5 * DELTA)),
        "smooth_l1": jnp.where(a < BETA, 0.5 * r * r / BETA, a - 0.5 * BETA),
        "pinball": jnp.maximum(TAU * -r, (TAU - 1) * -r),
        "charbonnier": jnp.sqrt(r * r + EPS * EPS),
        "log_cosh": jnp.log(jnp.cosh(r)),
        "l1_mse_mix": ALPHA * a + (1 - ALPHA) * r * r,
    }


HYPER = {
    "huber": {"delta": DELTA},
    "smooth_l1": {"beta": BETA},
    "pinball": {"tau": TAU},
    "charbonnier": {"eps": EPS},
    "l1_mse_mix": {"alpha": ALPHA},
}


def _time(fn, args, repeats):
    jax.block_until_ready(fn(*args))  # compile and warm up
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        out.append(time.perf_counter() - t0)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2n", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per loss")
    parser.add_argument("--out", default=None, help="write the table as JSON here")
    args = parser.parse_args()

    n = 2**args.log2n
    kp, kt = jax.random.split(jax.random.key(0))
    p = jax.random.normal(kp, (n,), jnp.float32)
    t = jax.random.normal(kt, (n,), jnp.float32)

    floor = jax.jit(lambda a, b: a - b)
    rows = []
    for name, loss in losses.LOSSES.items():
        hyper = HYPER.get(name, {})
        ours = jax.jit(jax.value_and_grad(lambda x, y, f=loss, h=hyper: f(x, y, **h)))
        naive = jax.jit(jax.value_and_grad(lambda x, y, k=name: jnp.mean(_naive(x - y)[k])))
        v_ours, _ = ours(p, t)
        v_naive, _ = naive(p, t)
        times = {"l1jax": [], "naive": [], "floor": []}
        for _ in range(args.rounds):
            for key, fn in (("l1jax", ours), ("naive", naive), ("floor", floor)):
                times[key] += _time(fn, (p, t), args.repeats)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append(
            {
                "loss": name,
                "l1jax_ms": 1e3 * med["l1jax"],
                "naive_ms": 1e3 * med["naive"],
                "floor_ms": 1e3 * med["floor"],
                "l1jax/naive": med["l1jax"] / med["naive"],
                "l1jax/floor": med["l1jax"] / med["floor"],
                "value_rel_diff": float(abs(v_ours - v_naive) / abs(v_naive)),
            }
        )

    device = jax.devices()[0]
    meta = {
        "n": n,
        "dtype": "float32",
        "backend": jax.default_backend(),
        "device": getattr(device, "device_kind", str(device)),
        "jax": jax.__version__,
        "machine": platform.processor() or platform.machine(),
        "repeats": args.repeats,
        "rounds": args.rounds,
    }
    print(
        f"value_and_grad, N=2^{args.log2n} float32 on {meta['backend']} ({meta['device']}), "
        f"median of {args.rounds}x{args.repeats}"
    )
    print(
        f"{'loss':<12} {'l1jax ms':>9} {'naive ms':>9} {'floor ms':>9} {'vs naive':>9} "
        f"{'vs floor':>9}"
    )
    for r in rows:
        print(
            f"{r['loss']:<12} {r['l1jax_ms']:9.2f} {r['naive_ms']:9.2f} {r['floor_ms']:9.2f} "
            f"{r['l1jax/naive']:9.3f} {r['l1jax/floor']:9.3f}"
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
