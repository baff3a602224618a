"""The repository's study scripts, loaded by name (``experiments/<name>.py``)."""

from pathlib import Path

from l1jax import runner

ROOT = Path(__file__).resolve().parents[1]


def load(name: str) -> runner.Study:
    """The ``STUDY`` of ``experiments/<name>.py``."""
    return runner.load_study(ROOT / "experiments" / f"{name}.py")


def configs() -> list[Path]:
    """Every YAML file under ``configs/``; ``configs/<name>/`` holds the study ``name``'s."""
    root = ROOT / "configs"
    return sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")])
