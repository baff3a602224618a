"""Progress while training: a tqdm bar on a terminal, plain lines in a log."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import Any

from l1jax.runner import parallel

__all__ = ["progress_mode", "ProgressLines"]


def progress_mode(requested: bool | None, cfg: Any) -> str | None:
    """ "bar" (tqdm on stderr) when stdout and stderr are terminals, "lines" (plain lines on
    stdout) otherwise, None for no progress (``train.progress`` off, under pytest, or not
    process 0); ``requested`` True/False forces the bar on or progress off."""
    if requested is not None:
        return "bar" if requested else None
    if (
        not cfg.train.progress
        or "PYTEST_CURRENT_TEST" in os.environ
        or not parallel.is_main_process()
    ):
        return None
    return "bar" if sys.stdout.isatty() and sys.stderr.isatty() else "lines"


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(round(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}"


class ProgressLines:
    """Plain progress lines on stdout, for logs (``nohup``, ``> log``): one after the first host
    call, then at most every ``train.progress_every`` seconds, and one at the end::

      l1: step 1200/2000 (60%)  loss 0.01234  812.0 steps/s  elapsed 0:00:04  eta 0:00:01
    """

    def __init__(self, tag: str, start: int, total: int, every: float):
        self.name, self.start, self.total, self.every = tag or "train", start, total, every
        self.t0 = time.perf_counter()
        self.last: float | None = None

    def update(self, step: int, loss: float, rate: float) -> None:
        now = time.perf_counter()
        if not (self.last is None or step >= self.total or now - self.last >= self.every):
            return
        self.last = now
        elapsed = now - self.t0
        if not rate > 0:
            done = step - self.start
            rate = done / elapsed if done > 0 and elapsed > 0 else float("nan")
        eta = (self.total - step) / rate if rate > 0 else float("nan")
        pct = 100 * step / self.total if self.total else 100.0
        print(
            f"{self.name}: step {step}/{self.total} ({pct:.0f}%)  loss {loss:.6g}  "
            f"{rate:.1f} steps/s  elapsed {_clock(elapsed)}  eta {_clock(eta)}",
            flush=True,
        )
