"""Data parallelism: an 8-device mesh (forced host devices) matches one device, with the data
sharded over "batch", parameters replicated and the all-reduce inserted by XLA."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest
from _runner_tasks import TASK, config
from jax.sharding import AxisType, NamedSharding
from jax.sharding import PartitionSpec as P

from l1jax.runner import parallel, program, train


def test_mesh():
    assert jax.device_count() == 8, "tests/conftest.py forces 8 host devices"
    mesh = parallel.make_mesh()
    assert mesh.shape == {"batch": 8} and mesh.axis_types == (AxisType.Auto,)
    assert parallel.make_mesh(2).shape == {"batch": 2}
    with pytest.raises(ValueError, match=r"num_devices must lie in \[1, 8\]"):
        parallel.make_mesh(9)


@pytest.fixture(scope="module")
def runs():
    return {n: train(TASK, config(**{"parallel.num_devices": n})) for n in (None, 1)}


def test_eight_devices_match_one(runs):
    many, one = runs[None], runs[1]
    np.testing.assert_allclose(many.params.weight, one.params.weight, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(many.params.bias, one.params.bias, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(many.evals["train_loss"], one.evals["train_loss"], rtol=1e-4)


def test_data_is_sharded_and_params_replicated(runs):
    x = runs[None].problem.data["x"]
    assert isinstance(x.sharding, NamedSharding) and x.sharding.spec == P("batch")
    assert len(x.sharding.device_set) == 8
    assert {s.data.shape for s in x.addressable_shards} == {(4, 3)}  # 32 rows / 8 devices
    for leaf in jax.tree.leaves(runs[None].state):
        assert leaf.sharding.is_fully_replicated and len(leaf.sharding.device_set) == 8


def test_xla_inserts_the_gradient_all_reduce(runs):
    cfg = config()
    prog = program.program(TASK, cfg, parallel.make_mesh(None), None)
    r = runs[None]
    hlo = prog.chunk.lower(r.state, r.problem, {}, np.int32(1)).compile().compiled.as_text()
    assert "all-reduce" in hlo


def test_minibatches_match_across_device_counts():
    changes = {"train.batch_size": 16}
    many = train(TASK, config(**changes))
    one = train(TASK, config(**changes, **{"parallel.num_devices": 1}))
    np.testing.assert_allclose(many.params.weight, one.params.weight, rtol=1e-5, atol=1e-6)


def test_examples_must_split_evenly():
    with pytest.raises(ValueError, match=r"examples=30 does not split evenly over the 8 devices"):
        train(TASK, config(n=30, **{"train.steps": 1}))
    with pytest.raises(ValueError, match=r"train.batch_size=12 does not split evenly"):
        train(TASK, config(**{"train.steps": 1, "train.batch_size": 12}))


def test_host_round_trip():
    mesh = parallel.make_mesh()
    tree = {"a": np.arange(6.0, dtype=np.float32).reshape(2, 3), "b": np.int32(3)}
    placed = parallel.put_replicated(tree, mesh)
    assert placed["a"].sharding.is_fully_replicated and len(placed["a"].devices()) == 8
    back = jax.tree.map(parallel.to_host, placed)
    np.testing.assert_array_equal(back["a"], tree["a"])
    assert back["b"] == 3


_WORKER = """
import sys
sys.path.insert(0, {tests!r})
from _runner_tasks import study
from l1jax import runner
raise SystemExit(runner.main(study(), sys.argv[1:]))
"""


def test_two_processes_match_one(runs, tmp_path):
    """jax.distributed over 2 processes x 4 CPU devices (gloo) = the 8-device run."""
    with socket.socket() as s:
        s.bind(("localhost", 0))
        port = s.getsockname()[1]
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        "optimizer: {name: adam, learning_rate: 0.2}\nschedule: {name: cosine}\n"
        f"distributed: {{enabled: true, coordinator_address: 'localhost:{port}', "
        "num_processes: 2}\n"
    )
    env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}
    code = _WORKER.format(tests=str(Path(__file__).parent))
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                code,
                "--config",
                str(cfg),
                "--workdir",
                str(tmp_path / "w"),
                "--set",
                f"distributed.process_id={i}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(2)
    ]
    outs = [p.communicate(timeout=240)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["run"]["devices"].startswith("8 x")
    np.testing.assert_allclose(summary["coef_error"], runs[None].evals["coef_error"], rtol=1e-5)
