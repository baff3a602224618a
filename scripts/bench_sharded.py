"""Benchmark l1jax.solvers.lad on rows sharded over 8 CPU devices against one device.

  .venv/bin/python scripts/bench_sharded.py --n 1000000 --d 20

X (n x d, an intercept column and N(0, 1) features) and y = X beta + Laplace noise with 5% gross
outliers are split by rows over a ``Mesh`` of 8 host devices (``--devices``) with
``NamedSharding(mesh, P("rows", None))``; ``lad`` (``--method``, by default ``auto``) then
runs as one SPMD program in which XLA inserts the reductions' collectives. Reported: compile and
solve time (after the compile, best of ``--repeats``), the compiled program's memory per device
(``compiled.memory_analysis()``), the bytes of X each device holds, whether the program
all-gathers the n x d design, and the agreement with the same solve on one device. On a CPU the
8 "devices" share the machine's cores, so this measures correctness and memory layout, not a
speed-up. Writes ``--out`` (JSON) and the markdown table next to it.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import time

parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
parser.add_argument("--n", type=int, default=1_000_000)
parser.add_argument("--d", type=int, default=20)
parser.add_argument("--devices", type=int, default=8)
parser.add_argument("--dtype", choices=["float64", "float32"], default="float64")
parser.add_argument("--method", default="auto", help="lad's method (auto: pfn from n = 2e4 rows)")
parser.add_argument("--repeats", type=int, default=1)
parser.add_argument("--skip-single", action="store_true", help="no 1-device solve to compare")
parser.add_argument("--out", default="docs/results/bench_sharded.json")
args = parser.parse_args()

os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

import jax  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import Mesh, NamedSharding  # noqa: E402
from jax.sharding import PartitionSpec as P  # noqa: E402

jax.config.update("jax_enable_x64", args.dtype == "float64")

from l1jax import solvers  # noqa: E402


def loadavg():
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def make_data(n, d, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = np.empty((n, d), dtype)
    X[:, 0] = 1
    X[:, 1:] = rng.standard_normal((n, d - 1), dtype=np.float32 if dtype == "float32" else None)
    y = X @ rng.standard_normal(d).astype(dtype) + rng.laplace(size=n).astype(dtype)
    out = rng.random(n) < 0.05
    y[out] += (50 * rng.standard_normal(int(out.sum()))).astype(dtype)
    return X, y


def big_gathers(text, size):
    found = []
    for m in re.finditer(r"= [a-z0-9]+\[([0-9,]*)\]\{[0-9,]*\} all-gather\(", text):
        shape = [int(s) for s in m.group(1).split(",") if s]
        if np.prod(shape) >= size:
            found.append(shape)
    return found


def run(X, y):
    """Compiles ``lad`` for these arrays' shardings and solves; timings in seconds."""
    fn = jax.jit(functools.partial(solvers.lad, method=args.method))
    t = time.perf_counter()
    compiled = fn.lower(X, y).compile()
    t_compile = time.perf_counter() - t
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        res = compiled(X, y)
        jax.block_until_ready(res)
        times.append(time.perf_counter() - t)
    mem = compiled.memory_analysis()
    memory = {
        k: int(getattr(mem, k))
        for k in ("argument_size_in_bytes", "output_size_in_bytes", "temp_size_in_bytes")
    }
    return res, t_compile, min(times), memory, compiled.as_text()


