"""Atomic checkpoints: ``eqx.tree_serialise_leaves`` files plus a small JSON sidecar.

A checkpoint of step ``s`` is two files in one directory:

* ``step_000000s.eqx``: the pytree's leaves (``eqx.tree_serialise_leaves``);
* ``step_000000s.json``: ``{"step", "file", "bytes", "sha256", ...metadata}``.

Each is written to a temporary file in the same directory, flushed, fsync-ed and moved into place
with ``os.replace`` (atomic on POSIX), the data file first and the sidecar last: a checkpoint
exists exactly when its sidecar does and the data file has the recorded size and hash. A process
killed at any moment therefore leaves either the previous checkpoints or the previous ones plus
the new one, never a torn file that :func:`latest` would pick up.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import jax

from l1jax.runner import parallel

__all__ = [
    "Checkpoint",
    "CheckpointManager",
    "atomic_write",
    "save",
    "latest",
    "restore",
    "all_checkpoints",
    "damaged_checkpoints",
]

_NAME = re.compile(r"^step_(\d+)\.json$")


def atomic_write(path: str | Path, data: bytes | str) -> None:
    """Writes ``data`` to ``path`` so that readers see the old file or the new one, whole."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _fsync_dir(directory: Path) -> None:
    # Persist the rename itself; not every platform lets a directory be opened.
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A checkpoint on disk: its step, data file and sidecar metadata."""

    step: int
    path: Path
    metadata: dict[str, Any]


def _local(x: Any) -> Any:
    # A replicated array spanning hosts: save this process's copy. Fully addressable arrays
    # stay jax.Arrays so that equinox saves them with jnp.save (which keeps bfloat16).
    if isinstance(x, jax.Array) and not x.is_fully_addressable:
        return x.addressable_data(0)
    return x


def _serialise(tree: Any) -> bytes:
    buf = io.BytesIO()
    eqx.tree_serialise_leaves(buf, jax.tree.map(_local, tree))
    return buf.getvalue()


def save(directory: str | Path, step: int, tree: Any, **metadata: Any) -> Checkpoint:
    """Atomically writes ``tree`` as the checkpoint of ``step`` in ``directory``.

    Args:
      directory: where the checkpoint files go (created if needed).
      step: the step number (names the files).
      tree: any pytree ``eqx.tree_serialise_leaves`` accepts (arrays, scalars, modules).
      **metadata: JSON-serialisable values stored in the sidecar.

    Returns:
      The written :class:`Checkpoint`.
    """
    directory = Path(directory)
    payload = _serialise(tree)
    data_path = directory / f"step_{step:09d}.eqx"
    atomic_write(data_path, payload)
    meta = {
        **metadata,
        "step": int(step),
        "file": data_path.name,
        "bytes": len(payload),
        "sha256": hashlib.sha256(payload).hexdigest(),
    }
    try:
        atomic_write(
            directory / f"step_{step:09d}.json", json.dumps(meta, indent=1, sort_keys=True)
        )
    except BaseException:
        # No sidecar, no checkpoint: do not leave its data file behind (a full disk).
        data_path.unlink(missing_ok=True)
        raise
    return Checkpoint(step=int(step), path=data_path, metadata=meta)


def _valid(directory: Path, sidecar: Path, *, verify: bool) -> Checkpoint | None:
    try:
        meta = json.loads(sidecar.read_text())
        data_path = directory / meta["file"]
        if data_path.stat().st_size != meta["bytes"]:
            return None
        if verify and hashlib.sha256(data_path.read_bytes()).hexdigest() != meta["sha256"]:
            return None
        return Checkpoint(step=int(meta["step"]), path=data_path, metadata=meta)
    except (OSError, ValueError, KeyError, TypeError):
        return None


def all_checkpoints(directory: str | Path, *, verify: bool = False) -> list[Checkpoint]:
    """The complete checkpoints in ``directory``, oldest first (torn ones are skipped)."""
    directory = Path(directory)
    if not directory.is_dir():
        return []
    found = []
    for sidecar in directory.iterdir():
        if _NAME.match(sidecar.name):
            ckpt = _valid(directory, sidecar, verify=verify)
            if ckpt is not None:
                found.append(ckpt)
    return sorted(found, key=lambda c: c.step)


def damaged_checkpoints(directory: str | Path) -> list[Path]:
    """Sidecars in ``directory`` whose checkpoint is not whole: an unreadable sidecar, or data
    missing or not matching the recorded size and hash, oldest first.

    A process killed while saving never leaves one (the sidecar is written last), so these
    come from something else: a damaged disk, a copy, an edit.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    bad = [
        (int(m.group(1)), sidecar)
        for sidecar in directory.iterdir()
        if (m := _NAME.match(sidecar.name)) and _valid(directory, sidecar, verify=True) is None
    ]
    return [sidecar for _, sidecar in sorted(bad, key=lambda pair: pair[0])]


