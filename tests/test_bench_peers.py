"""scripts/bench_peers.py --quick: every row runs at toy sizes and writes its JSON and markdown;
l1jax's objectives agree with each peer that ran here (R, celer, scikit-learn, statsmodels, where
installed); with R hidden its rows say skipped and the script still exits 0.

skglm is skipped here (its numba compile alone takes about 15 s); l1jax runs one method per
solver (each method is one more compile)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_peers.py"
ROWS = ["lad", "lasso", "path", "quantiles", "batch_lad", "batch_lasso"]
# Relative objective difference allowed between l1jax and an exact peer (LP solvers, coordinate
# descent at tol 1e-12, glmnet at thresh 1e-14), and statsmodels' IRLS (p_tol 1e-6).
EXACT_TOL, STATSMODELS_TOL = 1e-7, 1e-4


def bench(tmp_path, *extra, env=None, timeout=300):
    out_json, out_md = tmp_path / "peers.json", tmp_path / "peers.md"
    cmd = [sys.executable, str(SCRIPT), "--quick", "--json", str(out_json), "--md", str(out_md)]
    cmd += ["--quantile-methods", "ipm", "--lasso-methods", "fista", "--skip-peers", "skglm"]
    cmd += ["--blas-threads", "1"]  # a multi-threaded BLAS crawls on a loaded 2-core machine
    env = dict(os.environ if env is None else env)
    env.pop("XLA_FLAGS", None)  # conftest's eight host devices: the script runs as a user's would
    proc = subprocess.run(
        [*cmd, *extra], cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=env
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return json.loads(out_json.read_text()), out_md.read_text(), proc.stdout


def objectives(method):
    return np.atleast_1d(np.asarray(method["objective"], dtype=float))


@pytest.fixture(scope="module")
def quick(tmp_path_factory):
    return bench(tmp_path_factory.mktemp("peers"))


@pytest.mark.slow
def test_every_row_runs_and_l1jax_agrees_with_each_peer(quick):
    result, md, _ = quick
    assert [r["row"] for r in result["rows"]] == ROWS
    compared = 0
    for row in result["rows"]:
        assert len(row["load_before"]) == 3 and len(row["load_after"]) == 3
        methods = {m["method"]: m for m in row["methods"]}
        l1jax = [m for m in row["methods"] if m["library"] == "l1jax"]
        assert len(l1jax) == 1, row["methods"]
        ours = l1jax[0]
        assert ours["converged"] and ours["rel_err"] <= 1e-8, ours
        assert ours["time_s"] > 0 and ours["compile_s"] >= 0 and ours["status"] == "ok"
        assert ours["ratio"] == {ours["method"]: 1.0}
        ref = objectives(ours)
        for name, m in methods.items():
            assert m["status"], m
            if m["library"] == "l1jax" or "time_s" not in m:
                assert m["library"] == "l1jax" or m["status"].startswith("skipped"), m
                continue
            obj = objectives(m)
            seen = ~np.isnan(obj)  # statsmodels is timed on some of the quantile levels only
            assert seen.any(), m
            diff = np.max(np.abs(obj[seen] - ref[seen]) / ref[seen])
            tol = STATSMODELS_TOL if m["library"] == "statsmodels" else EXACT_TOL
            assert diff <= tol, (row["row"], name, diff)
            assert m["ratio"][ours["method"]] == pytest.approx(m["time_s"] / ours["time_s"])
            compared += 1
    assert compared >= 4  # statsmodels and scikit-learn come with l1jax[test]
    machine = result["machine"]
    assert machine["cpu"] and machine["nproc"] >= 1
    assert len(machine["load_before"]) == 3 and len(machine["load_after"]) == 3
    assert machine["versions"]["jax"] and machine["versions"]["numpy"]
    blas = [b for b in machine["blas"] if b["api"] in ("openblas", "mkl", "blis")]
    assert blas and all(b["threads"] == 1 for b in blas), machine["blas"]
    assert "Load average" in md and "| l1jax lad (ipm) |" in md
    assert md.count("\n## ") == len(ROWS)


@pytest.mark.slow
def test_r_rows_ran_where_r_is_installed(quick):
    result, _, _ = quick
    r = result["machine"]["versions"]
    rows = {row["row"]: {m["library"]: m for m in row["methods"]} for row in result["rows"]}
    pairs = [("quantreg", "lad"), ("glmnet", "lasso"), ("glmnet", "path")]
    pairs += [("quantreg", "batch_lad"), ("glmnet", "batch_lasso")]
    for lib, row in pairs:
        m = rows[row][lib]
        if r.get(lib) in (None, "MISSING"):
            assert m["status"].startswith("skipped"), m
        else:
            assert m["status"] == "ok", m


def test_hidden_r_is_skipped_and_the_run_succeeds(tmp_path):
    env = dict(os.environ, L1JAX_BENCH_RSCRIPT=str(tmp_path / "nonexistent" / "Rscript"))
    # No l1jax method (nothing to compile): the R skip does not depend on it. Later flags win.
    extra = ["--rows", "lasso", "--lasso-methods", "", "--skip-peers", "skglm,celer"]
    result, md, stdout = bench(tmp_path, *extra, env=env)
    assert "R rows skipped" in stdout and result["r_status"].startswith("R rows skipped")
    (row,) = result["rows"]
    methods = {m["method"]: m for m in row["methods"]}
    assert methods["R glmnet"]["status"].startswith("skipped: Rscript not runnable")
    assert methods["celer Lasso"]["status"] == "skipped: --skip-peers celer"
    assert methods["sklearn Lasso"]["status"] == "ok" and "l1jax lasso (fista)" not in methods
    assert "skipped: Rscript not runnable" in md
    assert result["machine"]["versions"]["R"] is None
    again = tmp_path / "again.md"
    cmd = [sys.executable, str(SCRIPT), "--render", str(tmp_path / "peers.json")]
    cmd += ["--md", str(again)]
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True, timeout=120)
    assert again.read_text() == md
