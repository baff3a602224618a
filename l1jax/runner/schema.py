"""The config shapes every study shares: :class:`StudyConfig` for all of them, :class:`RunConfig`
for the studies that train through :func:`l1jax.runner.train`.

A study's own schema is a dataclass that extends one of the two; see :mod:`l1jax.runner.config`.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from omegaconf import MISSING

__all__ = [
    "TrainConfig",
    "InitFrom",
    "ParallelConfig",
    "DistributedConfig",
    "StudyConfig",
    "RunConfig",
]


@dataclasses.dataclass
class InitFrom:
    """A warm start: a fresh run begins from a checkpoint of another run (``train.init_from``).

    Used only when the run has no checkpoint of its own; a resumed run continues from its own.
    The checkpoint's arrays must have the shapes this run's would (same model, optimizer and
    sweep grid for ``params_only: false``; same model and grid for ``params_only: true``).

    Examples:
      >>> import pathlib, tempfile
      >>> import jax.numpy as jnp
      >>> from l1jax import losses, runner
      >>> from l1jax.models import Linear
      >>> def init(cfg, key):  # y = 2 x on 16 points
      ...     x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      ...     return runner.Problem(params=Linear(1, key=key), data={"x": x, "y": 2 * x[:, 0]})
      >>> task = runner.Task(init=init, loss=lambda cfg, m, b, c, k: losses.l1(m(b["x"]), b["y"]))
      >>> cfg = runner.RunConfig(train=runner.TrainConfig(steps=3, progress=False))
      >>> with tempfile.TemporaryDirectory() as first:
      ...     _ = runner.train(task, cfg, workdir=first)  # a first phase: steps 1 to 3
      ...     warm = runner.InitFrom(path=first)  # its newest checkpoint, the whole state
      ...     longer = runner.bind(cfg, {"train.steps": 5, "train.init_from": warm})
      ...     second = runner.train(task, longer)  # steps 4 and 5
      >>> pathlib.Path(second.initialized_from).name, int(second.state.step)
      ('step_000000003.json', 5)
    """

    # A run's workdir (its checkpoints/<tag>/), one tag's checkpoint folder, or a checkpoint's
    # step_N.json; a relative path is taken from the current directory.
    path: str = MISSING
    # Which tag of a run's workdir; null: the workdir's only one.
    tag: str | None = None
    # Which checkpoint; null: the newest.
    step: int | None = None
    # false: continue the whole training state (parameters, optimizer state, EMA, step and PRNG
    # key) up to train.steps, as a second phase of one training; true: take the parameters
    # only, with a fresh optimizer from step 0 (fine-tuning).
    params_only: bool = False


@dataclasses.dataclass
class TrainConfig:
    """How :func:`l1jax.runner.train` runs the loop.

    Examples:
      >>> from l1jax import runner
      >>> tc = runner.TrainConfig(steps=200, batch_size=32, checkpoint_every=0)
      >>> tc.steps_per_call, tc.log_every, tc.loop, tc.init_from
      (100, 10, 'auto', None)
      >>> runner.RunConfig(train=tc).train.batch_size
      32
    """

    steps: int = 1000
    # None: every step uses the whole data set (full batch); else a uniform sample, with
    # replacement, of this many examples.
    batch_size: int | None = None
    # Steps run on the device per host call (a compiled loop): amortises dispatch for small models.
    steps_per_call: int = 100
    log_every: int = 10
    # 0: evaluate only at the end.
    eval_every: int = 0
    # 0: checkpoint only at the end (and on Ctrl-C).
    checkpoint_every: int = 1000
    keep_checkpoints: int = 2
    # Clip the gradient to this global norm before the optimizer; None: no clipping.
    clip_norm: float | None = None
    # Keep an exponential moving average of the parameters with this decay; None: no EMA.
    ema_decay: float | None = None
    # Show progress (never under pytest): a tqdm bar when stdout and stderr are terminals, else
    # plain lines on stdout (step, loss, steps/s, elapsed, ETA) every progress_every seconds.
    progress: bool = True
    progress_every: float = 30.0
    # How a host call runs its steps: "device" (one compiled lax.while_loop), "host" (one
    # compiled step per Python iteration) or "auto": "host" on a CPU when the step has a
    # convolution, whose gradient XLA:CPU computes 10-100x slower inside a loop body (jax
    # issue #12868), else "device".
    loop: str = "auto"
    # How a sweep's grid points run: "vmap" (one vectorised program), "unroll" (one after
    # another within the same compiled program) or "auto": "unroll" on a CPU when the step has
    # a convolution (XLA:CPU runs a vmapped convolution, a grouped one, several times slower
    # than the points one by one), else "vmap".
    sweep_mode: str = "auto"
    # Warm start from another run's checkpoint (see InitFrom); null: from the task's init.
    init_from: InitFrom | None = None


@dataclasses.dataclass
class ParallelConfig:
    """Data parallelism: a 1-D mesh whose ``batch`` axis splits the examples.

    Examples:
      >>> from l1jax import runner
      >>> cfg = runner.RunConfig(parallel=runner.ParallelConfig(num_devices=1))
      >>> mesh = runner.parallel.make_mesh(cfg.parallel.num_devices)  # the mesh train uses
      >>> dict(mesh.shape)
      {'batch': 1}
    """

    # None: every visible device (all hosts' devices when distributed).
    num_devices: int | None = None


@dataclasses.dataclass
class DistributedConfig:
    """Multi-host set-up, passed to :func:`jax.distributed.initialize` when ``enabled``.

    Leave the three fields null on a cluster that JAX auto-detects (Slurm, Cloud TPU, ...).

    Examples:
      >>> from l1jax import runner
      >>> from l1jax.runner.checks import check_config
      >>> cluster = runner.DistributedConfig(
      ...     enabled=True, coordinator_address="host0:1234", num_processes=2, process_id=0
      ... )
      >>> check_config(runner.StudyConfig(distributed=cluster))  # a whole cluster: fine
      >>> half = runner.DistributedConfig(enabled=True, coordinator_address="host0:1234")
      >>> check_config(runner.StudyConfig(distributed=half))
      Traceback (most recent call last):
      ...
      l1jax.runner.errors.ConfigError: distributed.num_processes: set all three of ...
    """

    enabled: bool = False
    coordinator_address: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


@dataclasses.dataclass
class StudyConfig:
    """The sections every study config has: a study that does not train through the runner
    (it calls solvers, or its own compiled program) subclasses this, so that a ``--set
    train.steps=5`` it would ignore is an unknown key.

    Examples:
      >>> import dataclasses
      >>> from l1jax import runner
      >>> @dataclasses.dataclass
      ... class SolveConfig(runner.StudyConfig):  # a study that calls solvers, trains nothing
      ...     lam: float = 0.1
      >>> cfg = SolveConfig(seed=3)
      >>> cfg.seed, cfg.smoke, cfg.parallel.num_devices, cfg.lam
      (3, False, None, 0.1)
      >>> hasattr(cfg, "train")  # so --set train.steps=5 on it is an unknown key
      False
    """

    seed: int = 0
    # A study's small profile (its Study.smoke overrides apply when true).
    smoke: bool = False
    parallel: ParallelConfig = dataclasses.field(default_factory=ParallelConfig)
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)


@dataclasses.dataclass
class RunConfig(StudyConfig):
    """A training study's sections: :class:`StudyConfig`'s, and what :func:`l1jax.runner.train`
    reads (optimizer, schedule, train, sweep); a training study's schema subclasses it.

    Examples:
      >>> from l1jax import runner
      >>> cfg = runner.RunConfig()
      >>> cfg.optimizer, cfg.schedule, cfg.train.steps, cfg.sweep
      ({'name': 'adam', 'learning_rate': 0.001}, {'name': 'constant'}, 1000, {})
      >>> runner.RunConfig(sweep={"seed": [0, 1]}).sweep  # two trainings, one vmapped program
      {'seed': [0, 1]}
    """

    # {name: <optax or l1jax optimizer>, learning_rate: ..., <its keywords>}.
    optimizer: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"name": "adam", "learning_rate": 1e-3}
    )
    # Learning-rate multiplier: {name: constant|inv_sqrt|inv|cosine|step, warmup_steps: 0, ...}.
    schedule: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "constant"})
    train: TrainConfig = dataclasses.field(default_factory=TrainConfig)
    # {dotted.key: [values]}: train the grid of all combinations as one vmapped program.
    sweep: dict[str, Any] = dataclasses.field(default_factory=dict)
