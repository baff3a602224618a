"""The command line every study script shares, and the run directory it writes.

A study script declares its config schema and a ``run`` function, and hands both to
:func:`main`::

    STUDY = experiment.Study(name="robustness", schema=RobustnessConfig, run=run,
                             smoke={"train.steps": 200})

    if __name__ == "__main__":
        raise SystemExit(experiment.main(STUDY))

which gives ``python experiments/robustness.py --config configs/robustness/default.yaml
[--set a.b=value ...] [--workdir DIR] [--resume] [--overwrite]``. See ``docs/runner.md``.
:func:`load_run` reads a finished (or interrupted) run back: its config, summary and metrics.

Exit codes: 0 done; 2 bad config, command line or workdir (one line on stderr, no traceback;
``--debug`` shows it); 3 non-finite loss; 4 the workdir could not be written (a full disk, a
read-only directory); 130 interrupted by Ctrl-C and 143 by SIGTERM (a checkpoint was saved).
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import re
import shlex
import signal
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from l1jax import parallel
from l1jax.checkpoint import atomic_write
from l1jax.config import (
    ConfigError,
    diff,
    header_command,
    identity,
    load_config,
    read_yaml,
    to_yaml,
)
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

if TYPE_CHECKING:
    import pandas

__all__ = [
    "Study",
    "Run",
    "RunData",
    "load_run",
    "read_metrics",
    "metrics_frame",
    "register_study",
    "load_study",
    "load_study_config",
    "study_configs",
    "main",
    "EXIT_CONFIG",
    "EXIT_NONFINITE",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "EXIT_OS",
    "MANIFEST",
]

EXIT_CONFIG = 2
EXIT_NONFINITE = 3
EXIT_OS = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM

# The file in each workdir that lists what the runner wrote there (see `Manifest`).
MANIFEST = "manifest.json"

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
      headline: optional ``headline(summary) -> lines``: the few numbers the run is for, which
        the CLI prints at the end (before "results in ..."); the summary is the JSON one.
    """

    name: str
    schema: type
    run: Callable[[Any, Run], Mapping[str, Any] | None]
    smoke: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    validate: Callable[[Any], None] | None = None
    headline: Callable[[Mapping[str, Any]], Sequence[str]] | None = None

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
    except (LookupError, TypeError, ValueError) as e:
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

    def __init__(
        self, study: Study, cfg: Any, workdir: Path, *, mesh=None, manifest: Manifest | None = None
    ):
        self.study, self.cfg, self.workdir = study, cfg, Path(workdir)
        self.mesh = mesh if mesh is not None else parallel.make_mesh(cfg.parallel.num_devices)
        self.is_main = parallel.is_main_process()
        self.manifest = manifest if manifest is not None else Manifest(self.workdir, study.name)
        self.metrics = MetricsLog(self.workdir / "metrics.jsonl")

    def train(
        self, task: Task, cfg: Any = None, *, tag: str = "", hooks: Sequence[Callable] = ()
    ) -> TrainResult:
        """:func:`l1jax.train.train` in this workdir (``checkpoints/<tag>/``), resuming if the
        tag has a checkpoint. ``cfg`` defaults to the run's config."""
        self.path("metrics.jsonl")
        self.path("checkpoints")
        return train(
            task,
            self.cfg if cfg is None else cfg,
            workdir=self.workdir,
            tag=tag,
            mesh=self.mesh,
            hooks=hooks,
        )

    def log(self, record: Mapping[str, Any]) -> None:
        """Appends one line to ``metrics.jsonl``."""
        self.path("metrics.jsonl")
        self.metrics.write([record])

    def path(self, name: str) -> Path:
        """``workdir/name``, recorded as the runner's (``--overwrite`` may remove it).

        Raises:
          ValueError: ``name`` leaves the workdir (an absolute path, ``..``).
        """
        rel = Path(name)
        if rel.is_absolute() or ".." in rel.parts or not rel.parts:
            raise ValueError(f"Run.path: {name!r} is not a path inside the workdir")
        if self.is_main:
            self.manifest.add(rel.as_posix())
        return self.workdir / rel

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
            try:
                fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
                tmp.replace(path)
            except BaseException:
                tmp.unlink(missing_ok=True)
                plt.close(fig)
                raise
        plt.close(fig)
        return path


# --- reading runs back ----------------------------------------------------------------------

LEARNING_CURVE = "learning_curve.png"