def main():
    n, d = args.n, args.d
    n -= n % args.devices
    load_before = loadavg()
    X, y = make_data(n, d, args.dtype)
    mesh = Mesh(np.array(jax.devices()[: args.devices]), ("rows",))
    Xs = jax.device_put(X, NamedSharding(mesh, P("rows", None)))
    ys = jax.device_put(y, NamedSharding(mesh, P("rows")))
    res, t_compile, t_solve, memory, text = run(Xs, ys)
    shard_bytes = sorted({s.data.nbytes for s in Xs.addressable_shards})
    sharded = {
        "devices": args.devices,
        "compile_s": round(t_compile, 2),
        "solve_s": round(t_solve, 2),
        "memory_per_device": memory,
        "x_bytes_per_device": shard_bytes,
        "x_bytes_total": int(X.nbytes),
        "all_gathers_of_x": big_gathers(text, n * d),
        "objective": float(res.objective),
        "converged": bool(res.converged),
        "gap": float(res.gap),
        "num_steps": int(res.num_steps),
    }
    del Xs, ys
    single = None
    if not args.skip_single:
        dev = jax.devices()[0]
        one, t_compile1, t_solve1, memory1, _ = run(jax.device_put(X, dev), jax.device_put(y, dev))
        coef_s, coef_1 = np.asarray(res.coef), np.asarray(one.coef)
        single = {
            "compile_s": round(t_compile1, 2),
            "solve_s": round(t_solve1, 2),
            "memory": memory1,
            "objective": float(one.objective),
            "converged": bool(one.converged),
            "gap": float(one.gap),
            "num_steps": int(one.num_steps),
            "coef_max_rel_diff": float(
                np.max(np.abs(coef_s - coef_1)) / max(np.max(np.abs(coef_1)), 1e-300)
            ),
            "objective_rel_diff": abs(float(res.objective) - float(one.objective))
            / abs(float(one.objective)),
        }
    out = {
        "n": n,
        "d": d,
        "dtype": args.dtype,
        "method": args.method,
        "machine": f"{cpu_name()}, {os.cpu_count()} cores (shared VM)",
        "jax": jax.__version__,
        "load_before": load_before,
        "load_after": loadavg(),
        "sharded": sharded,
        "single_device": single,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    with open(os.path.splitext(args.out)[0] + ".md", "w") as f:
        f.write(markdown(out))
    print(json.dumps(out, indent=2))


def markdown(o):
    s, one = o["sharded"], o["single_device"]
    mib = 2.0**20

    def mem(m):
        return " / ".join(
            f"{m[k] / mib:.1f}"
            for k in ("argument_size_in_bytes", "temp_size_in_bytes", "output_size_in_bytes")
        )

    lines = [
        "# Sharded LAD solve",
        "",
        f"`scripts/bench_sharded.py --n {o['n']} --d {o['d']} --dtype {o['dtype']} "
        f"--method {o['method']}`: `lad(method={o['method']!r})` with X "
        f"({o['n']} x {o['d']}, {o['dtype']}, "
        f"{s['x_bytes_total'] / mib:.0f} "
        "MiB) split by rows over "
        f"{s['devices']} host devices, against the same solve on one device.",
        "",
        f"Machine: {o['machine']}; jax {o['jax']}. Load average before {o['load_before']}, "
        f"after {o['load_after']}. The {s['devices']} CPU devices share the cores: the point is "
        "the layout and the agreement, not a speed-up.",
        "",
        "| run | compile s | solve s | steps | converged | gap | memory per device, MiB "
        "(arguments / temp / output) |",
        "|---|---|---|---|---|---|---|",
        f"| {s['devices']} devices | {s['compile_s']} | {s['solve_s']} | {s['num_steps']} | "
        f"{s['converged']} | {s['gap']:.1e} | {mem(s['memory_per_device'])} |",
    ]
    if one:
        lines.append(
            f"| 1 device | {one['compile_s']} | {one['solve_s']} | {one['num_steps']} | "
            f"{one['converged']} | {one['gap']:.1e} | {mem(one['memory'])} |"
        )
    lines += [
        "",
        f"X per device: {', '.join(f'{b / mib:.1f} MiB' for b in s['x_bytes_per_device'])} "
        f"(of {s['x_bytes_total'] / mib:.1f} MiB); all-gathers of the n x d design in the "
        f"compiled program: {len(s['all_gathers_of_x'])}.",
    ]
    if one:
        lines.append(
            f"Agreement with one device: coef max relative difference "
            f"{one['coef_max_rel_diff']:.1e}, objective relative difference "
            f"{one['objective_rel_diff']:.1e}."
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
