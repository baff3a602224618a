"""Atomic checkpoints: bitwise round trips, torn files ignored, pruning, temp-file cleanup."""

from __future__ import annotations

import json
import os

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l1jax.models import Linear
from l1jax.runner import checkpoint


def _tree(seed: int = 0):
    # Host-made arrays only: eager JAX ops would each compile, which is all this test would time.
    rng = np.random.default_rng(seed)
    model = eqx.tree_at(
        lambda m: (m.weight, m.bias),
        Linear(3, 2, key=None),
        (
            jnp.asarray(rng.normal(size=(2, 3)), jnp.float32),
            jnp.asarray(rng.normal(size=2), jnp.float32),
        ),
    )
    return {
        "model": model,
        "step": np.int32(7 + seed),
        "key": np.asarray(rng.integers(0, 2**32, size=2), np.uint32),
        "half": jnp.asarray(np.asarray(rng.normal(size=4)).astype(jnp.bfloat16)),
    }


def _assert_bitwise(a, b):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        assert x.dtype == y.dtype and x.shape == y.shape
        assert x.tobytes() == y.tobytes()


def test_round_trip_is_bitwise(tmp_path):
    tree = _tree()
    ckpt = checkpoint.save(tmp_path, 7, tree, note="hi")
    assert ckpt.path.name == "step_000000007.eqx"
    meta = json.loads(ckpt.path.with_suffix(".json").read_text())
    assert meta["step"] == 7 and meta["note"] == "hi" and meta["bytes"] == ckpt.path.stat().st_size
    back = checkpoint.restore(checkpoint.latest(tmp_path), like=_tree(seed=1))
    _assert_bitwise(back, tree)
    assert isinstance(back["model"], Linear) and back["model"].out_features == 2


def test_latest_skips_torn_and_corrupt_checkpoints(tmp_path):
    checkpoint.save(tmp_path, 1, _tree())
    second = checkpoint.save(tmp_path, 2, _tree())
    third = checkpoint.save(tmp_path, 3, _tree())
    # A data file without its sidecar (killed between the two writes) does not count.
    (tmp_path / "step_000000004.eqx").write_bytes(second.path.read_bytes())
    # Truncated data (size differs from the sidecar): skipped.
    third.path.write_bytes(third.path.read_bytes()[:-5])
    assert checkpoint.latest(tmp_path).step == 2
    # Same size but flipped bytes: the hash catches it.
    data = bytearray(second.path.read_bytes())
    data[-1] ^= 0xFF
    second.path.write_bytes(bytes(data))
    assert checkpoint.latest(tmp_path).step == 1
    # A torn sidecar (invalid JSON) is ignored too.
    (tmp_path / "step_000000009.json").write_text('{"step": 9, "fi')
    assert checkpoint.latest(tmp_path).step == 1


def test_no_checkpoint(tmp_path):
    assert checkpoint.latest(tmp_path / "missing") is None
    assert checkpoint.latest(tmp_path) is None


def test_atomic_write_keeps_the_old_file_when_interrupted(tmp_path, monkeypatch):
    path = tmp_path / "summary.json"
    checkpoint.atomic_write(path, "old")

    def boom(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.atomic_write(path, "new")
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # temp file removed


def test_manager_keeps_the_newest_and_cleans_temp_files(tmp_path):
    (tmp_path / ".step_000000005.eqx.abc.tmp").write_bytes(b"partial")
    manager = checkpoint.CheckpointManager(tmp_path, keep=2)
    assert not list(tmp_path.glob("*.tmp"))
    for step in (10, 20, 30):
        manager.save(step, _tree(), finished=step == 30)
    kept = checkpoint.all_checkpoints(tmp_path)
    assert [c.step for c in kept] == [20, 30]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "step_000000020.eqx",
        "step_000000020.json",
        "step_000000030.eqx",
        "step_000000030.json",
    ]
    assert manager.latest().metadata["finished"] is True
    with pytest.raises(ValueError, match="keep"):
        checkpoint.CheckpointManager(tmp_path, keep=0)


def test_restore_rejects_a_different_shape(tmp_path):
    checkpoint.save(tmp_path, 1, {"a": np.zeros(3, np.float32)})
    with pytest.raises(RuntimeError):
        checkpoint.restore(checkpoint.latest(tmp_path), like={"a": np.zeros(4, np.float32)})


def test_serialises_nested_modules_with_static_fields(tmp_path):
    tree = [_tree(0)["model"], {"inner": _tree(1)["model"]}]
    checkpoint.save(tmp_path, 0, tree)
    back = checkpoint.restore(
        checkpoint.latest(tmp_path), like=[_tree(2)["model"], {"inner": _tree(3)["model"]}]
    )
    _assert_bitwise(back, tree)
    assert back[1]["inner"].in_features == 3