class RunData(NamedTuple):
    """What :func:`load_run` returns.

    Attributes:
      config: the resolved config (``config.yaml``) as nested dicts and lists.
      summary: ``summary.json``, or None for a run that has not finished.
      metrics: ``metrics.jsonl`` as a pandas DataFrame, one row per line (see
        :func:`metrics_frame`).
    """

    config: dict[str, Any]
    summary: dict[str, Any] | None
    metrics: pandas.DataFrame


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """The lines of a ``metrics.jsonl`` as dicts; a line torn by a kill at the very end is
    skipped, as the runner does when it resumes.

    Raises:
      ValueError: a damaged line elsewhere, naming the file and the line number.
    """
    path = Path(path)
    text = path.read_text(errors="replace")
    lines = text.splitlines()
    out = []
    for i, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict):
                raise ValueError
        except ValueError:
            if i == len(lines) - 1 and not text.endswith("\n"):
                break
            raise ValueError(f"{path}:{i + 1}: not a JSON object") from None
        out.append(record)
    return out


def metrics_frame(records: Sequence[Mapping[str, Any]]) -> pandas.DataFrame:
    """``metrics.jsonl`` lines as a long-format table: one row per line, that is per (tag,
    step, sweep point) for training lines, with one column per metric.

    The columns are ``tag`` ("" for lines without one), ``step`` and, in a sweep, ``point``
    (the grid point's index) and one column per swept key (``seed``, ``data.fraction``: the
    line's ``coords``), then the metrics in the order they first appear; a metric a line does
    not have is NaN. ``frame.melt(id_vars=[...], var_name="metric")`` gives one row per metric.
    """
    pd = _pandas()
    rows, coord_keys = [], {}
    for r in records:
        coords = r.get("coords")
        row = {k: v for k, v in r.items() if k != "coords"}
        if isinstance(coords, Mapping):
            for k, v in coords.items():
                coord_keys.setdefault(k, None)
                row[k] = v
        rows.append(row)
    frame = pd.DataFrame(rows)
    if frame.empty:
        return pd.DataFrame({"tag": pd.Series([], dtype=object), "step": pd.Series([], "Int64")})
    frame["tag"] = frame["tag"].fillna("") if "tag" in frame else ""
    for col in ("step", "point"):
        if col in frame and frame[col].notna().all():
            frame[col] = frame[col].astype("int64")
        elif col in frame:
            frame[col] = frame[col].astype("Int64")
    first = [c for c in ("tag", "step", "point", *coord_keys) if c in frame]
    return frame[first + [c for c in frame.columns if c not in first]]


def load_run(workdir: str | Path) -> RunData:
    """Reads a run directory back: its resolved config, its summary and its metrics.

    Args:
      workdir: a directory a study's CLI (or :class:`Run`) wrote.

    Returns:
      A :class:`RunData`; ``metrics`` is :func:`metrics_frame` of ``metrics.jsonl`` (empty
      when the run wrote none).

    Raises:
      FileNotFoundError: ``workdir`` has no ``config.yaml``.
      ValueError: a damaged ``config.yaml``, ``summary.json`` or ``metrics.jsonl``.
    """
    workdir = Path(workdir)
    config_path = workdir / "config.yaml"
    if not config_path.is_file():
        raise FileNotFoundError(f"{workdir} holds no run: it has no config.yaml")
    config = read_yaml(config_path)
    if not isinstance(config, dict):
        raise ValueError(f"{config_path}: not a config (expected a mapping)")
    summary_path = workdir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else None
    metrics_path = workdir / "metrics.jsonl"
    records = read_metrics(metrics_path) if metrics_path.exists() else []
    return RunData(config=config, summary=summary, metrics=metrics_frame(records))


def _pandas():
    try:
        import pandas
    except ImportError as e:  # pragma: no cover - pandas is a declared dependency
        raise ImportError("load_run needs pandas: pip install pandas") from e
    return pandas


