"""The experiment runner: YAML configs, a jit-compiled optax training loop with checkpoints and
bit-exact resumption, vmapped sweeps, data parallelism over a device mesh, and the command line
every study script shares.

The numerics of l1jax (losses, prox, optim, solvers, image, sr) never import this package.
Modules, by concern:

* :mod:`~l1jax.runner.schema` and :mod:`~l1jax.runner.config`: the config shapes, loading,
  ``extends:`` and ``--set``; :mod:`~l1jax.runner.checks`: the runner's value checks;
* :mod:`~l1jax.runner.registry`: the tables a config names pieces from;
  :mod:`~l1jax.runner.schedules` and :mod:`~l1jax.runner.optimizer`: schedules and optimizers;
* :mod:`~l1jax.runner.task`, :mod:`~l1jax.runner.program`, :mod:`~l1jax.runner.loop`: the task
  a study hands over, its compiled program and the training driver;
  :mod:`~l1jax.runner.sweeps`, :mod:`~l1jax.runner.parallel`, :mod:`~l1jax.runner.checkpoint`;
* :mod:`~l1jax.runner.metrics` and :mod:`~l1jax.runner.progress`: what a run writes and prints;
* :mod:`~l1jax.runner.study`, :mod:`~l1jax.runner.workdir` and :mod:`~l1jax.runner.cli`: a
  study, its run directory and the command line.

See ``docs/runner.md``.
"""

from l1jax.runner import checkpoint as checkpoint
from l1jax.runner import parallel as parallel
from l1jax.runner import registry as registry
from l1jax.runner.cli import EXIT_CONFIG as EXIT_CONFIG
from l1jax.runner.cli import EXIT_INTERRUPTED as EXIT_INTERRUPTED
from l1jax.runner.cli import EXIT_NONFINITE as EXIT_NONFINITE
from l1jax.runner.cli import EXIT_OS as EXIT_OS
from l1jax.runner.cli import EXIT_TERMINATED as EXIT_TERMINATED
from l1jax.runner.cli import main as main
from l1jax.runner.config import MISSING as MISSING
from l1jax.runner.config import load_config as load_config
from l1jax.runner.errors import ConfigError as ConfigError
from l1jax.runner.errors import NonFiniteLossError as NonFiniteLossError
from l1jax.runner.errors import TrainingInterrupted as TrainingInterrupted
from l1jax.runner.loop import train as train
from l1jax.runner.metrics import RunData as RunData
from l1jax.runner.metrics import load_run as load_run
from l1jax.runner.optimizer import make_optimizer as make_optimizer
from l1jax.runner.optimizer import make_schedule as make_schedule
from l1jax.runner.schema import DistributedConfig as DistributedConfig
from l1jax.runner.schema import InitFrom as InitFrom
from l1jax.runner.schema import ParallelConfig as ParallelConfig
from l1jax.runner.schema import RunConfig as RunConfig
from l1jax.runner.schema import StudyConfig as StudyConfig
from l1jax.runner.schema import TrainConfig as TrainConfig
from l1jax.runner.study import Run as Run
from l1jax.runner.study import Study as Study
from l1jax.runner.study import load_study as load_study
from l1jax.runner.study import load_study_config as load_study_config
from l1jax.runner.sweeps import Grid as Grid
from l1jax.runner.sweeps import bind as bind
from l1jax.runner.sweeps import make_grid as make_grid
from l1jax.runner.task import Problem as Problem
from l1jax.runner.task import Task as Task
from l1jax.runner.task import TrainResult as TrainResult
from l1jax.runner.task import TrainState as TrainState

__all__ = [
    "Study",
    "Run",
    "main",
    "load_study",
    "load_study_config",
    "load_run",
    "RunData",
    "Task",
    "Problem",
    "TrainState",
    "TrainResult",
    "train",
    "StudyConfig",
    "RunConfig",
    "TrainConfig",
    "InitFrom",
    "ParallelConfig",
    "DistributedConfig",
    "MISSING",
    "load_config",
    "ConfigError",
    "NonFiniteLossError",
    "TrainingInterrupted",
    "make_optimizer",
    "make_schedule",
    "Grid",
    "make_grid",
    "bind",
    "EXIT_CONFIG",
    "EXIT_NONFINITE",
    "EXIT_OS",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "registry",
    "checkpoint",
    "parallel",
]
