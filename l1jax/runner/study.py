"""A study: its config schema and what a run does, and :class:`Run`, the run directory a study's
``run`` function writes into.

A study script declares one :class:`Study` at module level as ``STUDY`` and hands it to
:func:`l1jax.runner.main`; :func:`load_study` imports a script and returns its ``STUDY``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib.util
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from l1jax.runner import parallel
from l1jax.runner.checkpoint import atomic_write
from l1jax.runner.checks import check_config
from l1jax.runner.config import load_config
from l1jax.runner.errors import ConfigError
from l1jax.runner.loop import train
from l1jax.runner.metrics import MetricsLog
from l1jax.runner.task import Task, TrainResult
from l1jax.runner.workdir import Manifest

__all__ = ["Study", "Run", "load_study", "load_study_config"]


@dataclasses.dataclass(frozen=True)
class Study:
    """A study: its name, config schema and what a run does.

    Attributes:
      name: the study's name: it names its runs (``runs/<name>/<config>`` by default) and is
        recorded in each workdir's manifest, so that one study's run is never resumed or
        overwritten by another's. Its configs may live anywhere.
      schema: the config dataclass: a subclass of :class:`~l1jax.runner.RunConfig` for a study
        that trains through :meth:`Run.train`, of :class:`~l1jax.runner.StudyConfig` otherwise.
      run: ``run(cfg, run) -> summary`` does the work with a :class:`Run` and returns the final
        numbers (a JSON-serialisable mapping), which become ``summary.json``.
      smoke: dotted-key overrides applied when the config has ``smoke: true`` (the small
        profile the tests run; an explicit ``--set`` still wins).
      validate: optional ``validate(cfg)`` run before any work; raise
        :class:`~l1jax.runner.ConfigError` (or ``ValueError``/``TypeError``/``LookupError``)
        naming the key.
      headline: optional ``headline(summary) -> lines``: the few numbers the run is for, which
        the CLI prints at the end (before "results in ..."); the summary is the JSON one.

    Examples:
      >>> import dataclasses, pathlib, tempfile
      >>> from l1jax import runner
      >>> @dataclasses.dataclass
      ... class CountConfig(runner.StudyConfig):  # seed, smoke, parallel, distributed, and n
      ...     n: int = 10
      >>> def run(cfg, run):  # the work; the summary it returns becomes summary.json
      ...     return {"total": sum(range(cfg.n))}
      >>> study = runner.Study(
      ...     name="count",
      ...     schema=CountConfig,
      ...     run=run,
      ...     smoke={"n": 3},
      ...     headline=lambda summary: [f"total {summary['total']}"],
      ... )
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     config = pathlib.Path(tmp, "smoke.yaml")
      ...     _ = config.write_text("smoke: true")
      ...     code = runner.main(study, ["--config", str(config), "--workdir", f"{tmp}/run"])
      total 3
      results in .../run/ (summary.json, metrics.jsonl, config.yaml)
      >>> code
      0
    """

    name: str
    schema: type
    run: Callable[[Any, Run], Mapping[str, Any] | None]
    smoke: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    validate: Callable[[Any], None] | None = None
    headline: Callable[[Mapping[str, Any]], Sequence[str]] | None = None


_SCRIPTS: dict[Path, Study] = {}


def load_study(script: str | Path) -> Study:
    """The :class:`Study` a study script defines as ``STUDY``, importing the script once.

    Args:
      script: the script's path (``experiments/robustness.py``, or a user's own anywhere).

    Raises:
      ConfigError: the script does not exist, or defines no ``STUDY``.

    Examples:
      >>> import pathlib, tempfile
      >>> from l1jax import runner
      >>> script = '''
      ... from l1jax import runner
      ... STUDY = runner.Study(name="empty", schema=runner.StudyConfig, run=lambda cfg, run: {})
      ... '''
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     path = pathlib.Path(tmp, "empty_study.py")
      ...     _ = path.write_text(script)
      ...     study = runner.load_study(path)
      ...     again = runner.load_study(path)
      >>> study.name, again is study  # the script is imported once
      ('empty', True)
    """
    path = Path(script).resolve()
    if path in _SCRIPTS:
        return _SCRIPTS[path]
    if not path.is_file():
        raise ConfigError(f"study script {str(script)!r} does not exist")
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:8]
    spec = importlib.util.spec_from_file_location(f"l1jax_study_{path.stem}_{digest}", path)
    if spec is None or spec.loader is None:  # not a Python source file (no .py suffix)
        raise ConfigError(f"study script {str(script)!r} is not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[spec.name]
        raise
    study = getattr(module, "STUDY", None)
    if not isinstance(study, Study):
        raise ConfigError(
            f"study script {str(script)!r} defines no STUDY = l1jax.runner.Study(...)"
        )
    _SCRIPTS[path] = study
    return study


def _validate(study: Study, cfg: Any, source: str) -> None:
    try:
        check_config(cfg)
        if study.validate is not None:
            study.validate(cfg)
    except ConfigError as e:
        raise e.with_source(source) from None
    except (LookupError, TypeError, ValueError) as e:
        raise ConfigError(str(e), source=source) from None


def load_study_config(study: Study, path: str | Path, overrides: Sequence[str] = ()) -> Any:
    """Loads ``path`` (with ``--set`` style ``overrides``) into ``study``'s schema and runs the
    runner's and the study's checks, before any work.

    Raises:
      ConfigError: anything wrong with the file, the overrides or the study's own checks.

    Examples:
      >>> import dataclasses, pathlib, tempfile
      >>> from l1jax import runner
      >>> @dataclasses.dataclass
      ... class CountConfig(runner.StudyConfig):
      ...     n: int = 10
      >>> def validate(cfg):
      ...     if cfg.n < 1:
      ...         raise runner.ConfigError(key="n", expected="an int >= 1", given=repr(cfg.n))
      >>> study = runner.Study(
      ...     name="count", schema=CountConfig, run=print, smoke={"n": 2}, validate=validate
      ... )
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     path = pathlib.Path(tmp, "smoke.yaml")
      ...     _ = path.write_text("smoke: true")
      ...     print(runner.load_study_config(study, path).n)  # the smoke profile
      ...     print(runner.load_study_config(study, path, ["n=5"]).n)  # --set wins over it
      ...     try:
      ...         runner.load_study_config(study, path, ["n=0"])
      ...     except runner.ConfigError as e:
      ...         print(str(e).replace(tmp, "TMP"))
      2
      5
      TMP/smoke.yaml: n: expected an int >= 1, got 0
    """
    path = Path(path)
    cfg = load_config(path, study.schema, overrides, smoke=study.smoke)
    _validate(study, cfg, str(path))
    return cfg


class Run:
    """One run's workdir and the helpers a study's ``run`` function uses.

    Attributes:
      study: the :class:`Study`.
      cfg: the loaded config.
      workdir: where everything goes.
      mesh: the device mesh training uses.
      is_main: whether this process writes files (process 0).

    Examples:
      >>> import pathlib, tempfile
      >>> from l1jax import runner
      >>> study = runner.Study(name="notes", schema=runner.StudyConfig, run=print)
      >>> with tempfile.TemporaryDirectory() as tmp:
      ...     run = runner.Run(study, runner.StudyConfig(), pathlib.Path(tmp))
      ...     _ = run.write_json("numbers.json", {"n": 3})
      ...     run.log({"step": 1, "loss": 0.5})
      ...     files = sorted(p.name for p in pathlib.Path(tmp).iterdir())
      >>> files
      ['manifest.json', 'metrics.jsonl', 'numbers.json']
      >>> run.manifest.paths  # what the runner wrote: all that --overwrite may remove
      ['manifest.json', 'numbers.json', 'metrics.jsonl']
      >>> run.path("../elsewhere.txt")
      Traceback (most recent call last):
      ...
      ValueError: Run.path: '../elsewhere.txt' is not a path inside the workdir
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
        """:func:`l1jax.runner.train` in this workdir (``checkpoints/<tag>/``), resuming if the
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


def _to_json(x: Any) -> Any:
    import numpy as np

    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON serialisable: {type(x).__name__}")
