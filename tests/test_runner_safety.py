"""Hostile and careless input to the runner's command line: every case ends with one line on
stderr and its exit code, never a traceback, never a hang, never a lost or foreign file."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import _studies
import pytest
from _runner_tasks import TASK, TinyConfig
from _runner_tasks import study as tiny_study

from l1jax import runner
from l1jax.runner import ConfigError, Problem, Task, checkpoint, train
from l1jax.runner.config import load_config
from l1jax.runner.registry import MODELS

REPO = Path(__file__).resolve().parents[1]
ROBUSTNESS_SMOKE = str(REPO / "configs" / "robustness" / "smoke.yaml")
SR_SMOKE = str(REPO / "configs" / "super_resolution" / "smoke.yaml")
TINY = "optimizer: {name: adam, learning_rate: 0.2}\nschedule: {name: cosine}\n"


def _env() -> dict[str, str]:
    """The environment for a script that imports the tests' helpers."""
    path = os.pathsep.join(p for p in (str(REPO / "tests"), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONPATH": path}


def cli(study, argv, capsys) -> tuple[int, list[str]]:
    """Runs the CLI in-process; an exception escaping it (a traceback) fails the test."""
    code = runner.main(study, argv)
    err = capsys.readouterr().err.strip().splitlines()
    return code, err


def assert_one_line(code, err, expected_code, pattern):
    assert code == expected_code, (code, err)
    assert len(err) == 1, err
    assert "Traceback" not in err[0]
    assert re.search(pattern, err[0]), err[0]


# --- bad values, found before any work (the robustness study's smoke config) ----------------

ROBUSTNESS_CASES = [
    # (--set arguments, exit code, regex on the one stderr line)
    (["train.steps=["], 2, r"--set train\.steps=\[: train\.steps: cannot parse the value"),
    (
        ["optimizer.learning_rate=fast"],
        2,
        r"optimizer\.learning_rate: expected a number > 0, got 'fast'",
    ),
    (["optimizer.learning_rate=-0.1"], 2, r"optimizer\.learning_rate: expected a number > 0"),
    (
        ["sweep.optimizer.learning_rate=[0.1, -0.1]"],
        2,
        r"sweep\.optimizer\.learning_rate: the swept value -0\.1",
    ),
    (["data.n=0"], 2, r": data: contaminated_linear: n must be an int >= 1, got n=0"),
    (["data.n=-8"], 2, r": data: contaminated_linear: n must be an int >= 1, got n=-8"),
    (["data.d=0"], 2, r": data: contaminated_linear: d must be an int >= 1"),
    (
        ["sweep={seed: [0]}", "data.fraction=1.5"],
        2,
        r": data: contaminated_linear: fraction must lie in \[0\.0, 1\.0\], got fraction=1\.5",
    ),
    (["data.noise=-1"], 2, r": data: contaminated_linear: noise must lie in \[0\.0, inf\)"),
    (
        ["sweep.data.fraction=[0.0, 1.5]"],
        2,
        r"sweep\.data\.fraction: contaminated_linear: fraction must lie in \[0\.0, 1\.0\]",
    ),
    (
        ["data.outliers=sideways"],
        2,
        r"data: .*outliers expected one of 'response', 'leverage', got 'sideways'",
    ),
    (["losses=[{name: huber, delta: -1}]"], 2, r"losses\[0\]: huber: delta must lie in \(0"),
    (
        ["losses=[{name: pinball, tau: 1.5}]", "reference=false"],
        2,
        r"losses\[0\]: pinball: tau must lie in \(0\.0, 1\.0\)",
    ),
    (
        ["losses=[{name: pinball, tau: 0.5}]"],
        2,
        r"losses\[0\]\.name: the study has no exact minimiser",
    ),
    (["sweep.seed=[0, 4294967296]"], 2, r"sweep\.seed: seeds are int32 .*got 4294967296"),
    (["sweep.seed=[0, 0]"], 2, r"sweep\.seed: each value once"),
    (
        ["data.fraction=0.3"],
        2,
        r"--set data\.fraction=0\.3: data\.fraction: also set by the sweep "
        r"\(sweep\.data\.fraction: \[0\.0, 0\.2, 0\.4\]\)",
    ),
    (
        ["data={name: contaminated_linear, n: 64, d: 5, fraction: 0.1}"],
        2,
        r": data: also set by the sweep \(sweep\.data\.fraction",
    ),
    (
        ["losses=[{name: mse, label: '${oc.env:HOME}'}]"],
        2,
        r"losses\[0\]\.label: interpolation \(\$\{\.\.\.\}\) is not supported",
    ),
    (
        ["distributed.enabled=true", "distributed.coordinator_address=localhost:1"],
        2,
        r"distributed\.num_processes: set all three",
    ),
]


@pytest.mark.parametrize(
    "overrides, code, pattern",
    ROBUSTNESS_CASES,
    ids=[" ".join(c[0])[:40] for c in ROBUSTNESS_CASES],
)
def test_bad_values_fail_before_any_work(overrides, code, pattern, tmp_path, capsys):
    study = _studies.load("robustness")
    workdir = tmp_path / "w"
    argv = ["--config", ROBUSTNESS_SMOKE, "--workdir", str(workdir)]
    for o in overrides:
        argv += ["--set", o]
    got, err = cli(study, argv, capsys)
    assert_one_line(got, err, code, pattern)
    assert not workdir.exists()


@pytest.mark.parametrize("label", ["/some/dir", "../../x", "a/b", "", ".hidden", "..", "a\\b"])
def test_loss_labels_that_are_paths_are_refused(label, tmp_path, capsys):
    study = _studies.load("super_resolution")
    argv = [
        "--config",
        SR_SMOKE,
        "--workdir",
        str(tmp_path / "w"),
        "--set",
        f"losses=[{{name: mse, label: {json.dumps(label)}}}]",
    ]
    code, err = cli(study, argv, capsys)
    assert_one_line(code, err, 2, r"losses\[0\]\.label: names a file in the workdir")
    assert not (tmp_path / "w").exists()


# --- hostile config files ---------------------------------------------------------------------

SECRET = "root:x:0:0:secret-content:/root:/bin/bash\nuser:x:1000:1000::/home/user:/bin/sh\n"


def _write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data)
    return path


def _passwd(tmp):
    _write(tmp / "passwd", SECRET)
    return "extends: passwd\n"


def _directory(tmp):
    (tmp / "adir").mkdir()
    return "extends: adir\n"


def _binary(tmp):
    _write(tmp / "blob.yaml", bytes(range(256)) * 4)
    return "extends: blob.yaml\n"


def _laughs(tmp):
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    return "\n".join(lines) + "\n"


def _big(tmp):
    _write(tmp / "big.yaml", "seed: 0\n" + "# padding\n" * (50 * 2**20 // 10))
    return "extends: big.yaml\n"


FILE_CASES = [
    # (id, config text (or a function of the folder returning it), exit code, regex, absent)
    (
        "extends-passwd",
        _passwd,
        2,
        r"passwd: <top level>: expected a mapping, got a str$",
        "secret-content",
    ),
    ("extends-directory", _directory, 2, r"'.*adir' is a directory, not a YAML file", None),
    ("extends-binary", _binary, 2, r"blob\.yaml' is not a text \(UTF-8\) file", None),
    ("extends-device", "extends: /dev/zero\n", 2, r"'/dev/zero' is not a regular file", None),
    (
        "interpolation",
        "loss: {name: '${oc.env:HOME}'}\n",
        2,
        r"loss\.name: interpolation \(\$\{\.\.\.\}\) is not supported",
        None,
    ),
    ("interpolation-env", TINY + "seed: ${oc.env:PATH}\n", 2, r"seed: interpolation", None),
    (
        "alias",
        TINY + "base: &b {name: mse}\nloss: *b\n",
        2,
        r"invalid YAML at line \d+: anchors and aliases",
        None,
    ),
    (
        "nested-too-deep",
        "seed: " + "[" * 100_000 + "\n",
        2,
        r"nested too deeply|invalid YAML",
        None,
    ),
    ("top-level-list", "- 1\n- 2\n", 2, r"<top level>: expected a mapping, got a list$", None),
]


@pytest.mark.parametrize(
    "case_id, text, code, pattern, absent", FILE_CASES, ids=[c[0] for c in FILE_CASES]
)
def test_hostile_config_files(case_id, text, code, pattern, absent, tmp_path, capsys):
    if callable(text):
        text = text(tmp_path)
    path = _write(tmp_path / "bad.yaml", text)
    got, err = cli(tiny_study(), ["--config", str(path), "--workdir", str(tmp_path / "w")], capsys)
    assert_one_line(got, err, code, pattern)
    if absent:
        assert absent not in err[0]
    assert not (tmp_path / "w").exists()


@pytest.mark.parametrize("make", [_laughs, _big], ids=["billion-laughs", "50MB"])
def test_alias_bombs_and_huge_files_fail_fast_in_a_script(make, tmp_path):
    path = _write(tmp_path / "bomb.yaml", make(tmp_path))
    t0 = time.time()
    proc = subprocess.run(
        [
            sys.executable,
            "experiments/robustness.py",
            "--config",
            str(path),
            "--workdir",
            str(tmp_path / "w"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert re.search(r"anchors and aliases|a config is at most", lines[0]), lines
    assert time.time() - t0 < 90


def test_distributed_without_a_cluster_is_one_line(tmp_path):
    path = _write(tmp_path / "d.yaml", TINY)
    script = _tiny_script(tmp_path)
    proc = subprocess.run(
        [
            sys.executable,
            str(script),
            "--config",
            str(path),
            "--workdir",
            str(tmp_path / "w"),
            "--set",
            "distributed.enabled=true",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=_env(),
    )
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "distributed.enabled: jax.distributed.initialize failed" in lines[0]


# --- --set semantics --------------------------------------------------------------------------


def test_set_mapping_replaces_and_dotted_key_changes_one_field():
    study = _studies.load("super_resolution")
    cfg = load_config(SR_SMOKE, study.schema, smoke=study.smoke)
    assert cfg.model["name"] == "srcnn" and "width" in cfg.model  # the premise: SRCNN keywords
    cfg = load_config(SR_SMOKE, study.schema, ["model={name: espcn}"], smoke=study.smoke)
    assert cfg.model == {"name": "espcn"}
    # A schema section is reset to its defaults, then given the fields.
    cfg = load_config(
        ROBUSTNESS_SMOKE,
        _studies.load("robustness").schema,
        ["train={steps: 7}", "optimizer.learning_rate=0.5"],
    )
    assert cfg.train.steps == 7 and cfg.train.log_every == 10  # TrainConfig's default
    assert cfg.optimizer == {"name": "adam", "learning_rate": 0.5}
    cfg = load_config(
        ROBUSTNESS_SMOKE,
        _studies.load("robustness").schema,
        ["sweep={}", "data.fraction=0.3"],
    )
    assert cfg.sweep == {} and cfg.data["fraction"] == 0.3 and cfg.data["n"] == 512
    # Values are YAML, with 1e-3 a float as in YAML 1.2 (PyYAML alone reads a string).
    cfg = load_config(
        ROBUSTNESS_SMOKE,
        _studies.load("robustness").schema,
        ["optimizer.learning_rate=1e-3", "losses=[{name: huber, delta: 2E-1}]"],
    )
    assert cfg.optimizer["learning_rate"] == 1e-3 and cfg.losses == [
        {"name": "huber", "delta": 0.2}
    ]


def test_switching_the_sr_model_picks_up_its_defaults():
    study = _studies.load("super_resolution")
    cfg = runner.load_study_config(study, SR_SMOKE, ["model={name: espcn}"])
    assert cfg.model == {"name": "espcn"}


# --- workdirs ---------------------------------------------------------------------------------


def _tiny_config(tmp_path, text=TINY):
    return str(_write(tmp_path / "tiny.yaml", text))


def _finished_run(tmp_path, capsys) -> tuple[list[str], Path]:
    workdir = tmp_path / "run"
    argv = ["--config", _tiny_config(tmp_path), "--workdir", str(workdir)]
    code, _ = cli(tiny_study(), argv, capsys)
    assert code == 0
    return argv, workdir


def test_workdir_that_is_a_file(tmp_path, capsys):
    target = _write(tmp_path / "afile", "mine\n")
    code, err = cli(
        tiny_study(), ["--config", _tiny_config(tmp_path), "--workdir", str(target)], capsys
    )
    assert_one_line(code, err, 2, r"--workdir .*afile is a file, not a directory")
    assert target.read_text() == "mine\n"


def test_unrelated_non_empty_workdir_is_refused(tmp_path, capsys):
    mine = tmp_path / "mine"
    _write(mine / "summary.json", "{}\n")
    _write(mine / "metrics.jsonl", '{"mine": 1}\n')
    _write(mine / ".x.tmp", "keep\n")
    for extra in ([], ["--resume"], ["--overwrite"]):
        code, err = cli(
            tiny_study(),
            ["--config", _tiny_config(tmp_path), "--workdir", str(mine), *extra],
            capsys,
        )
        assert_one_line(
            code,
            err,
            2,
            r"holds files the runner did not write \(.x.tmp, "
            r"metrics.jsonl, summary.json\)",
        )
    assert sorted(p.name for p in mine.iterdir()) == [".x.tmp", "metrics.jsonl", "summary.json"]
    assert (mine / "metrics.jsonl").read_text() == '{"mine": 1}\n'


def test_overwrite_never_deletes_a_users_directory(tmp_path, capsys):
    mine = tmp_path / "mine"
    _write(mine / "config.yaml", "seed: 1\n")
    _write(mine / "notes.txt", "notes\n")
    _write(mine / "data" / "x.csv", "1,2\n")
    argv = ["--config", _tiny_config(tmp_path), "--workdir", str(mine), "--overwrite"]
    code, err = cli(tiny_study(), argv, capsys)
    assert_one_line(
        code, err, 2, r"holds files the runner did not write \(config.yaml, data/, notes.txt\)"
    )
    assert sorted(p.relative_to(mine).as_posix() for p in mine.rglob("*")) == [
        "config.yaml",
        "data",
        "data/x.csv",
        "notes.txt",
    ]


def test_overwrite_removes_only_what_the_runner_wrote(tmp_path, capsys):
    argv, workdir = _finished_run(tmp_path, capsys)
    manifest = json.loads((workdir / runner.workdir.MANIFEST).read_text())
    assert manifest["study"] == "tiny_runner_test"
    assert {"config.yaml", "summary.json", "metrics.jsonl", "checkpoints"} <= set(manifest["paths"])
    _write(workdir / "notes.txt", "my notes\n")
    _write(workdir / "data" / "x.csv", "1,2\n")
    _write(workdir / "checkpoints" / "main" / "mine.txt", "mine\n")
    code, err = cli(tiny_study(), [*argv, "--overwrite"], capsys)
    assert_one_line(
        code,
        err,
        2,
        r"--overwrite removes only what the runner wrote: .* also "
        r"holds checkpoints/main/mine.txt, data/, notes.txt",
    )
    assert (workdir / "summary.json").exists() and (workdir / "notes.txt").exists()
    # Resuming a run of the same study is allowed with the user's files beside it.
    code, _ = cli(tiny_study(), [*argv, "--resume"], capsys)
    assert code == 0
    (workdir / "notes.txt").unlink()
    (workdir / "checkpoints" / "main" / "mine.txt").unlink()
    (workdir / "data" / "x.csv").unlink()
    (workdir / "data").rmdir()
    code, err = cli(tiny_study(), [*argv, "--overwrite"], capsys)
    assert code == 0 and (workdir / "summary.json").exists()


def test_a_run_from_before_manifests_resumes(tmp_path, capsys):
    argv, workdir = _finished_run(tmp_path, capsys)
    # What such a run left: no manifest, no learning curve, config.yaml headed by the command
    # of experiments/<study>.py.
    (workdir / runner.workdir.MANIFEST).unlink()
    (workdir / "learning_curve.png").unlink()
    config = (workdir / "config.yaml").read_text().split("\n", 1)[1]
    _write(
        workdir / "config.yaml", f"# python experiments/tiny_runner_test.py --config x\n{config}"
    )
    _write(workdir / "plot.png", "png")
    code, err = cli(tiny_study(), [*argv, "--resume"], capsys)
    assert code == 0, err
    # Adopted: the manifest claims the files every run writes, not the plot.
    code, err = cli(tiny_study(), [*argv, "--overwrite"], capsys)
    assert_one_line(code, err, 2, r"also holds plot.png")


def test_overwrite_keeps_foreign_folders_the_runner_did_not_create(tmp_path, capsys):
    argv, workdir = _finished_run(tmp_path, capsys)
    _write(workdir / "plots" / "old.png", "png")
    code, err = cli(tiny_study(), [*argv, "--overwrite"], capsys)
    assert_one_line(code, err, 2, r"also holds plots/")
    assert (workdir / "plots" / "old.png").read_text() == "png"


def test_garbage_config_yaml_in_the_workdir(tmp_path, capsys):
    argv, workdir = _finished_run(tmp_path, capsys)
    (workdir / "config.yaml").write_bytes(b"\x00\x01garbage: [")
    code, err = cli(tiny_study(), [*argv, "--resume"], capsys)
    assert_one_line(code, err, 2, r"cannot resume .*: its config.yaml is missing or damaged")


def test_damaged_manifest(tmp_path, capsys):
    argv, workdir = _finished_run(tmp_path, capsys)
    (workdir / runner.workdir.MANIFEST).write_text("{not json")
    code, err = cli(tiny_study(), [*argv, "--overwrite"], capsys)
    assert_one_line(code, err, 2, r"manifest.json is damaged")
    assert (workdir / "summary.json").exists()


def test_damaged_checkpoint_in_the_workdir(tmp_path, capsys):
    argv, workdir = _finished_run(tmp_path, capsys)
    ckpts = checkpoint.all_checkpoints(workdir / "checkpoints" / "main")
    newest = ckpts[-1].path
    newest.write_bytes(b"garbage" * 10)
    code, err = cli(tiny_study(), [*argv, "--resume"], capsys)
    assert_one_line(
        code,
        err,
        2,
        rf"the checkpoint .*step_0*{ckpts[-1].step}\.\* is damaged "
        rf"\(.*\); the newest good one is step {ckpts[-2].step}",
    )
    assert ckpts[-2].path.exists()  # the last good checkpoint is kept


def test_garbage_checkpoint_with_a_matching_sidecar(tmp_path, capsys):
    argv, workdir = _finished_run(tmp_path, capsys)
    ckpt = checkpoint.latest(workdir / "checkpoints" / "main")
    checkpoint.save(
        ckpt.path.parent, ckpt.step + 1, {"not": 1.0}, config_sha256=ckpt.metadata["config_sha256"]
    )
    code, err = cli(tiny_study(), [*argv, "--resume"], capsys)
    assert_one_line(code, err, 2, r"cannot restore the checkpoint .*; delete it")


@pytest.mark.parametrize(
    "err_no, pattern",
    [
        (
            errno.ENOSPC,
            r"cannot write in .*: No space left on device.*; the last good checkpoint "
            r"is kept",
        ),
        (errno.EROFS, r"cannot write in .*: Read-only file system"),
    ],
)
def test_full_disk_or_read_only_workdir(err_no, pattern, tmp_path, capsys, monkeypatch):
    workdir = tmp_path / "run"
    argv = ["--config", _tiny_config(tmp_path), "--workdir", str(workdir)]
    real_save = checkpoint.save

    def save(directory, step, tree, **metadata):
        if step > 20:  # the first checkpoint (step 20) goes through, the next does not
            raise OSError(err_no, os.strerror(err_no), str(directory))
        return real_save(directory, step, tree, **metadata)

    monkeypatch.setattr(checkpoint, "save", save)
    code, err = cli(tiny_study(), argv, capsys)
    assert_one_line(code, err, runner.EXIT_OS, pattern)
    good = checkpoint.latest(workdir / "checkpoints" / "main")
    assert good is not None and good.step == 20


def test_read_only_workdir_at_start(tmp_path, capsys, monkeypatch):
    import l1jax.runner.checkpoint as ck

    def refuse(*args, **kwargs):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES), str(tmp_path / "run"))

    monkeypatch.setattr(ck.tempfile, "mkstemp", refuse)
    code, err = cli(
        tiny_study(),
        ["--config", _tiny_config(tmp_path), "--workdir", str(tmp_path / "run")],
        capsys,
    )
    assert_one_line(code, err, runner.EXIT_OS, r"cannot write in .*: Permission denied")


def test_sweep_conflict_names_both_keys(tmp_path, capsys):
    path = _tiny_config(tmp_path, TINY + "sweep: {seed: [0, 1]}\n")
    code, err = cli(tiny_study(), ["--config", path, "--set", "seed=3"], capsys)
    assert_one_line(code, err, 2, r"--set seed=3: seed: also set by the sweep \(sweep\.seed")


# --- a user's own study: errors in building the run ------------------------------------------


@dataclasses.dataclass
class UserConfig(TinyConfig):
    model: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "linear"})


def _user_init(cfg, key):
    problem = TASK.init(cfg, key)
    return problem._replace(params=MODELS.build(cfg.model, in_features=3, key=key))


USER_TASK = Task(init=_user_init, loss=TASK.loss, evaluate=TASK.evaluate)


def _user_run(cfg, run):
    return {"coef_error": float(run.train(USER_TASK).evals["coef_error"])}


def user_study():
    return runner.Study(name="user_study_test", schema=UserConfig, run=_user_run)


def test_user_study_build_error_is_one_line_and_the_workdir_is_reusable(tmp_path, capsys):
    workdir = tmp_path / "run"
    argv = ["--config", _tiny_config(tmp_path), "--workdir", str(workdir)]
    code, err = cli(user_study(), [*argv, "--set", "model={name: linear, widht: 3}"], capsys)
    assert_one_line(
        code,
        err,
        2,
        r"building the run failed: TypeError: model 'linear' got an "
        r"unexpected keyword 'widht'.*\(--debug shows the traceback\)",
    )
    assert checkpoint.latest(workdir / "checkpoints" / "main") is None
    with pytest.raises(ConfigError, match="widht"):
        runner.main(user_study(), [*argv, "--set", "model={name: linear, widht: 3}", "--debug"])
    capsys.readouterr()
    # The corrected command reuses the workdir without --overwrite or --resume.
    code, err = cli(user_study(), argv, capsys)
    assert code == 0, err
    assert json.loads((workdir / "summary.json").read_text())["coef_error"] < 1


# --- signals and metrics ----------------------------------------------------------------------


def _tiny_script(tmp_path) -> Path:
    """The tiny study as a script whose training pauses after each host call from step 20."""
    return _write(
        tmp_path / "tiny_study.py",
        (
            "import sys, time\n"
            "import _runner_tasks\n"
            "from l1jax import runner\n"
            "def pause(step, state):\n"
            "    if step >= 20:\n"
            "        print('checkpointed', flush=True)\n"
            "        time.sleep(0.5)\n"
            "def run(cfg, r):\n"
            "    r.train(_runner_tasks.TASK, hooks=[pause])\n"
            "    return {}\n"
            "study = runner.Study(name='tiny_runner_test', schema=_runner_tasks.TinyConfig,\n"
            "                         run=run)\n"
            "raise SystemExit(runner.main(study, sys.argv[1:]))\n"
        ),
    )


def test_sigterm_checkpoints_and_exits_143(tmp_path):
    script = _tiny_script(tmp_path)
    config = _tiny_config(tmp_path)
    workdir = tmp_path / "run"
    proc = subprocess.Popen(
        [sys.executable, str(script), "--config", config, "--workdir", str(workdir)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
    )
    try:
        assert proc.stdout.readline().strip() == "checkpointed"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == runner.EXIT_TERMINATED, stderr
    assert "Traceback" not in stderr
    assert re.search(
        r"terminated \(SIGTERM\): interrupted at step \d+ of 60; checkpoint saved", stderr
    )
    assert "--resume" in stderr
    step = checkpoint.latest(workdir / "checkpoints" / "main").step
    assert 20 <= step < 60


def test_kill_before_the_first_checkpoint_leaves_no_duplicate_lines(tmp_path):
    from _runner_tasks import config

    class Killed(Exception):
        pass

    def kill(step, state):
        if step >= 16:
            raise Killed

    with pytest.raises(Killed):
        train(TASK, config(), workdir=tmp_path, hooks=[kill])
    assert checkpoint.latest(tmp_path / "checkpoints" / "main") is None
    train(TASK, config(), workdir=tmp_path)
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in lines if "loss" in r]
    assert steps == [10, 20, 30, 40, 50, 60]


@pytest.mark.parametrize(
    "damage, pattern",
    [
        ("delete", r"warning: resuming the run from step 40 but .*metrics.jsonl is missing"),
        ("garbage", r"warning: .*metrics.jsonl: dropped 2 damaged line\(s\)"),
        ("empty", r"warning: resuming the run from step 40 but .*metrics.jsonl has no line of it"),
    ],
)
def test_missing_or_damaged_metrics_on_resume_is_reported(damage, pattern, tmp_path, capsys):
    from _runner_tasks import config

    def stop(step, state):
        if step >= 45:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(TASK, config(), workdir=tmp_path, hooks=[stop])
    ckpts = checkpoint.all_checkpoints(tmp_path / "checkpoints" / "main")
    for c in ckpts[1:]:  # back to step 40
        if c.step > 40:
            c.path.unlink()
            c.path.with_suffix(".json").unlink()
    metrics = tmp_path / "metrics.jsonl"
    if damage == "delete":
        metrics.unlink()
    elif damage == "garbage":
        lines = metrics.read_text().splitlines()
        metrics.write_text("\n".join([lines[0], "{torn", lines[1], "\x00\x01", *lines[2:]]) + "\n")
    else:
        metrics.write_text("")
    capsys.readouterr()
    train(TASK, config(), workdir=tmp_path)
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(pattern, err[0]), err


def test_tags_are_checked_by_train(tmp_path):
    from _runner_tasks import config

    for tag in ("../x", "/abs", "a/b"):
        with pytest.raises(ConfigError, match="tag: names a file in the workdir"):
            train(TASK, config(), workdir=tmp_path, tag=tag)
    assert not any(tmp_path.iterdir())


def test_train_build_error_is_a_config_error():
    from _runner_tasks import config

    def bad_init(cfg, key):
        return Problem(params=MODELS.build({"name": "linear", "widht": 3}, in_features=3, key=key))

    with pytest.raises(ConfigError, match="building the run failed: TypeError"):
        train(Task(init=bad_init, loss=TASK.loss), config())
