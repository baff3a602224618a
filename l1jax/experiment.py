"""The command line every study script shares, and the run directory it writes.

A study script declares its config schema and a ``run`` function, and hands both to
:func:`main`::

    STUDY = experiment.Study(name="robustness", schema=RobustnessConfig, run=run,
                             smoke={"train.steps": 200})

    if __name__ == "__main__":
        raise SystemExit(experiment.main(STUDY))

which gives ``python experiments/robustness.py --config configs/robustness/default.yaml
[--set a.b=value ...] [--workdir DIR] [--resume] [--overwrite]``. See ``docs/runner.md``.

Exit codes: 0 done; 2 bad config or command line (one line on stderr, no traceback);
3 non-finite loss; 130 interrupted (Ctrl-C; a checkpoint was saved).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from l1jax import parallel
from l1jax.checkpoint import atomic_write
from l1jax.config import ConfigError, diff, identity, load_config, to_yaml
from l1jax.registry import STUDIES, UnknownNameError
from l1jax.train import (
    MetricsLog,
    NonFiniteLossError,
    Task,
    TrainingInterrupted,
    TrainResult,
    check_config,
    train,
)

__all__ = [
    "Study",
    "Run",
    "register_study",
    "load_study",
    "load_study_config",
    "study_configs",
    "main",
    "EXIT_CONFIG",
    "EXIT_NONFINITE",
    "EXIT_INTERRUPTED",
]

EXIT_CONFIG = 2
EXIT_NONFINITE = 3
EXIT_INTERRUPTED = 130

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: its name (= its config folder), config schema and what a run does.

    Attributes:
      name: the study's name; its configs live in ``configs/<name>/`` and its script is
        ``experiments/<name>.py``.
      schema: the config dataclass (a subclass of :class:`l1jax.config.RunConfig`).
      run: ``run(cfg, run) -> summary`` does the work with a :class:`Run` and returns the final
        numbers (a JSON-serialisable mapping), which become ``summary.json``.
      smoke: dotted-key overrides applied when the config has ``smoke: true`` (the small
        profile the tests run; an explicit ``--set`` still wins).
      validate: optional ``validate(cfg)`` run before any work; raise
        :class:`~l1jax.config.ConfigError` (or ``ValueError``/``TypeError``/``LookupError``)
        naming the key.
    """

    name: str
    schema: type
    run: Callable[[Any, Run], Mapping[str, Any] | None]
    smoke: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    validate: Callable[[Any], None] | None = None

    def __post_init__(self):
        register_study(self)


def register_study(study: Study) -> Study:
    """Adds ``study`` to :data:`l1jax.registry.STUDIES` (re-registering replaces it)."""
    STUDIES.register(study.name, study, overwrite=True)
    return study


def _experiments_dirs() -> list[Path]:
    return [Path.cwd() / "experiments", REPO_ROOT / "experiments"]


def load_study(name: str) -> Study:
    """The registered study ``name``, importing ``experiments/<name>.py`` if needed."""
    if name in STUDIES:
        return STUDIES.get(name)
    for folder in _experiments_dirs():
        script = folder / f"{name}.py"
        if script.is_file():
            spec = importlib.util.spec_from_file_location(f"l1jax_study_{name}", script)
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            break
    return STUDIES.get(name)


def study_configs(root: str | Path | None = None) -> list[Path]:
    """Every YAML file under ``configs/`` (default: the repository's)."""
    root = Path(root) if root is not None else REPO_ROOT / "configs"
    return sorted([*root.rglob("*.yaml"), *root.rglob("*.yml")])


def _validate(study: Study, cfg: Any, source: str) -> None:
    try:
        check_config(cfg)
        if study.validate is not None:
            study.validate(cfg)
    except ConfigError as e:
        raise e.with_source(source) from None
    except (UnknownNameError, TypeError, ValueError) as e:
        raise ConfigError(str(e), source=source) from None


def load_study_config(
    path: str | Path, overrides: Sequence[str] = (), *, study: Study | None = None
) -> tuple[Study, Any]:
    """Loads and validates a config of the study named by its folder (``configs/<study>/``).

    Raises:
      ConfigError: anything wrong with the file, the overrides or the study's own checks.
    """
    path = Path(path)
    if study is None:
        try:
            study = load_study(path.parent.name)
        except UnknownNameError as e:
            raise ConfigError(
                f"the config's folder names no study ({e})", source=str(path)
            ) from None
    cfg = load_config(path, study.schema, overrides, smoke=study.smoke)
    _validate(study, cfg, str(path))
    return study, cfg


