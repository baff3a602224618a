"""The accelerator check: the GPU test subset, benchmarks at GPU sizes, the SR study and the full
phase transition, in that order, inside a time budget, into one results folder.

Run through ``scripts/accelerator_check.sh`` (which sets l1jax up without a package registry);
``--dry-run`` runs the same parts on the CPU at toy sizes. Each part is a subprocess that
writes its own files (a benchmark's JSON, a study's run directory); a part starts only when its
estimated time fits in what is left of the budget, and otherwise is skipped with a line saying
so. The SR study is the one part that may outlast the budget: it gets the time that is left and
is then stopped with SIGTERM, which makes it checkpoint (the runner's exit 143), so the next
call continues it (``--resume`` in the same results folder). Everything ends in
``summary.json`` and ``summary.md``; ``--archive`` also packs the folder into one ``.tar.gz``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "accelerator_check.json"

# The test files whose code paths an accelerator changes: losses and their kinks, the solvers
# and their certificates, the optimizers, the training loop's modes, the SR models and images.
DEVICE_TESTS = (
    "tests/test_losses.py",
    "tests/test_subgrad.py",
    "tests/test_prox.py",
    "tests/test_optim.py",
    "tests/test_solvers.py",
    "tests/test_certificates.py",
    "tests/test_image.py",
    "tests/test_sr_models.py",
    "tests/test_train.py",
    "tests/test_train_modes.py",
)


@dataclasses.dataclass
class Part:
    """One step of the check: a command, the seconds it is expected to take, and whether it may
    be stopped by SIGTERM at the end of the budget (a resumable study)."""

    name: str
    command: list[str]
    estimate: float
    resumable: bool = False
    env: dict[str, str] = dataclasses.field(default_factory=dict)
    # A file the part writes last: when an earlier call left it, the part is done.
    done: Path | None = None


def parts(out: Path, dry_run: bool) -> list[Part]:
    out_parts = _parts(out, dry_run)
    for part in out_parts:
        if part.name.startswith("bench_"):
            part.done = out / f"{part.name}.json"
        elif part.name != "tests":
            part.done = out / part.name / "summary.json"
    return out_parts


def _parts(out: Path, dry_run: bool) -> list[Part]:
    py = sys.executable
    if dry_run:
        # The smallest sizes that still run each part's code: compilation, not the work, is
        # most of each part's time on a CPU (tests/test_accelerator_check.py runs them all).
        return [
            Part(
                "tests",
                [py, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider"]
                + ["tests/test_subgrad.py::test_minimum_norm_derivative_at_kink"],
                30,
            ),
            Part(
                "bench_losses",
                [py, "scripts/bench_losses.py", "--log2n", "10", "--repeats", "2", "--rounds", "1"]
                + ["--out", str(out / "bench_losses.json")],
                30,
            ),
            Part(
                "bench_solvers",
                [py, "scripts/bench_solvers.py", "--ns", "100", "--ds", "3", "--repeats", "1"]
                + ["--quantiles-n", "100", "--quantiles-d", "3", "--sm-levels", "2"]
                + ["--out", str(out / "bench_solvers.json")],
                60,
            ),
            Part(
                "bench_sr",
                # Width 3: the head, body and tail convolutions share one weight shape.
                [py, "scripts/bench_sr.py", "--width", "3", "--depth", "1", "--batch", "2"]
                + ["--patch", "8", "--steps", "1", "--rounds", "1", "--warmup", "1", "--no-torch"]
                + ["--out", str(out / "bench_sr.json")],
                30,
            ),
            Part(
                "sr_study",
                [py, "experiments/super_resolution.py", "--config"]
                + ["configs/super_resolution/smoke.yaml", "--set", "train.steps=8"]
                + ["--set", "train.steps_per_call=4", "--set", "train.checkpoint_every=4"]
                # One small image each for training and test (no MS-SSIM: it needs 161 px).
                + ["--set", "data.train=[astronaut]", "--set", "data.train_crop=64"]
                + ["--set", "data.test=[chelsea]", "--set", "data.test_crop=48"]
                + ["--set", "figure_crop=16"]
                # L2 and L2 -> L1: a loss and a warm start, the study's two kinds of run.
                + [
                    "--set",
                    "losses=[{name: mse, label: l2}, {name: l1, label: l2_to_l1, "
                    "switch_from: {name: mse}, switch_at: 0.5}]",
                ]
                + ["--workdir", str(out / "sr_study"), "--resume"],
                60,
                resumable=True,
            ),
            Part(
                "phase_transition",
                [py, "experiments/phase_transition.py", "--config"]
                + [
                    "configs/phase_transition/smoke.yaml",
                    "--workdir",
                    str(out / "phase_transition"),
                ]
                + ["--set", "grid.n=20", "--set", "grid.num_delta=3", "--set", "grid.num_rho=3"]
                + ["--set", "grid.trials=2", "--set", "reference_checks=2", "--resume"],
                40,
            ),
        ]
    return [
        # Highest matmul precision: the tests check float32 results against references, which
        # TF32 (the GPU default for float32 matmuls) would miss by design, not by a bug.
        Part(
            "tests",
            [py, "-m", "pytest", "-q", "-p", "no:cacheprovider", *DEVICE_TESTS],
            150,
            env={"JAX_DEFAULT_MATMUL_PRECISION": "highest"},
        ),
        Part(
            "bench_losses",
            [
                py,
                "scripts/bench_losses.py",
                "--log2n",
                "26",
                "--out",
                str(out / "bench_losses.json"),
            ],
            40,
        ),
        Part(
            "bench_solvers",
            [py, "scripts/bench_solvers.py", "--ns", "1000000,10000000", "--ds", "20"]
            + ["--sklearn-max-n", "0", "--statsmodels-max-n", "0", "--linprog-max-n", "0"]
            + ["--out", str(out / "bench_solvers.json")],
            90,
        ),
        Part("bench_sr", [py, "scripts/bench_sr.py", "--out", str(out / "bench_sr.json")], 40),
        Part(
            "sr_study",
            [
                py,
                "experiments/super_resolution.py",
                "--config",
                "configs/super_resolution/study.yaml",
            ]
            + ["--workdir", str(out / "sr_study"), "--resume"],
            120,  # the least worth starting; it continues on the next call
            resumable=True,
        ),
        Part(
            "phase_transition",
            [
                py,
                "experiments/phase_transition.py",
                "--config",
                "configs/phase_transition/full.yaml",
            ]
            + ["--workdir", str(out / "phase_transition"), "--resume"],
            180,
        ),
    ]


def _prepare(out: Path) -> dict:
    """The results folder: new, empty, or an earlier check's (which it continues)."""
    marker = out / MARKER
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not marker.exists())):
        print(
            f"error: --out {out} holds files this check did not write; use a new or empty folder",
            file=sys.stderr,
        )
        raise SystemExit(2)
    out.mkdir(parents=True, exist_ok=True)
    return json.loads(marker.read_text()) if marker.exists() else {"calls": []}


