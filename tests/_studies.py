"""The repository's study scripts, loaded by name (``experiments/<name>.py``), and their smoke
runs, shared by the study tests."""

from __future__ import annotations

import contextlib
import io
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from l1jax import runner

ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> runner.Study:
    """The ``STUDY`` of ``experiments/<name>.py``."""
    return runner.load_study(ROOT / "experiments" / f"{name}.py")


def module(study: runner.Study) -> ModuleType:
    """The loaded script of ``study`` (its helpers, e.g. ``module(study).tail_slope``)."""
    return sys.modules[study.run.__module__]


def run(study: runner.Study, config: str | Path, workdir: Path) -> tuple[dict[str, Any], str]:
    """The study's command line on ``config`` into ``workdir``, which must exit 0; returns the
    run's ``summary.json`` and what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert runner.main(study, ["--config", str(config), "--workdir", str(workdir)]) == 0
    return json.loads((workdir / "summary.json").read_text()), out.getvalue()


def configs() -> list[Path]:
    """Every YAML file under ``configs/``; ``configs/<name>/`` holds the study ``name``'s."""
    root = ROOT / "configs"
    return sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")])
