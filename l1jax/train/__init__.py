"""The training runner: a jit-compiled optax loop with checkpoints, resumption, NaN handling,
data parallelism over a device mesh and vmapped hyperparameter sweeps.

See ``docs/runner.md`` for how a study script uses it.
"""

from l1jax.train._loop import MetricsLog as MetricsLog
from l1jax.train._loop import NonFiniteLossError as NonFiniteLossError
from l1jax.train._loop import Problem as Problem
from l1jax.train._loop import Task as Task
from l1jax.train._loop import TrainingInterrupted as TrainingInterrupted
from l1jax.train._loop import TrainResult as TrainResult
from l1jax.train._loop import TrainState as TrainState
from l1jax.train._loop import check_config as check_config
from l1jax.train._loop import make_optimizer as make_optimizer
from l1jax.train._loop import train as train
from l1jax.train._schedules import make_schedule as make_schedule
from l1jax.train._sweep import Grid as Grid
from l1jax.train._sweep import bind as bind
from l1jax.train._sweep import get_path as get_path
from l1jax.train._sweep import make_grid as make_grid

__all__ = [
    "Grid",
    "MetricsLog",
    "NonFiniteLossError",
    "Problem",
    "Task",
    "TrainResult",
    "TrainState",
    "TrainingInterrupted",
    "bind",
    "check_config",
    "get_path",
    "make_grid",
    "make_optimizer",
    "make_schedule",
    "train",
]