def _plot_learning_curves(run: Run) -> Path | None:
    """Saves ``learning_curve.png``: the training loss against the step, one curve per tag
    (the mean over a sweep's points, the band their min to max). Nothing without training."""
    path = run.workdir / "metrics.jsonl"
    if not run.is_main or not path.exists():
        return None
    frame = metrics_frame(read_metrics(path))
    if "loss" not in frame or "grad_norm" not in frame:
        return None
    train_rows = frame[frame["grad_norm"].notna() & frame["loss"].notna()]
    if train_rows.empty:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    positive = True
    for tag, rows in train_rows.groupby("tag", sort=False):
        by_step = rows.groupby("step")["loss"]
        mean, lo, hi = by_step.mean(), by_step.min(), by_step.max()
        positive &= bool((lo > 0).all())
        (line,) = ax.plot(mean.index, mean.values, label=tag or "train")
        if (hi > lo).any():
            ax.fill_between(
                mean.index, lo.values, hi.values, color=line.get_color(), alpha=0.2, lw=0
            )
    if positive:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel(
        "training loss" + (" (mean, band: min-max over the sweep)" if "point" in train_rows else "")
    )
    ax.set_title(f"{run.study.name}: learning curves")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    return run.save_figure(fig, LEARNING_CURVE)


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
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a config value (repeatable); values are YAML",
    )
    p.add_argument("--workdir", help=f"default: runs/{study.name}/<config name>")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in the workdir (same config) from its checkpoints",
    )
    p.add_argument(
        "--overwrite",
        action="store_true",
        help="delete what the runner wrote in the workdir and start over",
    )
    p.add_argument(
        "--debug",
        action="store_true",
        help="show the traceback of an error instead of its one-line message",
    )
    return p


def _default_workdir(study: Study, config: Path, cfg: Any) -> Path:
    name = config.stem
    if getattr(cfg, "smoke", False) and name != "smoke":
        name += "-smoke"
    return Path("runs") / study.name / name


_CHECKPOINT_FILE = re.compile(r"^(step_\d+\.(eqx|json)|\..+\.tmp)$")


class Manifest:
    """``workdir/manifest.json``: the study's name and every path the runner wrote there.

    ``--overwrite`` and the reuse of a run that failed before its first checkpoint remove these
    and nothing else. ``checkpoints`` is the runner's folder: inside it only checkpoint files
    (``step_N.eqx``/``.json`` and temporary files) count as the runner's.
    """

    def __init__(self, workdir: Path, study: str, paths: Sequence[str] = ()):
        self.workdir, self.study = Path(workdir), study
        self.paths: list[str] = list(dict.fromkeys([MANIFEST, *paths]))

    @classmethod
    def read(cls, workdir: Path) -> Manifest | None:
        """The workdir's manifest, None if it has none.

        Raises:
          ConfigError: the manifest is damaged.
        """
        path = Path(workdir) / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            study, paths = data["study"], data["paths"]
            if not isinstance(study, str) or not all(isinstance(p, str) for p in paths):
                raise TypeError
        except (OSError, ValueError, KeyError, TypeError):
            raise ConfigError(
                f"{path} is damaged; it lists what the runner wrote in {workdir}: remove the "
                f"run's files by hand, or use another --workdir"
            ) from None
        return cls(Path(workdir), study, paths)

    def add(self, rel: str) -> None:
        if rel not in self.paths:
            self.paths.append(rel)
            self.write()

    def write(self) -> None:
        atomic_write(
            self.workdir / MANIFEST,
            json.dumps({"study": self.study, "paths": self.paths}, indent=1) + "\n",
        )

    def _owns_file(self, rel: Path) -> bool:
        text = rel.as_posix()
        if text in self.paths:
            return True
        # atomic_write's temporary files and save_figure's.
        m = re.match(r"^(.*/)?\.(.+?)\.(tmp\.png|[^.]+\.tmp)$", text)
        if m and f"{m.group(1) or ''}{m.group(2)}" in self.paths:
            return True
        parts = rel.parts
        return (
            "checkpoints" in self.paths
            and len(parts) == 3
            and parts[0] == "checkpoints"
            and _CHECKPOINT_FILE.match(parts[2]) is not None
        )

    def classify(self) -> tuple[list[Path], list[Path], list[Path]]:
        """``(files, dirs, foreign)`` under the workdir: the runner's files, the runner's
        folders (deepest first) and everything else (a foreign folder is listed whole)."""
        files: list[Path] = []
        dirs: list[Path] = []
        foreign: list[Path] = []

        def walk(folder: Path, rel: Path) -> None:
            for entry in sorted(folder.iterdir()):
                r = rel / entry.name
                if entry.is_dir() and not entry.is_symlink():
                    # checkpoints/ and its tag folders; every other folder is the user's.
                    owned_dir = (
                        "checkpoints" in self.paths
                        and r.parts[0] == "checkpoints"
                        and (len(r.parts) <= 2)
                    )
                    if owned_dir:
                        walk(entry, r)
                        dirs.append(entry)
                    else:
                        foreign.append(entry)
                elif self._owns_file(r):
                    files.append(entry)
                else:
                    foreign.append(entry)

        walk(self.workdir, Path())
        return files, dirs, foreign

    def remove(self) -> None:
        """Deletes the runner's files, then its folders if they are empty; keeps the rest."""
        files, dirs, _ = self.classify()
        manifest = self.workdir / MANIFEST
        for f in files:
            if f != manifest:
                f.unlink(missing_ok=True)
        for d in dirs:
            if not any(d.iterdir()):
                d.rmdir()
        manifest.unlink(missing_ok=True)