class Run:
    """One run's workdir and the helpers a study's ``run`` function uses.

    Attributes:
      study: the :class:`Study`.
      cfg: the loaded config.
      workdir: where everything goes.
      mesh: the device mesh training uses.
      is_main: whether this process writes files (process 0).
    """

    def __init__(self, study: Study, cfg: Any, workdir: Path, *, mesh=None):
        self.study, self.cfg, self.workdir = study, cfg, Path(workdir)
        self.mesh = mesh if mesh is not None else parallel.make_mesh(cfg.parallel.num_devices)
        self.is_main = parallel.is_main_process()
        self.metrics = MetricsLog(self.workdir / "metrics.jsonl")

    def train(
        self, task: Task, cfg: Any = None, *, tag: str = "", hooks: Sequence[Callable] = ()
    ) -> TrainResult:
        """:func:`l1jax.train.train` in this workdir (``checkpoints/<tag>/``), resuming if the
        tag has a checkpoint. ``cfg`` defaults to the run's config."""
        return train(task, self.cfg if cfg is None else cfg, workdir=self.workdir, tag=tag,
                     mesh=self.mesh, hooks=hooks)

    def log(self, record: Mapping[str, Any]) -> None:
        """Appends one line to ``metrics.jsonl``."""
        self.metrics.write([record])

    def path(self, name: str) -> Path:
        return self.workdir / name

    def write_json(self, name: str, obj: Any) -> Path:
        """Atomically writes ``obj`` as JSON to ``workdir/name`` (main process only)."""
        path = self.path(name)
        if self.is_main:
            atomic_write(path, json.dumps(obj, indent=2, sort_keys=False, default=_to_json) + "\n")
        return path

    def save_figure(self, fig: Any, name: str, *, dpi: int = 120) -> Path:
        """Saves a matplotlib figure as ``workdir/name`` (PNG) and closes it."""
        import matplotlib.pyplot as plt

        path = self.path(name)
        if self.is_main:
            tmp = path.with_name(f".{path.name}.tmp.png")
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
            tmp.replace(path)
        plt.close(fig)
        return path


def _to_json(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")


def _parser(study: Study) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=f"experiments/{study.name}.py",
        description=f"Run the {study.name!r} study.",
    )
    p.add_argument("--config", required=True, help=f"a YAML file under configs/{study.name}/")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config value (repeatable); values are YAML")
    p.add_argument("--workdir", help=f"default: runs/{study.name}/<config name>")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in the workdir (same config) from its checkpoints")
    p.add_argument("--overwrite", action="store_true",
                   help="delete the run in the workdir and start over")
    return p


def _default_workdir(study: Study, config: Path, cfg: Any) -> Path:
    name = config.stem
    if getattr(cfg, "smoke", False) and name != "smoke":
        name += "-smoke"
    return Path("runs") / study.name / name


def _prepare_workdir(workdir: Path, cfg: Any, args: argparse.Namespace) -> None:
    saved = workdir / "config.yaml"
    if not saved.exists():
        return
    if args.overwrite:
        shutil.rmtree(workdir)
        return
    state = "a finished run" if (workdir / "summary.json").exists() else "an unfinished run"
    if not args.resume:
        raise ConfigError(
            f"{workdir} already holds {state}; pass --resume to continue it with the same "
            f"config, --overwrite to delete it, or --workdir to use another directory"
        )
    changed = diff(identity(yaml.safe_load(saved.read_text())), identity(cfg))
    if changed:
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(changed.items())[:3])
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        raise ConfigError(
            f"cannot resume {workdir}: its config differs ({shown}{more}); use the same config, "
            f"--overwrite, or another --workdir"
        )


def _command(study: Study, args: argparse.Namespace, workdir: Path | None = None) -> str:
    argv0 = sys.argv[0] if sys.argv else ""
    script = argv0 if Path(argv0).name == f"{study.name}.py" else f"experiments/{study.name}.py"
    cmd = ["python", script, "--config", args.config]
    for item in args.overrides:
        cmd += ["--set", item]
    if workdir is not None:
        cmd += ["--workdir", str(workdir)]
    return shlex.join(cmd)


def main(study: Study | str, argv: Sequence[str] | None = None) -> int:
    """The CLI: load and check the config, prepare the workdir, run the study, write results.

    Returns:
      The exit code (0, 2 bad config, 3 non-finite loss, 130 interrupted).
    """
    if isinstance(study, str):
        study = load_study(study)
    args = _parser(study).parse_args(argv)
    err = sys.stderr
    try:
        _, cfg = load_study_config(args.config, args.overrides, study=study)
        if cfg.distributed.enabled:
            d = cfg.distributed
            parallel.initialize_distributed(
                coordinator_address=d.coordinator_address,
                num_processes=d.num_processes,
                process_id=d.process_id,
            )
        try:
            mesh = parallel.make_mesh(cfg.parallel.num_devices)
        except ValueError as e:
            raise ConfigError(str(e), source=args.config, key="parallel.num_devices") from None
        workdir = Path(args.workdir) if args.workdir else _default_workdir(
            study, Path(args.config), cfg
        )
        _prepare_workdir(workdir, cfg, args)
    except ConfigError as e:
        print(f"error: {e}", file=err)
        return EXIT_CONFIG

    t0 = time.time()
    run = Run(study, cfg, workdir, mesh=mesh)
    try:
        if run.is_main:
            workdir.mkdir(parents=True, exist_ok=True)
            command = _command(study, args)
            atomic_write(workdir / "config.yaml", f"# {command}\n{to_yaml(cfg)}")
        summary = dict(study.run(cfg, run) or {})
    except ConfigError as e:
        print(f"error: {e}", file=err)
        return EXIT_CONFIG
    except NonFiniteLossError as e:
        print(f"error: {e}", file=err)
        return EXIT_NONFINITE
    except KeyboardInterrupt as e:
        what = str(e) if isinstance(e, TrainingInterrupted) else "interrupted"
        print(f"{what}\nresume with: {_command(study, args, workdir)} --resume", file=err)
        return EXIT_INTERRUPTED
    import jax

    summary["run"] = {
        "study": study.name,
        "config": str(args.config),
        "overrides": list(args.overrides),
        "workdir": str(workdir),
        "seconds": round(time.time() - t0, 3),
        "devices": f"{jax.device_count()} x {jax.devices()[0].device_kind}",
        "jax": jax.__version__,
    }
    run.write_json("summary.json", summary)
    if run.is_main:
        print(f"results in {workdir}/ (summary.json, metrics.jsonl, config.yaml)")
    return 0
