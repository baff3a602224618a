"""Configs: every YAML under configs/ is valid for its study and names its own command; bad
configs fail with one line naming the file, key, expected and given value."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import _studies
import pytest

from l1jax import runner
from l1jax.runner import MISSING, ConfigError, RunConfig, StudyConfig
from l1jax.runner._yaml import header_command
from l1jax.runner.config import diff, load_config, to_yaml

REPO = Path(__file__).resolve().parents[1]
CONFIGS = _studies.configs()


def test_there_are_configs():
    assert any(p.parent.name == "robustness" for p in CONFIGS)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_starts_with_the_command_that_runs_it(path):
    rel = path.relative_to(REPO).as_posix()
    first = path.read_text().splitlines()[0]
    assert first.startswith("# "), f"{rel} must start with a comment giving its command"
    command = header_command(path)
    assert command is not None and f"--config {rel}" in command, (rel, command)
    assert f"experiments/{path.parent.name}.py" in command


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_config_validates_against_its_study_schema(path, tmp_path):
    study = _studies.load(path.parent.name)
    cfg = runner.load_study_config(study, path)
    assert study.name == path.parent.name
    assert isinstance(cfg, study.schema) and isinstance(cfg, StudyConfig)
    # The resolved config round-trips through the YAML a run writes.
    resolved = tmp_path / "config.yaml"
    resolved.write_text(to_yaml(cfg))
    assert diff(load_config(resolved, study.schema), cfg) == {}


# --- a small schema for the error messages -----------------------------------------------------


@dataclasses.dataclass
class Data:
    n: int = MISSING
    fraction: float = 0.1
    kind: str = "gauss"


@dataclasses.dataclass
class Schema(RunConfig):
    data: Data = dataclasses.field(default_factory=Data)
    widths: list[int] = dataclasses.field(default_factory=lambda: [8, 8])


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "text, key, expected, given",
    [
        (
            "data: {n: 4, fractoin: 0.2}\n",
            "data.fractoin",
            "one of the keys of data (n, fraction, kind)",
            "'fractoin'",
        ),
        ("data: {n: four}\n", "data.n", "int", "'four' (str)"),
        ("data: {n: 4, fraction: [1]}\n", "data.fraction", "float", "[1] (list)"),
        ("data: 3\n", "data", "a mapping (Data)", "3 (int)"),
        ("data: {n: 4}\nwidths: [1, x]\n", "widths[1]", "int", "'x' (str)"),
        (
            "data: {n: 4}\ntrain: {clip_norm: big}\n",
            "train.clip_norm",
            "float or null",
            "'big' (str)",
        ),
        ("seed: 0\n", "data.n", "int", "nothing (???)"),
    ],
)
def test_bad_config_message_names_file_key_expected_given(tmp_path, text, key, expected, given):
    path = write(tmp_path, "bad.yaml", "# python x.py --config bad.yaml\n" + text)
    with pytest.raises(ConfigError) as info:
        load_config(path, Schema)
    err = info.value
    assert (err.source, err.key, err.expected, err.given) == (str(path), key, expected, given)
    msg = str(err)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: {key}: ") and f"expected {expected}, got {given}" in msg


def test_extends_merges_the_base_first_relative_to_the_file(tmp_path):
    (tmp_path / "sub").mkdir()
    write(tmp_path, "base.yaml", "seed: 1\ndata: {n: 8, kind: base}\n")
    child = write(tmp_path / "sub", "child.yaml", "extends: ../base.yaml\ndata: {n: 16}\n")
    cfg = load_config(child, Schema)
    assert (cfg.seed, cfg.data.n, cfg.data.kind) == (1, 16, "base")
    # An error in the base names the base file.
    write(tmp_path, "base.yaml", "seed: one\n")
    with pytest.raises(ConfigError, match=r"base\.yaml: seed: expected int, got 'one'"):
        load_config(child, Schema)


def test_extends_errors(tmp_path):
    write(tmp_path, "a.yaml", "extends: b.yaml\n")
    write(tmp_path, "b.yaml", "extends: a.yaml\n")
    with pytest.raises(ConfigError, match="'extends' cycle"):
        load_config(tmp_path / "a.yaml", Schema)
    write(tmp_path, "c.yaml", "extends: nowhere.yaml\n")
    with pytest.raises(ConfigError, match="nowhere.yaml' does not exist"):
        load_config(tmp_path / "c.yaml", Schema)
    write(tmp_path, "d.yaml", "seed: [1\n")
    with pytest.raises(ConfigError, match=r"d\.yaml: invalid YAML at line"):
        load_config(tmp_path / "d.yaml", Schema)


def test_set_overrides_are_yaml_and_checked(tmp_path):
    path = write(tmp_path, "ok.yaml", "data: {n: 4}\n")
    cfg = load_config(
        path,
        Schema,
        [
            "data.n=32",
            "widths=[1,2,3]",
            "sweep.seed=[0,1]",
            "train.clip_norm=null",
            "optimizer.name=sgd",
        ],
    )
    assert cfg.data.n == 32 and cfg.widths == [1, 2, 3] and cfg.sweep == {"seed": [0, 1]}
    assert cfg.train.clip_norm is None and cfg.optimizer["name"] == "sgd"
    with pytest.raises(ConfigError) as info:
        load_config(path, Schema, ["data.n=lots"])
    assert str(info.value) == "--set data.n=lots: data.n: expected int, got 'lots' (str)"
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, Schema, ["data.n"])


def test_smoke_overrides_apply_and_set_wins(tmp_path):
    path = write(tmp_path, "ok.yaml", "data: {n: 400}\n")
    smoke = {"data.n": 8, "train.steps": 3}
    assert load_config(path, Schema, smoke=smoke).data.n == 400
    cfg = load_config(path, Schema, ["smoke=true"], smoke=smoke)
    assert (cfg.data.n, cfg.train.steps) == (8, 3)
    cfg = load_config(path, Schema, ["smoke=true", "train.steps=5"], smoke=smoke)
    assert (cfg.data.n, cfg.train.steps) == (8, 5)


def test_diff_lists_changed_keys(tmp_path):
    path = write(tmp_path, "ok.yaml", "data: {n: 4}\n")
    a = load_config(path, Schema)
    b = load_config(path, Schema, ["seed=3", "data.kind=t"])
    assert diff(a, b) == {"seed": (0, 3), "data.kind": ("gauss", "t")}


def test_load_study_imports_a_script_once_and_returns_its_study(tmp_path):
    study = _studies.load("robustness")
    assert study.schema.__name__ == "RobustnessConfig"
    assert _studies.load("robustness") is study
    with pytest.raises(ConfigError, match="does not exist"):
        _studies.load("nope")
    script = tmp_path / "no_study.py"
    script.write_text("X = 1\n")
    with pytest.raises(ConfigError, match="defines no STUDY"):
        runner.load_study(script)
    notes = tmp_path / "study.txt"  # no loader for the suffix: not importable
    notes.write_text("X = 1\n")
    with pytest.raises(ConfigError, match="is not a Python file"):
        runner.load_study(notes)


def test_cli_bad_config_prints_one_line_and_exits_2(tmp_path, capsys):
    path = write(tmp_path, "bad.yaml", "data: {n: 64, dd: 3}\nlosses: [{name: l1}]\n")
    study = _studies.load("robustness")
    code = runner.main(study, ["--config", str(path), "--workdir", str(tmp_path / "w")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1
    assert err[0].startswith(f"error: {path}: ")
    assert "dd" in err[0] and not (tmp_path / "w").exists()
    code = runner.main(
        study, ["--config", str(path), "--set", "data.dd=null", "--set", "losses=[{name: l3}]"]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "unknown loss 'l3'" in err[0]


def test_cli_script_exits_2_without_a_traceback(tmp_path):
    path = write(tmp_path, "bad.yaml", "train: {steps: many}\n")
    proc = subprocess.run(
        [sys.executable, "experiments/robustness.py", "--config", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.strip() == (f"error: {path}: train.steps: expected int, got 'many' (str)")