def latest(directory: str | Path) -> Checkpoint | None:
    """The newest complete checkpoint whose data matches its recorded hash, or None."""
    for ckpt in reversed(all_checkpoints(directory)):
        if _valid(ckpt.path.parent, ckpt.path.with_suffix(".json"), verify=True) is not None:
            return ckpt
    return None


def restore(checkpoint: Checkpoint | str | Path, like: Any) -> Any:
    """Reads a checkpoint into the structure of ``like`` (arrays come back as host arrays).

    Args:
      checkpoint: a :class:`Checkpoint` or the path of its ``.eqx`` file.
      like: a pytree with the saved structure, shapes and dtypes (e.g. a fresh initial state).
    """
    path = checkpoint.path if isinstance(checkpoint, Checkpoint) else Path(checkpoint)
    with open(path, "rb") as f:
        return eqx.tree_deserialise_leaves(f, like)


def find(path: str | Path, *, tag: str | None = None, step: int | None = None) -> Checkpoint:
    """The checkpoint ``path`` names: a run's workdir (its ``checkpoints/<tag>/``), one
    checkpoint folder, or a checkpoint's ``step_N.json`` or ``step_N.eqx``.

    Args:
      path: where to look.
      tag: which tag of a workdir; None: its only one.
      step: which checkpoint; None: the newest (a file names its own step).

    Raises:
      LookupError: nothing there, an ambiguous tag, or no checkpoint of that step; the
        message lists what there is.
    """
    path = Path(path)
    if path.is_file():
        match = _NAME.match(path.with_suffix(".json").name)
        if match is None:
            raise LookupError(f"{path} is not a checkpoint file (step_N.json or step_N.eqx)")
        if step is not None and int(match.group(1)) != step:
            raise LookupError(f"{path} is the checkpoint of step {int(match.group(1))}, not {step}")
        path, step = path.parent, int(match.group(1))
    elif (path / "checkpoints").is_dir():
        tags = sorted(p.name for p in (path / "checkpoints").iterdir() if p.is_dir())
        if tag is None and len(tags) != 1:
            raise LookupError(
                f"{path} holds the checkpoints of {len(tags)} tags ({', '.join(tags) or 'none'}); "
                f"name one with tag"
            )
        chosen = tags[0] if tag is None else tag
        if chosen not in tags:
            raise LookupError(f"{path} has no tag {chosen!r}; it has {', '.join(tags) or 'none'}")
        path = path / "checkpoints" / chosen
    elif not path.is_dir():
        raise LookupError(f"{path} does not exist")
    found = all_checkpoints(path)
    if step is None:
        newest = latest(path)
        if newest is None:
            raise LookupError(f"{path} holds no complete checkpoint")
        return newest
    for ckpt in found:
        if ckpt.step == step:
            if _valid(path, ckpt.path.with_suffix(".json"), verify=True) is None:
                raise LookupError(f"the checkpoint of step {step} in {path} is damaged")
            return ckpt
    steps = ", ".join(str(c.step) for c in found) or "none"
    raise LookupError(f"{path} has no checkpoint of step {step}; it has steps {steps}")


class CheckpointManager:
    """Saves numbered checkpoints in one directory and keeps the newest ``keep``.

    Only the main process (``jax.process_index() == 0``) writes; every process reads.

    Args:
      directory: the checkpoint directory.
      keep: how many checkpoints to keep (the newest); at least 1.
    """

    def __init__(self, directory: str | Path, *, keep: int = 2):
        if keep < 1:
            raise ValueError(f"keep must be at least 1, got keep={keep}")
        self.directory = Path(directory)
        self.keep = keep
        if parallel.is_main_process() and self.directory.is_dir():
            # Left by a process killed mid-write; never valid, so remove them.
            for tmp in self.directory.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)

    def latest(self) -> Checkpoint | None:
        return latest(self.directory)

    def save(self, step: int, tree: Any, **metadata: Any) -> Checkpoint | None:
        """Writes the checkpoint of ``step`` and prunes older ones (main process only)."""
        if not parallel.is_main_process():
            return None
        ckpt = save(self.directory, step, tree, **metadata)
        for old in all_checkpoints(self.directory)[: -self.keep]:
            old.path.with_suffix(".json").unlink(missing_ok=True)
            old.path.unlink(missing_ok=True)
        return ckpt

    def restore(self, checkpoint: Checkpoint, like: Any) -> Any:
        return restore(checkpoint, like)
