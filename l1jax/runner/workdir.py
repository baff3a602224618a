"""The workdir of a run: what the runner wrote there (``manifest.json``), and the rules for
starting, resuming and overwriting a run in it. Nothing the runner did not write is removed."""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from l1jax.runner import parallel
from l1jax.runner._yaml import header_command, read_yaml
from l1jax.runner.checkpoint import atomic_write
from l1jax.runner.config import diff, identity
from l1jax.runner.errors import ConfigError

__all__ = ["MANIFEST", "Manifest", "prepare_workdir"]

# The file in each workdir that lists what the runner wrote there (see `Manifest`).
MANIFEST = "manifest.json"

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


def _legacy_manifest(workdir: Path, study: str) -> Manifest | None:
    """A manifest for a run written before the runner kept one: its ``config.yaml`` is headed
    by this study's command and it has metrics, a summary or checkpoints. It claims only the
    files every run writes (plots and anything else stay the user's, so ``--overwrite`` lists
    them instead of deleting them)."""
    try:
        command = header_command(workdir / "config.yaml")
    except (OSError, UnicodeDecodeError):
        return None
    if not command or f"{study}.py" not in command:
        return None
    if not any((workdir / p).exists() for p in _LEGACY_PATHS[1:]):
        return None  # a config file alone is not a run
    return Manifest(workdir, study, [p for p in _LEGACY_PATHS if (workdir / p).exists()])


def prepare_workdir(
    workdir: Path, study: str, cfg: Any, *, resume: bool = False, overwrite: bool = False
) -> Manifest:
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
        return Manifest(workdir, study)
    if not workdir.exists() or not any(workdir.iterdir()):
        return Manifest(workdir, study)
    manifest = Manifest.read(workdir) or _legacy_manifest(workdir, study)
    if manifest is None:
        entries = sorted(workdir.iterdir())
        raise ConfigError(
            f"--workdir {workdir} holds files the runner did not write "
            f"({_listing(entries, workdir)}); use an empty or new directory"
        )
    if manifest.study != study:
        raise ConfigError(
            f"--workdir {workdir} holds a run of the study {manifest.study!r}, not "
            f"{study!r}; use another directory"
        )
    _, _, foreign = manifest.classify()
    saved = workdir / "config.yaml"
    started = _started(workdir)
    if overwrite or not started:
        if foreign:
            why = (
                "--overwrite removes only what the runner wrote"
                if overwrite
                else ("its run stopped before its first checkpoint, but")
            )
            raise ConfigError(
                f"{why}: {workdir} also holds {_listing(foreign, workdir)}; move them away or "
                f"use another --workdir"
            )
        manifest.remove()
        return Manifest(workdir, study)
    state = "a finished run" if (workdir / "summary.json").exists() else "an unfinished run"
    if not resume:
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
