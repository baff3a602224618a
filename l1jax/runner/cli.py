"""The command line every study script shares.

A study script declares its config schema and a ``run`` function as a
:class:`~l1jax.runner.Study`, and hands it to :func:`main`::

    STUDY = runner.Study(name="robustness", schema=RobustnessConfig, run=run,
                         smoke={"train.steps": 200})

    if __name__ == "__main__":
        raise SystemExit(runner.main(STUDY))

which gives ``python experiments/robustness.py --config configs/robustness/default.yaml
[--set a.b=value ...] [--workdir DIR] [--resume] [--overwrite] [--debug]``. See
``docs/runner.md``.

Exit codes: 0 done; 2 bad config, command line or workdir (one line on stderr, no traceback;
``--debug`` shows it); 3 non-finite loss; 4 the workdir could not be written (a full disk, a
read-only directory); 130 interrupted by Ctrl-C and 143 by SIGTERM (a checkpoint was saved).
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from l1jax.runner import parallel
from l1jax.runner.checkpoint import atomic_write
from l1jax.runner.config import to_yaml
from l1jax.runner.errors import ConfigError, NonFiniteLossError, TrainingInterrupted
from l1jax.runner.metrics import plot_learning_curves
from l1jax.runner.study import Run, Study, _to_json, load_study_config
from l1jax.runner.workdir import prepare_workdir

__all__ = [
    "main",
    "EXIT_CONFIG",
    "EXIT_NONFINITE",
    "EXIT_INTERRUPTED",
    "EXIT_TERMINATED",
    "EXIT_OS",
]

EXIT_CONFIG = 2
EXIT_NONFINITE = 3
EXIT_OS = 4
EXIT_INTERRUPTED = 130  # 128 + SIGINT
EXIT_TERMINATED = 143  # 128 + SIGTERM


def _script(study: Study) -> str:
    """The script that defines ``study`` (its ``run`` function's module), as the user would type
    it: relative to the current directory when it is below it."""
    module = sys.modules.get(getattr(study.run, "__module__", ""), None)
    path = getattr(module, "__file__", None)
    if not path:
        return f"{study.name}.py"
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def _parser(study: Study) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=_script(study),
        description=f"Run the {study.name!r} study.",
    )
    p.add_argument("--config", required=True, help="the YAML config of the run")
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


def _command(study: Study, args: argparse.Namespace, workdir: Path | None = None) -> str:
    cmd = ["python", _script(study), "--config", args.config]
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


def main(study: Study, argv: Sequence[str] | None = None) -> int:
    """The CLI: load and check the config, prepare the workdir, run the study, write results.

    SIGTERM is handled like Ctrl-C while it runs (in the main thread).

    Returns:
      The exit code (0, 2 bad config or workdir, 3 non-finite loss, 4 the workdir could not be
      written, 130 interrupted, 143 terminated).

    Examples:
      >>> import contextlib, dataclasses, pathlib, sys, tempfile
      >>> from l1jax import runner
      >>> @dataclasses.dataclass
      ... class CountConfig(runner.StudyConfig):
      ...     n: int = 10
      >>> study = runner.Study(
      ...     name="count", schema=CountConfig, run=lambda cfg, run: {"total": sum(range(cfg.n))}
      ... )
      >>> tmp = tempfile.TemporaryDirectory()
      >>> config, workdir = pathlib.Path(tmp.name, "four.yaml"), pathlib.Path(tmp.name, "run")
      >>> _ = config.write_text("n: 4")
      >>> runner.main(study, ["--config", str(config), "--workdir", str(workdir)])
      results in .../run/ (summary.json, metrics.jsonl, config.yaml)
      0
      >>> runner.load_run(workdir).summary["total"]
      6
      >>> with contextlib.redirect_stderr(sys.stdout):  # the one line a bad value prints
      ...     code = runner.main(study, ["--config", str(config), "--set", "n=four"])
      error: --set n=four: n: expected int, got 'four' (str)
      >>> code == runner.EXIT_CONFIG
      True
      >>> tmp.cleanup()
    """
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
        cfg = load_study_config(study, args.config, args.overrides)
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
        manifest = prepare_workdir(
            workdir, study.name, cfg, resume=args.resume, overwrite=args.overwrite
        )
        t0 = time.time()
        run = Run(study, cfg, workdir, mesh=mesh, manifest=manifest)
        if run.is_main:
            workdir.mkdir(parents=True, exist_ok=True)
            manifest.write()
            command = _command(study, args)
            atomic_write(run.path("config.yaml"), f"# {command}\n{to_yaml(cfg)}")
        started = True
        summary = dict(study.run(cfg, run) or {})
        plot_learning_curves(run)
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
