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
    """The loss (or gradient norm) became NaN or infinite; nothing after it was saved."""

    def __init__(self, message: str, *, step: int, checkpoint_step: int | None):
        super().__init__(message)
        self.step, self.checkpoint_step = step, checkpoint_step


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or SIGTERM) during training; a checkpoint of the last completed step was saved."""

    def __init__(self, message: str, *, step: int, checkpoint_dir: Path | None):
        super().__init__(message)
        self.step, self.checkpoint_dir = step, checkpoint_dir
