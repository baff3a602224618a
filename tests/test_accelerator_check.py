"""scripts/accelerator_check.sh --dry-run: the GPU check's very steps on the CPU at toy sizes, so
that the script cannot rot; a second call continues from the first; the budget skips parts."""

from __future__ import annotations

import json
import os
import subprocess
import tarfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "accelerator_check.sh"
PARTS = ["tests", "bench_losses", "bench_solvers", "bench_sr", "sr_study", "phase_transition"]


# Compilation is most of each part's time, and most of that is LLVM optimising the generated
# code, whose speed is no part of what the dry run checks (that each part runs and writes its
# results): the parts' processes compile without it (a quarter less time in all).
ENV = {
    **os.environ,
    "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip(),
}


def check(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(SCRIPT), "--dry-run", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ENV,
    )


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("acc")
    out, archive = folder / "results", folder / "results.tar.gz"
    proc = check("--out", str(out), "--archive", str(archive))
    return out, archive, proc


def test_every_part_runs_and_writes_its_results(dry_run):
    out, archive, proc = dry_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert [p["part"] for p in summary["parts"]] == PARTS
    assert all(p["status"] == "done" for p in summary["parts"]), summary["parts"]
    assert summary["dry_run"] and summary["backend"] == "cpu"
    for name in ("bench_losses", "bench_solvers", "bench_sr"):
        assert json.loads((out / f"{name}.json").read_text())
    sr = json.loads((out / "sr_study" / "summary.json").read_text())
    assert set(sr["table"]) == {"l2", "l2_to_l1", "bicubic"}
    assert (out / "phase_transition" / "summary.json").exists()
    assert "| sr_study | done |" in (out / "summary.md").read_text()
    with tarfile.open(archive) as tar:
        assert f"{out.name}/summary.json" in tar.getnames()


def test_a_second_call_continues_and_a_small_budget_skips(dry_run, tmp_path):
    out, _, first = dry_run
    assert first.returncode == 0
    again = check("--out", str(out), "--budget", "100", "--only", ",".join(PARTS[1:]))
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("done in an earlier call") == len(PARTS) - 1
    calls = json.loads((out / "accelerator_check.json").read_text())["calls"]
    assert len(calls) == 2
    tight = check("--out", str(tmp_path / "tight"), "--budget", "5")
    assert tight.returncode == 0, tight.stderr
    assert tight.stdout.count("skipped: needs about") == len(PARTS)


def test_a_foreign_results_folder_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    proc = check("--out", str(tmp_path))
    assert proc.returncode == 2 and "did not write" in proc.stderr
    assert (tmp_path / "notes.txt").read_text() == "mine"