def _listing(paths: Sequence[Path], workdir: Path, limit: int = 5) -> str:
    names = [p.relative_to(workdir).as_posix() + ("/" if p.is_dir() else "") for p in paths]
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _started(workdir: Path) -> bool:
    """Whether a run did work worth keeping: a summary or a checkpoint (damaged ones count)."""
    if (workdir / "summary.json").exists():
        return True
    ckpts = workdir / "checkpoints"
    return ckpts.is_dir() and any(
        ckpt.suffix == ".json" for tag in ckpts.iterdir() if tag.is_dir() for ckpt in tag.iterdir()
    )


_LEGACY_PATHS = ("config.yaml", "metrics.jsonl", "summary.json", "checkpoints")


def _legacy_manifest(workdir: Path, study: Study) -> Manifest | None:
    """A manifest for a run written before the runner kept one: its ``config.yaml`` is headed
    by this study's command and it has metrics, a summary or checkpoints. It claims only the
    files every run writes (plots and anything else stay the user's, so ``--overwrite`` lists
    them instead of deleting them)."""
    try:
        command = header_command(workdir / "config.yaml")
    except (OSError, UnicodeDecodeError):
        return None
    if not command or f"{study.name}.py" not in command:
        return None
    if not any((workdir / p).exists() for p in _LEGACY_PATHS[1:]):
        return None  # a config file alone is not a run
    return Manifest(workdir, study.name, [p for p in _LEGACY_PATHS if (workdir / p).exists()])


def _prepare_workdir(workdir: Path, study: Study, cfg: Any, args: argparse.Namespace) -> Manifest:
    """Checks that the run may use ``workdir`` and clears what must go; returns its manifest.

    Raises:
      ConfigError: the workdir is a file, holds files the runner did not write (or a run of
        another study), holds a run and neither ``--resume`` nor ``--overwrite`` was given, or
        ``--resume`` with another config or a damaged ``config.yaml``.
    """
    if workdir.exists() and not workdir.is_dir():
        raise ConfigError(f"--workdir {workdir} is a file, not a directory")
    if not parallel.is_main_process():
        # Process 0 alone decides and writes; the others would race with it on a shared disk.
        return Manifest(workdir, study.name)
    if not workdir.exists() or not any(workdir.iterdir()):
        return Manifest(workdir, study.name)
    manifest = Manifest.read(workdir) or _legacy_manifest(workdir, study)
    if manifest is None:
        entries = sorted(workdir.iterdir())
        raise ConfigError(
            f"--workdir {workdir} holds files the runner did not write "
            f"({_listing(entries, workdir)}); use an empty or new directory"
        )
    if manifest.study != study.name:
        raise ConfigError(
            f"--workdir {workdir} holds a run of the study {manifest.study!r}, not "
            f"{study.name!r}; use another directory"
        )
    _, _, foreign = manifest.classify()
    saved = workdir / "config.yaml"
    started = _started(workdir)
    if args.overwrite or not started:
        if foreign:
            why = (
                "--overwrite removes only what the runner wrote"
                if args.overwrite
                else ("its run stopped before its first checkpoint, but")
            )
            raise ConfigError(
                f"{why}: {workdir} also holds {_listing(foreign, workdir)}; move them away or "
                f"use another --workdir"
            )
        manifest.remove()
        return Manifest(workdir, study.name)
    state = "a finished run" if (workdir / "summary.json").exists() else "an unfinished run"
    if not args.resume:
        raise ConfigError(
            f"{workdir} already holds {state}; pass --resume to continue it with the same "
            f"config, --overwrite to delete it, or --workdir to use another directory"
        )
    try:
        old = read_yaml(saved)
        if not isinstance(old, dict):
            raise ConfigError("not a mapping")
    except ConfigError as e:
        raise ConfigError(
            f"cannot resume {workdir}: its config.yaml is missing or damaged "
            f"({e.detail or 'invalid'}); --overwrite starts over"
        ) from None
    changed = diff(identity(old), identity(cfg))
    if changed:
        shown = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in list(changed.items())[:3])
        more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
        raise ConfigError(
            f"cannot resume {workdir}: its config differs ({shown}{more}); use the same config, "
            f"--overwrite, or another --workdir"
        )
    return manifest