def _run(part: Part, out: Path, seconds: float) -> tuple[int | None, float, str]:
    """Runs one part with at most ``seconds``; returns (exit code, seconds taken, how it ended)."""
    log = out / f"{part.name}.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **part.env}
    t0 = time.monotonic()
    with open(log, "a") as f:
        f.write(f"$ {shlex.join(part.command)}\n")
        f.flush()
        proc = subprocess.Popen(
            part.command,
            cwd=ROOT,
            stdout=f,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        try:
            code = proc.wait(timeout=max(seconds, 1.0))
            how = "done" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            # A resumable study checkpoints on SIGTERM and exits 143; anything else is stopped too.
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                code = proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
            how = (
                "paused at the end of the budget (checkpointed; the next call continues it)"
                if part.resumable and code == 143
                else f"stopped at the end of the budget (exit {code})"
            )
    return code, time.monotonic() - t0, how


def _tail(path: Path, lines: int = 3) -> list[str]:
    try:
        return [line for line in path.read_text(errors="replace").splitlines() if line.strip()][
            -lines:
        ]
    except OSError:
        return []


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument(
        "--budget", type=float, default=480.0, help="seconds for all parts (default 480)"
    )
    p.add_argument("--out", default=str(ROOT / "runs" / "accelerator_check"))
    p.add_argument("--dry-run", action="store_true", help="the same parts on the CPU at toy sizes")
    p.add_argument("--only", default=None, help="comma-separated part names to run")
    p.add_argument("--archive", default=None, help="also write the folder as this .tar.gz")
    args = p.parse_args(argv)
    if not args.budget > 0:
        print(f"error: --budget must be > 0 seconds, got {args.budget}", file=sys.stderr)
        raise SystemExit(2)
    out = Path(args.out).resolve()
    state = _prepare(out)

    import jax

    backend = jax.default_backend()
    if not args.dry_run and backend == "cpu":
        print("warning: no accelerator is visible to JAX; the parts run on the CPU", flush=True)
    start = time.monotonic()
    wanted = None if args.only is None else set(args.only.split(","))
    results = []
    for part in parts(out, args.dry_run):
        if wanted is not None and part.name not in wanted:
            continue
        left = args.budget - (time.monotonic() - start)
        if left < part.estimate:
            need = f"needs about {part.estimate:.0f} s, {max(left, 0):.0f} s left"
            print(f"{part.name}: skipped: {need}", flush=True)
            results.append({"part": part.name, "status": "skipped", "seconds": 0.0})
            continue
        if part.done is not None and part.done.exists():
            print(f"{part.name}: done in an earlier call ({part.done.name})", flush=True)
            results.append({"part": part.name, "status": "done earlier", "seconds": 0.0})
            continue
        print(f"{part.name}: running (at most {left:.0f} s) ...", flush=True)
        code, took, how = _run(part, out, left)
        print(f"{part.name}: {how} in {took:.0f} s", flush=True)
        for line in _tail(out / f"{part.name}.log"):
            print(f"    {line}", flush=True)
        results.append({"part": part.name, "status": how, "exit": code, "seconds": round(took, 1)})
    call = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"),
        "dry_run": args.dry_run,
        "budget_s": args.budget,
        "backend": backend,
        "devices": [str(d) for d in jax.devices()],
        "jax": jax.__version__,
        "python": platform.python_version(),
        "load_average": list(os.getloadavg()),
        "parts": results,
    }
    state["calls"].append(call)
    (out / MARKER).write_text(json.dumps(state, indent=1) + "\n")
    rows = ["| part | status | seconds |", "|---|---|---|"]
    rows += [f"| {r['part']} | {r['status']} | {r['seconds']} |" for r in results]
    (out / "summary.md").write_text(
        f"# Accelerator check, {call['time']}\n\n{backend}: {', '.join(call['devices'])}; "
        f"jax {call['jax']}; budget {args.budget:.0f} s\n\n" + "\n".join(rows) + "\n"
    )
    (out / "summary.json").write_text(json.dumps(call, indent=1) + "\n")
    print("\n".join(["", *rows, "", f"results in {out}/"]), flush=True)
    if args.archive:
        with tarfile.open(args.archive, "w:gz") as tar:
            tar.add(out, arcname=out.name)
        print(f"archive: {args.archive}", flush=True)
    failed = [r for r in results if r["status"].startswith(("failed", "stopped"))]
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
