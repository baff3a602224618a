"""How the runner's execution modes train a convolutional network: ``train.loop`` x
``train.sweep_mode``, against the bare jitted step of one model as the baseline.

    .venv/bin/python scripts/bench_train_loop.py --out /tmp/bench_train_loop.json

The task is the super-resolution study's network (residual SRCNN, 9-5-5 kernels, 64-32
channels, x2) trained with L2 and Adam on a fixed batch of 16 LR patches of 24x24 (48x48 HR),
for ``--seeds`` seeds as a sweep. Every mode runs through ``l1jax.runner.train`` exactly as a study
does; its throughput is ``TrainResult.steps_per_second`` (compilation excluded), in seed-steps
per second. The baseline is one ``eqx.filter_jit`` step of a single model called from Python,
times the number of seeds. Ratio = mode / baseline: 1.0 means the runner adds nothing. The
modes are measured in alternating rounds so that load on a shared machine hits all alike; the
figure is the median over rounds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from l1jax import sr
from l1jax.runner import Problem, RunConfig, Task, TrainConfig, train

MODES = (("device", "vmap"), ("device", "unroll"), ("host", "vmap"), ("host", "unroll"))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--width", type=int, default=64)
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--patch", type=int, default=24, help="LR patch side")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=4, help="timed steps per mode and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", default=None, help="write the results as JSON here")
    return p.parse_args(argv)


@dataclasses.dataclass
class BenchConfig(RunConfig):
    width: int = 64
    batch: int = 16
    patch: int = 24


def _model(cfg, key):
    return sr.SRCNN(2, width=cfg.width, depth=3, key=key)


def _batch(cfg):
    rng = np.random.default_rng(0)
    lr = rng.random((cfg.batch, cfg.patch, cfg.patch, 3), dtype=np.float32)
    hr = rng.random((cfg.batch, 2 * cfg.patch, 2 * cfg.patch, 3), dtype=np.float32)
    return jnp.asarray(lr), jnp.asarray(hr)


def _init(cfg, key):
    lr, hr = _batch(cfg)
    return Problem(params=_model(cfg, key), data=None, consts={"lr": lr, "hr": hr})


def _loss(cfg, model, batch, consts, key):
    return jnp.mean((model(consts["lr"]) - consts["hr"]) ** 2)


TASK = Task(init=_init, loss=_loss)


def mode_runner(args, loop, sweep_mode):
    # Every call trains `steps` more steps than the last from scratch; the compiled program is
    # shared between calls (same config text, one program), so only the first call compiles.
    def run():
        cfg = BenchConfig(
            width=args.width,
            batch=args.batch,
            patch=args.patch,
            optimizer={"name": "adam", "learning_rate": 1e-4},
            train=TrainConfig(
                steps=2 * args.steps,
                steps_per_call=args.steps,
                log_every=1,
                checkpoint_every=0,
                loop=loop,
                sweep_mode=sweep_mode,
            ),
            sweep={"seed": list(range(args.seeds))},
        )
        result = train(TASK, cfg, progress=False)
        assert (result.loop, result.sweep_mode) == (loop, sweep_mode)
        return result.steps_per_second * args.seeds

    return run


def baseline_runner(args):
    cfg = BenchConfig(width=args.width, batch=args.batch, patch=args.patch)
    model = _model(cfg, jax.random.key(0))
    lr, hr = _batch(cfg)
    opt = optax.adam(1e-4)
    state = [model, opt.init(eqx.filter(model, eqx.is_array))]

    @eqx.filter_jit
    def step(model, opt_state):
        loss, g = eqx.filter_value_and_grad(lambda m: jnp.mean((m(lr) - hr) ** 2))(model)
        updates, opt_state = opt.update(g, opt_state, eqx.filter(model, eqx.is_array))
        return eqx.apply_updates(model, updates), opt_state, loss

    jax.block_until_ready(step(*state))

    def run():
        t0 = time.perf_counter()
        for _ in range(args.steps):
            state[0], state[1], loss = step(*state)
        jax.block_until_ready(loss)
        return args.steps / (time.perf_counter() - t0)

    return run


def main(args):
    runners = {"bare jitted step (baseline)": baseline_runner(args)}
    for loop, mode in MODES:
        runners[f"train(loop={loop}, sweep_mode={mode})"] = mode_runner(args, loop, mode)
    rates: dict[str, list[float]] = {k: [] for k in runners}
    for r in range(args.rounds):
        for name, run in runners.items():
            rates[name].append(run())
            print(f"round {r}: {name}: {rates[name][-1]:.3f} seed-steps/s", flush=True)
    base = statistics.median(rates["bare jitted step (baseline)"])
    rows = {
        k: {
            "seed_steps_per_s": statistics.median(v),
            "ratio": statistics.median(v) / base,
            "rounds": v,
        }
        for k, v in rates.items()
    }
    print(f"\n{'mode':<42} {'seed-steps/s':>12} {'ratio':>7}")
    for k, v in rows.items():
        print(f"{k:<42} {v['seed_steps_per_s']:>12.3f} {v['ratio']:>7.3f}")
    info = {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "jax": jax.__version__,
        "backend": jax.default_backend(),
        "args": vars(args),
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"machine": info, "results": rows}, f, indent=2)
    return rows


if __name__ == "__main__":
    main(parse_args())
