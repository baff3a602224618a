"""The runner's exceptions: what the command line turns into one line and an exit code."""

from __future__ import annotations

from pathlib import Path

__all__ = ["ConfigError", "NonFiniteLossError", "TrainingInterrupted"]


class ConfigError(ValueError):
    """A config problem, reported on one line: ``source: key: expected E, got G``.

    Attributes:
      source: the file (or ``--set key=value`` argument) the bad value came from.
      key: the dotted key.
      expected: what the schema wants there.
      given: what the config gave.

    Examples:
      >>> from l1jax import runner
      >>> error = runner.ConfigError(key="train.steps", expected="an int >= 0", given="-1")
      >>> print(error)
      train.steps: expected an int >= 0, got -1
      >>> print(error.with_source("smoke.yaml"))  # the CLI adds the file
      smoke.yaml: train.steps: expected an int >= 0, got -1
      >>> isinstance(error, ValueError)
      True
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        source: str | None = None,
        key: str | None = None,
        expected: str | None = None,
        given: str | None = None,
    ):
        self.source, self.key, self.expected, self.given = source, key, expected, given
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        parts = [p for p in (self.source, self.key) if p]
        if self.expected is not None or self.given is not None:
            body = f"expected {self.expected}, got {self.given}"
            if self.detail:
                body = f"{self.detail}: {body}"
        else:
            body = self.detail or "invalid config"
        return ": ".join([*parts, body])

    def with_source(self, source: str) -> ConfigError:
        """The same error attributed to ``source`` unless it already names one."""
        if self.source:
            return self
        return ConfigError(
            self.detail, source=source, key=self.key, expected=self.expected, given=self.given
        )


class NonFiniteLossError(FloatingPointError):
    """The loss (or gradient norm) became NaN or infinite; nothing after it was saved.

    Attributes:
      step: the first step whose loss or gradient norm was not finite.
      checkpoint_step: the step of the last good checkpoint (kept), or None.

    Examples:
      >>> import jax.numpy as jnp
      >>> from l1jax import losses, runner
      >>> from l1jax.models import Linear
      >>> def init(cfg, key):  # y = 2 x on 16 points
      ...     x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      ...     return runner.Problem(params=Linear(1, key=key), data={"x": x, "y": 2 * x[:, 0]})
      >>> def log_loss(cfg, model, batch, consts, key):  # log of -1 at the zero init: NaN
      ...     return jnp.mean(jnp.log(model(batch["x"]) - 1.0))
      >>> task = runner.Task(init=init, loss=log_loss)
      >>> cfg = runner.RunConfig(train=runner.TrainConfig(steps=3, progress=False))
      >>> try:
      ...     runner.train(task, cfg)
      ... except runner.NonFiniteLossError as e:
      ...     print(e.step, e.checkpoint_step)
      ...     print(e)
      1 None
      non-finite loss nan, gradient norm 1.0 at step 1; stopped without saving this state; ...
    """

    def __init__(self, message: str, *, step: int, checkpoint_step: int | None):
        super().__init__(message)
        self.step, self.checkpoint_step = step, checkpoint_step


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training; a checkpoint of the last completed step was saved.

    Attributes:
      step: the last completed step (the one checkpointed).
      checkpoint_dir: the folder of the checkpoint, or None (a training without a workdir).

    Examples:
      >>> import tempfile
      >>> import jax.numpy as jnp
      >>> from l1jax import losses, runner
      >>> from l1jax.models import Linear
      >>> def init(cfg, key):  # y = 2 x on 16 points
      ...     x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      ...     return runner.Problem(params=Linear(1, key=key), data={"x": x, "y": 2 * x[:, 0]})
      >>> task = runner.Task(init=init, loss=lambda cfg, m, b, c, k: losses.l1(m(b["x"]), b["y"]))
      >>> tc = runner.TrainConfig(steps=4, steps_per_call=2, log_every=1, progress=False)
      >>> cfg = runner.RunConfig(train=tc)
      >>> def stop(step, state):  # a hook, run after each host call: here Ctrl-C at step 2
      ...     raise KeyboardInterrupt
      >>> with tempfile.TemporaryDirectory() as workdir:
      ...     try:
      ...         runner.train(task, cfg, workdir=workdir, hooks=[stop])
      ...     except runner.TrainingInterrupted as e:
      ...         print(e.step, e.checkpoint_dir.name)
      ...     resumed = runner.train(task, cfg, workdir=workdir)  # on from the checkpoint
      2 main
      >>> resumed.resumed_from, int(resumed.state.step)
      (2, 4)
    """

    def __init__(self, message: str, *, step: int, checkpoint_dir: Path | None):
        super().__init__(message)
        self.step, self.checkpoint_dir = step, checkpoint_dir
