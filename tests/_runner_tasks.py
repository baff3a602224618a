"""A tiny regression task shared by the runner's tests (module level, so that runs with the
same config reuse one compiled program across tests)."""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from l1jax.models import Linear
from l1jax.runner import Problem, RunConfig, Task, TrainConfig
from l1jax.runner.registry import LOSSES

N, D = 32, 3
W_TRUE = np.array([1.0, -2.0, 0.5], np.float32)  # NumPy: importing must not start JAX
B_TRUE = 0.75


@dataclasses.dataclass
class TinyConfig(RunConfig):
    n: int = N
    loss: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "mse"})
    # Make the loss NaN once the bias exceeds this value (None: never).
    nan_above: float | None = None
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            steps=60, steps_per_call=16, log_every=10, checkpoint_every=20, eval_every=30
        )
    )


def make_data(key, n):
    # Drawn flat (the same bits as the (n, D) draw): vmapped over a sweep's seeds, a 2-D draw
    # is a 3-D generator, which XLA:CPU compiles several times slower than a 2-D one.
    x = jax.random.normal(key, (n * D,)).reshape(n, D)
    y = x @ W_TRUE + B_TRUE + 0.1 * jax.random.normal(jax.random.fold_in(key, 1), (n,))
    return x, y


def _init(cfg, key):
    k_data, k_model = jax.random.split(key)
    x, y = make_data(k_data, cfg.n)
    return Problem(params=Linear(D, key=k_model), data={"x": x, "y": y}, consts={"w": W_TRUE})


def _loss(cfg, model, batch, consts, key):
    loss = LOSSES.partial(cfg.loss)(model(batch["x"]), batch["y"])
    if cfg.nan_above is not None:
        loss = jnp.where(model.bias > cfg.nan_above, jnp.nan, loss)
    return loss, {"bias": model.bias}


def _evaluate(cfg, model, data, consts):
    return {
        "coef_error": jnp.linalg.norm(model.weight - consts["w"]),
        "train_loss": LOSSES.partial(cfg.loss)(model(data["x"]), data["y"]),
    }


TASK = Task(init=_init, loss=_loss, evaluate=_evaluate)


def config(**changes) -> TinyConfig:
    """The base config with dotted-key changes, e.g. ``config(**{"train.steps": 10})``."""
    cfg = TinyConfig(optimizer={"name": "adam", "learning_rate": 0.2}, schedule={"name": "cosine"})
    from l1jax.runner import bind

    return bind(cfg, changes)


def _run(cfg, run):
    result = run.train(TASK)
    return {"coef_error": float(result.evals["coef_error"])}


def study():
    """The tiny task as a study, for CLI tests (its runs are named ``tiny_runner_test``)."""
    from l1jax import runner

    return runner.Study(name="tiny_runner_test", schema=TinyConfig, run=_run)