def _command(study: Study, args: argparse.Namespace, workdir: Path | None = None) -> str:
    argv0 = sys.argv[0] if sys.argv else ""
    script = argv0 if Path(argv0).name == f"{study.name}.py" else f"experiments/{study.name}.py"
    cmd = ["python", script, "--config", args.config]
    for item in args.overrides:
        cmd += ["--set", item]
    if workdir is not None:
        cmd += ["--workdir", str(workdir)]
    return shlex.join(cmd)


class _Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the signal arrives: training checkpoints as for Ctrl-C."""


def _on_sigterm(signum, frame):
    raise _Terminated


def _one_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0] if text else "") or type(e).__name__


def main(study: Study | str, argv: Sequence[str] | None = None) -> int:
    """The CLI: load and check the config, prepare the workdir, run the study, write results.

    SIGTERM is handled like Ctrl-C while it runs (in the main thread).

    Returns:
      The exit code (0, 2 bad config or workdir, 3 non-finite loss, 4 the workdir could not be
      written, 130 interrupted, 143 terminated).
    """
    if isinstance(study, str):
        study = load_study(study)
    args = _parser(study).parse_args(argv)
    previous = None
    try:
        previous = signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread
        pass
    try:
        return _main(study, args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _main(study: Study, args: argparse.Namespace) -> int:
    err = sys.stderr
    hint = "" if args.debug else " (--debug shows the traceback)"
    workdir: Path | None = None
    started = False
    try:
        _, cfg = load_study_config(args.config, args.overrides, study=study)
        if cfg.distributed.enabled:
            d = cfg.distributed
            try:
                parallel.initialize_distributed(
                    coordinator_address=d.coordinator_address,
                    num_processes=d.num_processes,
                    process_id=d.process_id,
                )
            except Exception as e:
                raise ConfigError(
                    f"jax.distributed.initialize failed ({_one_line(e)}); off a cluster JAX "
                    f"detects, set coordinator_address, num_processes and process_id",
                    source=args.config,
                    key="distributed.enabled",
                ) from e
        try:
            mesh = parallel.make_mesh(cfg.parallel.num_devices)
        except ValueError as e:
            raise ConfigError(str(e), source=args.config, key="parallel.num_devices") from None
        workdir = (
            Path(args.workdir) if args.workdir else _default_workdir(study, Path(args.config), cfg)
        )
        manifest = _prepare_workdir(workdir, study, cfg, args)
        t0 = time.time()
        run = Run(study, cfg, workdir, mesh=mesh, manifest=manifest)
        if run.is_main:
            workdir.mkdir(parents=True, exist_ok=True)
            manifest.write()
            command = _command(study, args)
            atomic_write(run.path("config.yaml"), f"# {command}\n{to_yaml(cfg)}")
        started = True
        summary = dict(study.run(cfg, run) or {})
        _plot_learning_curves(run)
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
        if run.is_main and study.headline is not None:
            for line in study.headline(json.loads(json.dumps(summary, default=_to_json))):
                print(line)
    except ConfigError as e:
        if args.debug:
            raise
        print(f"error: {e}{hint if e.__cause__ is not None else ''}", file=err)
        return EXIT_CONFIG
    except NonFiniteLossError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=err)
        return EXIT_NONFINITE
    except KeyboardInterrupt as e:
        code = (
            EXIT_TERMINATED
            if isinstance(e, _Terminated) or isinstance(e.__context__, _Terminated)
            else EXIT_INTERRUPTED
        )
        what = str(e) if isinstance(e, TrainingInterrupted) else "interrupted"
        if code == EXIT_TERMINATED:
            what = f"terminated (SIGTERM): {what}"
        resume = f"\nresume with: {_command(study, args, workdir)} --resume" if started else ""
        print(f"{what}{resume}", file=err)
        return code
    except OSError as e:
        if args.debug:
            raise
        where = f" in {workdir}" if workdir is not None else ""
        kept = "; the last good checkpoint is kept" if started else ""
        name = f": {e.filename}" if e.filename else ""
        print(f"error: cannot write{where}: {e.strerror or _one_line(e)}{name}{kept}", file=err)
        return EXIT_OS
    except Exception as e:
        if args.debug:
            raise
        print(f"error: {study.name} failed: {type(e).__name__}: {_one_line(e)}{hint}", file=err)
        return 1
    if run.is_main:
        print(f"results in {workdir}/ (summary.json, metrics.jsonl, config.yaml)", flush=True)
    return 0
