"""The study script of docs/runner.md, run as a user would: from a folder outside the repository,
with a config of its own name, and resumed."""

import json
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def doc_script() -> str:
    text = (REPO / "docs" / "runner.md").read_text()
    section = text.split("## The script", 1)[1]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def test_the_documented_study_runs_outside_the_repository(tmp_path):
    (tmp_path / "mystudy.py").write_text(doc_script())
    (tmp_path / "cfgs").mkdir()
    (tmp_path / "cfgs" / "quick.yaml").write_text(
        "seed: 0\ntrain:\n  steps: 40\n  steps_per_call: 20\n"
    )
    cmd = [sys.executable, "mystudy.py", "--config", "cfgs/quick.yaml"]
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    workdir = tmp_path / "runs" / "mystudy" / "quick"
    summary = json.loads((workdir / "summary.json").read_text())
    assert set(summary) >= {"coef_error"}
    assert json.loads((workdir / "manifest.json").read_text())["study"] == "mystudy"
    # A second identical command refuses to reuse the finished run; --resume re-reports it.
    again = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 2 and "--resume" in again.stderr
    resumed = subprocess.run(
        [*cmd, "--resume"], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads((workdir / "summary.json").read_text())["coef_error"] == summary["coef_error"]
    # Fine-tuning from that run: a warm start named in the config, in a workdir of its own.
    tuned = subprocess.run(
        [
            *cmd,
            "--set",
            "train.init_from={path: runs/mystudy/quick, params_only: true}",
            "--set",
            "train.steps=20",
            "--workdir",
            "runs/mystudy/tuned",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert tuned.returncode == 0, tuned.stderr
    saved = (tmp_path / "runs" / "mystudy" / "tuned" / "config.yaml").read_text()
    assert "path: runs/mystudy/quick" in saved and "params_only: true" in saved
    bad = subprocess.run(
        [*cmd, "--set", "train.init_from={path: runs/nothing}", "--workdir", "runs/x"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr
    assert "train.init_from" in bad.stderr and "runs/nothing does not exist" in bad.stderr
    assert not (tmp_path / "runs" / "x" / "summary.json").exists()
