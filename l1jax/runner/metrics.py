"""``metrics.jsonl``: the lines a run writes (one per step, or per step and sweep point, each
naming its coordinates), and reading a run back as a table (:func:`load_run`)."""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from l1jax.runner import parallel
from l1jax.runner._yaml import read_yaml
from l1jax.runner.checkpoint import atomic_write
from l1jax.runner.sweeps import Grid

if TYPE_CHECKING:
    import pandas

__all__ = [
    "MetricsLog",
    "metric_records",
    "read_metrics",
    "metrics_frame",
    "load_run",
    "RunData",
    "plot_learning_curves",
    "LEARNING_CURVE",
]


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()] if x.ndim else _jsonable(x.item())
    if isinstance(x, (np.floating, float)):
        x = float(x)
        return x if math.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.bool_):
        return bool(x)
    if isinstance(x, list):
        return [_jsonable(v) for v in x]
    return x


def metric_records(
    head: Mapping[str, Any], metrics: Mapping[str, Any], grid: Grid | None
) -> list[dict[str, Any]]:
    """The ``metrics.jsonl`` lines of one step: one line, or in a sweep one per grid point.

    A sweep point's line names its coordinates: ``point`` (its index in ``grid.points``) and
    ``coords`` (``{swept key: value}``), then the point's own scalar metrics::

      {"tag": "l1", "step": 50, "point": 3, "coords": {"seed": 0, "data.fraction": 0.2},
       "loss": 0.12, "grad_norm": 0.4, "learning_rate": 0.05, "steps_per_s": 812.0}

    Args:
      head: the fields every line starts with (``tag``, ``step``).
      metrics: ``{name: value}``; in a sweep, per-point values have a leading grid axis and
        anything else (a scalar such as ``steps_per_s``) is repeated on every line.
      grid: the sweep's grid, or None.
    """
    if grid is None:
        return [{**head, **metrics}]
    size = len(grid)
    out = []
    for i, coords in enumerate(grid.points):
        line = {**head, "point": i, "coords": dict(coords)}
        for k, v in metrics.items():
            per_point = np.ndim(v) >= 1 and np.shape(v)[0] == size
            line[k] = np.asarray(v)[i] if per_point else v
        out.append(line)
    return out


class MetricsLog:
    """Appends JSON lines to ``metrics.jsonl``; non-finite numbers are written as null.

    Each line has ``step`` (and ``tag`` when the run trains several things) plus metrics; in a
    sweep there is one line per grid point, naming its ``point`` and ``coords`` (see
    :func:`metric_records`).
    """

    def __init__(self, path: str | Path | None):
        self.path = None if path is None else Path(path)
        self.enabled = self.path is not None and parallel.is_main_process()

    def write(self, records: Sequence[Mapping[str, Any]]) -> None:
        path = self.path
        if path is None or not self.enabled or not records:  # enabled implies a path
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a") as f:
            for r in records:
                f.write(json.dumps({k: _jsonable(v) for k, v in r.items()}) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def truncate(self, tag: str, step: int) -> dict[str, Any]:
        """Drops ``tag``'s lines after ``step`` (they came after the checkpoint we resume).

        Returns:
          ``{"exists", "damaged", "kept"}``: whether the file exists, how many unreadable lines
          were dropped (a torn last line, left by a kill, is not counted) and how many of
          ``tag``'s lines were kept.
        """
        report = {"exists": False, "damaged": 0, "kept": 0}
        path = self.path
        if path is None or not self.enabled or not path.exists():  # enabled implies a path
            return report
        report["exists"] = True
        text = path.read_text(errors="replace")
        lines = text.splitlines()
        kept, dropped = [], False
        for i, line in enumerate(lines):
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError
            except ValueError:
                torn = i == len(lines) - 1 and not text.endswith("\n")
                report["damaged"] += 0 if torn else 1
                dropped = True
                continue
            if rec.get("tag", "") == tag and isinstance(rec.get("step"), int):
                if rec["step"] > step:
                    dropped = True
                    continue
                report["kept"] += 1
            kept.append(line)
        if dropped:
            atomic_write(path, "".join(f"{line}\n" for line in kept))
        return report

    def read(self) -> list[dict[str, Any]]:
        if self.path is None or not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line]


LEARNING_CURVE = "learning_curve.png"


class RunData(NamedTuple):
    """What :func:`load_run` returns.

    Attributes:
      config: the resolved config (``config.yaml``) as nested dicts and lists.
      summary: ``summary.json``, or None for a run that has not finished.
      metrics: ``metrics.jsonl`` as a pandas DataFrame, one row per line (see
        :func:`metrics_frame`).

    Examples:
      >>> import pathlib, tempfile
      >>> from l1jax import runner
      >>> with tempfile.TemporaryDirectory() as workdir:
      ...     _ = pathlib.Path(workdir, "config.yaml").write_text("seed: 0")
      ...     _ = pathlib.Path(workdir, "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}')
      ...     data = runner.load_run(workdir)
      >>> data.config, data.summary  # no summary.json: the run has not finished
      ({'seed': 0}, None)
      >>> data.metrics.to_dict("records")
      [{'tag': '', 'step': 1, 'loss': 0.5}]
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
    rows: list[dict[str, Any]] = []
    coord_keys: dict[str, None] = {}  # the swept keys in the order they first appear
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
        return pd.DataFrame(
            {"tag": pd.Series([], dtype=object), "step": pd.Series([], dtype="Int64")}
        )
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

    Examples:
      >>> import pathlib, tempfile
      >>> import jax.numpy as jnp
      >>> from l1jax import losses, runner
      >>> from l1jax.models import Linear
      >>> def init(cfg, key):  # y = 2 x on 16 points
      ...     x = jnp.linspace(-1.0, 1.0, 16)[:, None]
      ...     return runner.Problem(params=Linear(1, key=key), data={"x": x, "y": 2 * x[:, 0]})
      >>> task = runner.Task(init=init, loss=lambda cfg, m, b, c, k: losses.l1(m(b["x"]), b["y"]))
      >>> def run(cfg, run):
      ...     return {"weight": float(run.train(task).params.weight[0])}
      >>> study = runner.Study(name="line", schema=runner.RunConfig, run=run)
      >>> tmp = tempfile.TemporaryDirectory()
      >>> config, workdir = pathlib.Path(tmp.name, "sgd.yaml"), pathlib.Path(tmp.name, "run")
      >>> _ = config.write_text(
      ...     "{optimizer: {name: sgd, learning_rate: 0.5},"
      ...     " train: {steps: 4, log_every: 2, progress: false}}"
      ... )
      >>> runner.main(study, ["--config", str(config), "--workdir", str(workdir)])
      results in .../run/ (summary.json, metrics.jsonl, config.yaml)
      0
      >>> data = runner.load_run(workdir)
      >>> data.config["train"]["steps"], round(data.summary["weight"], 4)
      (4, 1.0667)
      >>> print(data.metrics[["step", "loss"]].round(4).to_string(index=False))  # every 2 steps
       step   loss
          2 0.9244
          4 0.6400
      >>> tmp.cleanup()
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


def plot_learning_curves(run: Any) -> Path | None:
    """Saves ``learning_curve.png`` through ``run`` (a :class:`~l1jax.runner.Run`): the training
    loss against the step, one curve per tag (the mean over a sweep's points, the band their
    min to max). Nothing without training lines in ``metrics.jsonl``."""
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
