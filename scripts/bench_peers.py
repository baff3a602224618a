"""Benchmark l1jax's solvers against reference implementations, in one run, float64, same data.

Full run (tens of minutes on 2 cores; run it on a quiet machine):
  .venv/bin/python scripts/bench_peers.py \\
      --json docs/results/bench_peers.json --md docs/results/bench_peers.md
  (on a shared machine add --blas-threads 1: there an oversubscribed 2-thread OpenBLAS made
  statsmodels 20-30x slower, and l1jax's batched lasso path took 0.4-7 s against 0.09 s)
Smoke run (tiny sizes, seconds; the test runs this):
  .venv/bin/python scripts/bench_peers.py --quick --json /tmp/peers.json --md /tmp/peers.md
Markdown again from a JSON (runs nothing):
  .venv/bin/python scripts/bench_peers.py \\
      --render docs/results/bench_peers.json --md docs/results/bench_peers.md
Medium sizes:
  .venv/bin/python scripts/bench_peers.py --lad-sizes 10000x20 --lasso-sizes 2000x200 \\
      --quantiles-size 10000x20 --sm-levels 5 --json /tmp/peers.json --md /tmp/peers.md

Rows (``--rows``, each size configurable):

* ``lad``: median regression ``min mean|y - X b|`` (``--lad-sizes``; data as in
  bench_solvers.py: intercept column, N(0, 1) features, Laplace noise, 5% gross outliers).
  Peers: R quantreg ``rq(y ~ X - 1, tau = 0.5, method = m)`` for ``m`` in ``br`` (only up to
  ``--br-max-n``), ``fn``, ``pfn``; statsmodels ``QuantReg`` (up to ``--statsmodels-max-n``).
* ``lasso``: ``min (1/2n)||y - X b||^2 + lam ||b||_1``, no intercept, ``lam = --lam-frac *
  lam_max`` with ``lam_max = max|X^T y| / n`` (``--lasso-sizes``; N(0, 1) design, 10 nonzero
  true coefficients, N(0, 1) noise). Peers: celer, skglm and scikit-learn ``Lasso(alpha=lam,
  fit_intercept=False, tol=--peer-tol)``, R ``glmnet(X, y, lambda = lam, standardize = FALSE,
  intercept = FALSE, thresh = --glmnet-thresh)``, jaxopt ``ProximalGradient`` if installed.
  glmnet's gaussian objective is ``1/2 RSS / n + lambda ||b||_1``; it scales y internally but
  maps lambda and the coefficients back, so its ``lambda`` is l1jax's ``lam`` unchanged (the
  objectives computed here from every method's coefficients agree to the peers' tolerances).
* ``path``: the same lasso on ``--path-lambdas`` lambdas from lam_max down to
  ``--path-min-ratio * lam_max`` (geometric): one batched l1jax call (1-D ``lam``) against
  scikit-learn ``lasso_path``, ``celer_path`` and glmnet with the same lambdas (its early stop
  on the deviance ratio is turned off with ``glmnet.control(fdev = 0, devmax = 1)``).
* ``batch_lad`` and ``batch_lasso``: ``--batch-problems`` independent problems of
  ``--batch-lad-size`` (LAD data as above, one seed per problem) and ``--batch-lasso-size``
  (lasso data as above, ``lam = --lam-frac * lam_max`` of each problem), solved by one jitted
  ``jax.vmap`` of ``solvers.lad`` / ``solvers.lasso`` over the stacked problems, against each
  peer's loop over them (R ``rq`` with ``br`` and ``fn``, statsmodels; celer, scikit-learn,
  glmnet). ``rel. error`` is the worst over the problems.
* ``quantiles``: ``--quantiles-levels`` levels ``tau = 0.01 .. 0.99`` in one vmapped
  ``quantile_regression(X, y, taus)`` call against one R ``rq(y ~ X - 1, tau = taus,
  method = "fn")`` call (which loops over the levels) and statsmodels level by level, timed on
  ``--sm-levels`` levels (the centres of as many equal blocks of levels) and extrapolated (the
  table says so).

Timing. l1jax: a first call (compile and warm-up), then the best of ``--repeats``; the compile
time (first call minus best) is reported separately. Python peers: the best of
``--peer-repeats`` (a run longer than ``--peer-repeat-max-s`` is not repeated). Both go on
(up to 100 calls) while their timed calls add up to under ``--min-time`` (0.5 s), so that a
millisecond fit is the best of many calls, not of three noisy ones; skglm and jaxopt
(JIT compiled) get a warm-up call first, reported as their compile time. R: timed inside R with
``system.time(...)["elapsed"]``, so R's start-up and the data transfer (X and y written with
numpy ``tofile``, read with ``readBin``) are not counted. An untimed first call comes first
(unless it took over ``--peer-repeat-max-s``: then it is the time); ``system.time`` counts
milliseconds, so a fit under ``--r-min-time`` (0.2 s) is timed as a batch of back-to-back fits
(the mean per fit); best of ``--peer-repeats``. The R fits of a row share one R process (stopped
after ``--r-timeout``). Data are put in each library's preferred layout (a JAX array,
Fortran-ordered NumPy for the coordinate-descent solvers) before the clock starts.

Accuracy. Every method's objective is computed here in NumPy from its returned coefficients, the
same way for all; the row's reference is the lowest objective any method reached and each
method's relative error is ``(obj - best) / best`` (the worst over the lambdas or levels of the
path and quantile rows). A method above ``--target`` is marked "missed target". ``ratio`` is a
method's time over each l1jax method's time.

Machine. The load average (``os.getloadavg()``) is recorded before and after the run and around
each row, with the CPU model (lscpu), the number of usable cores and the versions of every
library, in the JSON and in the markdown header. A missing peer (ImportError, no ``Rscript`` at
``--rscript``/``$L1JAX_BENCH_RSCRIPT``, no quantreg or glmnet in R) is skipped with a message and
recorded as "skipped: ..."; the script still runs and exits 0.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from l1jax import solvers  # noqa: E402
from l1jax.solvers import _lasso, _quantile  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_solvers import make_data  # noqa: E402

DEFAULT_QUANTILE_METHODS = [m for m in _quantile.QUANTILE_METHODS if m not in ("admm", "irls")]
DEFAULT_LASSO_METHODS = [m for m in _lasso.LASSO_METHODS if m not in ("ista", "admm")]
THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "XLA_FLAGS")
PEERS = ("quantreg", "glmnet", "statsmodels", "sklearn", "celer", "skglm", "jaxopt")
QUICK = {
    "lad_sizes": "200x5",
    "lasso_sizes": "100x20",
    "path_size": "100x20",
    "path_lambdas": 10,
    "quantiles_size": "200x5",
    "quantiles_levels": 9,
    "batch_problems": 3,
    "batch_lad_size": "60x3",
    "batch_lasso_size": "40x8",
    "sm_levels": 3,
    "repeats": 2,
    "peer_repeats": 2,
    "r_min_time": 0.01,
    "min_time": 0.0,
}


class Skip(Exception):
    """A method that could not run here (missing library, R absent, timed out, failed)."""


# --------------------------------------------------------------------------------------------
# Data and objectives


lad_data = make_data  # the LAD data of bench_solvers.py: one generator for both benchmarks


def lasso_data(n, d, k=10, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    beta = np.zeros(d)
    idx = rng.choice(d, size=min(k, d), replace=False)
    beta[idx] = rng.choice([-1.0, 1.0], size=idx.size) * rng.uniform(1, 2, size=idx.size)
    y = X @ beta + rng.standard_normal(n)
    return X, y


def lam_max(X, y):
    return float(np.max(np.abs(X.T @ y)) / X.shape[0])


def pinball_obj(X, y, coef, tau):
    """Mean pinball loss; ``coef`` (d,) with scalar tau or (K, d) with tau (K,)."""
    r = y[None, :] - np.atleast_2d(coef) @ X.T
    t = np.atleast_1d(tau)[:, None]
    obj = np.mean(np.maximum(t * r, (t - 1) * r), axis=1)
    return obj if np.ndim(coef) == 2 else float(obj[0])


def lasso_obj(X, y, coef, lam):
    """Lasso objective; ``coef`` (d,) with scalar lam or (K, d) with lam (K,)."""
    c = np.atleast_2d(coef)
    r = y[None, :] - c @ X.T
    obj = 0.5 * np.mean(r * r, axis=1) + np.atleast_1d(lam) * np.sum(np.abs(c), axis=1)
    return obj if np.ndim(coef) == 2 else float(obj[0])


# --------------------------------------------------------------------------------------------
# Timing helpers


def timed(fn, repeats, max_repeat_s=math.inf, min_total_s=0.0, max_calls=100):
    """Best wall time of ``repeats`` calls, more while they add up to under ``min_total_s``
    (``max_calls`` at most); one call longer than ``max_repeat_s`` ends it."""
    best, out, k, total = math.inf, None, 0, 0.0
    while k < repeats or (total < min_total_s and k < max_calls):
        t = time.perf_counter()
        out = fn()
        t = time.perf_counter() - t
        best, k, total = min(best, t), k + 1, total + t
        if t > max_repeat_s:
            break
    return best, out, k


def l1jax_fit(fn, repeats, min_total_s=0.0):
    """(time, coef, extra) of a jitted l1jax call: first call compiles, then best of repeats
    (more while they add up to under ``min_total_s``)."""

    def run():
        return jax.block_until_ready(fn())

    t0 = time.perf_counter()
    run()
    first = time.perf_counter() - t0
    t, res, k = timed(run, repeats, min_total_s=min_total_s)
    extra = {
        "compile_s": max(first - t, 0.0),
        "repeats": k,
        "steps": int(np.max(np.asarray(res.num_steps))),
        "converged": bool(np.all(np.asarray(res.converged))),
        "gap": float(np.max(np.asarray(res.gap))),
    }
    return t, np.asarray(res.coef), extra


def peer_fit(fn, args, warmup=False):
    """(time, coef, extra) of a peer: best of --peer-repeats, after a warm-up call if asked."""
    if warmup:
        first, _, _ = timed(fn, 1)
    t, coef, k = timed(fn, args.peer_repeats, args.peer_repeat_max_s, args.min_time)
    extra = {"repeats": k}
    if warmup:
        extra["compile_s"] = max(first - t, 0.0)
    return t, np.asarray(coef, dtype=np.float64), extra


def want(args, peer):
    if peer in args.skip_peers:
        raise Skip(f"skipped: --skip-peers {peer}")


def import_peer(args, peer, module):
    want(args, peer)
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise Skip(f"skipped: {module} not importable ({e})") from None


# --------------------------------------------------------------------------------------------
# R

R_PRELUDE = r"""
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; reps <- as.integer(args[2]); max_repeat_s <- as.numeric(args[3])
n <- as.integer(args[4]); d <- as.integer(args[5]); nv <- as.integer(args[6])
min_time <- as.numeric(args[7])
rd <- function(name, len) readBin(file.path(dir, name), "double", len)
X <- matrix(rd("X.bin", n * d), nrow = n, ncol = d)
y <- rd("y.bin", n)
v <- if (nv > 0) rd("v.bin", nv) else NULL
suppressPackageStartupMessages(library(@LIB@))
@SETUP@
# system.time has millisecond resolution: a fit under min_time is timed as a batch of `number`
# back-to-back fits (the mean per fit), like Python's timeit.autorange; then best of reps.
timeit <- function(f) {
  # An untimed first call (R's lazy loading, first-call costs) unless one call is already long.
  t <- system.time(fit <- f())[["elapsed"]]
  if (t > max_repeat_s) return(list(fit = fit, best = t, k = 1, number = 1))
  number <- 1
  repeat {
    t <- system.time(for (i in seq_len(number)) fit <- f())[["elapsed"]]
    if (t >= min_time || number >= 1000) break
    number <- number * 10
  }
  best <- t / number; k <- 1
  while (k < reps && t <= max_repeat_s) {
    t <- system.time(for (i in seq_len(number)) fit <- f())[["elapsed"]]
    best <- min(best, t / number); k <- k + 1
  }
  list(fit = fit, best = best, k = k, number = number)
}
job <- function(i, f, coef_of) {
  msg <- tryCatch({
    r <- timeit(f)
    coef <- coef_of(r$fit)
    writeBin(as.double(coef), file.path(dir, sprintf("coef%d.bin", i)))
    sprintf("RESULT %d %.17g %d %d %d", i, r$best, r$k, r$number, length(coef))
  }, error = function(e) sprintf("ERROR %d %s", i, gsub("[\r\n]+", " ", conditionMessage(e))))
  cat(msg, "\n", sep = "")
  flush(stdout())
}
"""

R_PROBE = r"""
cat("R", paste(R.version$major, R.version$minor, sep = "."), "\n")
for (p in c("quantreg", "glmnet")) {
  v <- tryCatch(as.character(packageVersion(p)), error = function(e) "MISSING")
  cat(p, v, "\n")
}
cat("BLAS", basename(extSoftVersion()[["BLAS"]]), "\n")
cat("LAPACK", basename(La_library()), "\n")
"""


def probe_r(rscript):
    """{'R': version, 'quantreg': ..., 'glmnet': ...} or {'error': why}."""
    try:
        out = subprocess.run(
            [rscript, "--vanilla", "-e", R_PROBE], capture_output=True, text=True, timeout=120
        )
    except (OSError, subprocess.SubprocessError) as e:
        return {"error": f"Rscript not runnable at {rscript!r} ({type(e).__name__}: {e})"}
    if out.returncode != 0:
        return {"error": f"Rscript at {rscript!r} failed: {out.stderr.strip()[-300:]}"}
    info = {}
    for line in out.stdout.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            info[parts[0]] = parts[1]
    return info


class RBatch:
    """The R fits of one row, run in one R process (the library loads once) on first use.

    ``add`` returns a thunk for :func:`run_methods`: the first one called runs every fit of the
    batch; each returns its own (time_s, coef, extra) or raises its own Skip.
    """

    def __init__(self, args, lib, data_dir, n, d, nv, setup=""):
        self.args, self.lib, self.dir, self.n, self.d, self.nv = args, lib, data_dir, n, d, nv
        self.setup, self.jobs, self.results = setup, [], None

    def add(self, fit, coef="coef(fit)", shape=None):
        i = len(self.jobs)
        self.jobs.append((fit, coef))

        def thunk():
            if self.results is None:
                self.results = self.run()
            out = self.results[i]
            if isinstance(out, Skip):
                raise out
            t, c, extra = out
            return t, (c if shape is None else c.reshape(shape)), extra

        return thunk

    def run(self):
        args, r = self.args, self.args.r_info
        if "error" in r:
            return [Skip(f"skipped: {r['error']}")] * len(self.jobs)
        if self.lib in args.skip_peers:
            return [Skip(f"skipped: --skip-peers {self.lib}")] * len(self.jobs)
        if r.get(self.lib, "MISSING") == "MISSING":
            return [Skip(f"skipped: R package {self.lib} is not installed")] * len(self.jobs)
        prog = R_PRELUDE.replace("@LIB@", self.lib).replace("@SETUP@", self.setup)
        for i, (fit, coef) in enumerate(self.jobs):
            prog += f"job({i}L, function() {fit}, function(fit) {coef})\n"
        path = Path(self.dir) / "prog.R"
        path.write_text(prog)
        cmd = [args.rscript, "--vanilla", str(path), str(self.dir), str(args.peer_repeats)]
        cmd += [repr(args.peer_repeat_max_s), str(self.n), str(self.d), str(self.nv)]
        cmd += [repr(args.r_min_time)]
        why = None
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.r_timeout)
            stdout = out.stdout
            if out.returncode != 0:
                why = f"failed: R exited {out.returncode}: {out.stderr.strip()[-400:]}"
        except subprocess.TimeoutExpired as e:
            stdout = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
            why = f"timed out: the row's R process was stopped after {args.r_timeout:g} s"
        results = [Skip(why or "failed: R printed no result")] * len(self.jobs)
        for line in stdout.splitlines():
            parts = line.split(maxsplit=2)
            if len(parts) < 3 or parts[0] not in ("RESULT", "ERROR"):
                continue
            i = int(parts[1])
            if parts[0] == "ERROR":
                results[i] = Skip(f"failed: R error: {parts[2][:300]}")
                continue
            t, k, number, length = parts[2].split()
            c = np.fromfile(Path(self.dir) / f"coef{i}.bin", dtype=np.float64)
            if c.size != int(length):
                results[i] = Skip(f"failed: R wrote {c.size} coefficients, said {length}")
                continue
            results[i] = (float(t), c, {"repeats": int(k), "batch": int(number)})
        return results


def write_r_data(data_dir, X, y, v=None):
    # R matrices are column-major: X.T in C order is X in column-major order.
    np.ascontiguousarray(X.T, dtype=np.float64).tofile(Path(data_dir) / "X.bin")
    np.asarray(y, dtype=np.float64).tofile(Path(data_dir) / "y.bin")
    if v is not None:
        np.asarray(v, dtype=np.float64).tofile(Path(data_dir) / "v.bin")
    return 0 if v is None else np.size(v)


# --------------------------------------------------------------------------------------------
# Rows


def parse_size(s):
    n, d = s.lower().split("x")
    return int(float(n)), int(float(d))


def run_methods(methods, objective):
    """Call each (name, library, thunk) and compute its objective; a Skip becomes a status."""
    out = []
    for name, lib, thunk in methods:
        entry = {"method": name, "library": lib}
        try:
            t, coef, extra = thunk()
        except Skip as e:
            entry["status"] = str(e)
            print(f"  {name:<34} {e}", flush=True)
            out.append(entry)
            continue
        except Exception as e:  # a peer that breaks must not end the benchmark
            entry["status"] = f"failed: {type(e).__name__}: {str(e)[:300]}"
            print(f"  {name:<34} {entry['status']}", flush=True)
            out.append(entry)
            continue
        obj = objective(coef)
        if np.ndim(obj) > 0:
            obj = [None if np.isnan(o) else float(o) for o in obj]
        entry.update(time_s=t, objective=obj)
        entry.update(extra)
        out.append(entry)
        print(f"  {name:<34} {t:10.4f} s", flush=True)
    return out


def finish_row(row, args):
    """Relative errors against the best objective, status, ratios to each l1jax method."""
    done = [m for m in row["methods"] if "time_s" in m]
    objs = [np.atleast_1d(np.asarray(m["objective"], dtype=float)) for m in done]
    if not objs:
        return row
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN levels (none timed)
        best = np.nanmin(np.stack(objs), axis=0)
    row["best_objective"] = float(best[0]) if best.size == 1 else list(map(float, best))
    bases = {m["method"]: m["time_s"] for m in done if m["library"] == "l1jax"}
    for m, obj in zip(done, objs, strict=True):
        rel = (obj - best) / np.maximum(np.abs(best), np.finfo(float).tiny)
        m["rel_err"] = float(np.nanmax(rel))
        m["status"] = "ok" if m["rel_err"] <= args.target else "missed target"
        m["ratio"] = {b: m["time_s"] / tb if tb > 0 else None for b, tb in bases.items()}
    return row


def row_header(kind, n, d, extra=""):
    load = list(os.getloadavg())
    print(f"\n{kind} n={n} d={d}{extra}  (load {' '.join(f'{x:.2f}' for x in load)})", flush=True)
    return load


def bench_lad(args, n, d):
    load = row_header("LAD", n, d)
    X, y = lad_data(n, d)
    Xj, yj = jax.device_put(X), jax.device_put(y)
    methods = []
    for m in args.quantile_methods:
        methods.append(
            (
                f"l1jax lad ({m})",
                "l1jax",
                lambda m=m: l1jax_fit(
                    lambda: solvers.lad(Xj, yj, method=m), args.repeats, args.min_time
                ),
            )
        )
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        nv = write_r_data(tmp, X, y) if "error" not in args.r_info else 0
        batch = RBatch(args, "quantreg", tmp, n, d, nv)
        for m in ("br", "fn", "pfn"):
            if m == "br" and n > args.br_max_n:

                def thunk():
                    raise Skip(f"skipped: br only for n <= --br-max-n {args.br_max_n}")

            else:
                thunk = batch.add(f'rq(y ~ X - 1, tau = 0.5, method = "{m}")')
            methods.append((f"R quantreg rq ({m})", "quantreg", thunk))

        def sm():
            mod = import_peer(args, "statsmodels", "statsmodels.regression.quantile_regression")
            if n > args.statsmodels_max_n:
                raise Skip(f"skipped: statsmodels only for n <= {args.statsmodels_max_n}")
            model = mod.QuantReg(y, X)
            return peer_fit(lambda: model.fit(q=0.5, p_tol=args.statsmodels_p_tol).params, args)

        methods.append(("statsmodels QuantReg", "statsmodels", sm))
        results = run_methods(methods, lambda c: float(np.mean(np.abs(y - X @ c))))
    after = list(os.getloadavg())
    row = {"row": "lad", "n": n, "d": d, "load_before": load, "load_after": after}
    row["methods"] = results
    return finish_row(row, args)


def lasso_peers(args, X, y, lam, batch):
    """(name, library, thunk) for the single-lambda lasso peers."""
    d = X.shape[1]
    XF = np.asfortranarray(X)
    tol, max_iter = args.peer_tol, args.peer_max_iter

    def sk():
        mod = import_peer(args, "sklearn", "sklearn.linear_model")
        model = mod.Lasso(alpha=lam, fit_intercept=False, tol=tol, max_iter=max_iter)
        return peer_fit(lambda: model.fit(XF, y).coef_.copy(), args)

    def ce():
        mod = import_peer(args, "celer", "celer")
        model = mod.Lasso(alpha=lam, fit_intercept=False, tol=tol)
        return peer_fit(lambda: model.fit(XF, y).coef_.copy(), args)

    def sg():
        mod = import_peer(args, "skglm", "skglm")
        model = mod.Lasso(alpha=lam, fit_intercept=False, tol=tol)
        return peer_fit(lambda: model.fit(XF, y).coef_.copy(), args, warmup=True)

    gl = batch.add(
        f"glmnet(X, y, lambda = {lam!r}, standardize = FALSE, intercept = FALSE, "
        f"thresh = {args.glmnet_thresh!r})",
        "as.matrix(coef(fit))[-1, 1]",
    )

    def jo():
        want(args, "jaxopt")
        try:
            import jaxopt
        except ImportError as e:
            raise Skip(f"skipped: jaxopt not importable ({e})") from None
        import jax.numpy as jnp

        Xj, yj = jax.device_put(X), jax.device_put(y)

        def fun(b):
            r = yj - Xj @ b
            return 0.5 * jnp.mean(r * r)

        pg = jaxopt.ProximalGradient(
            fun=fun, prox=jaxopt.prox.prox_lasso, tol=args.peer_tol, maxiter=args.peer_max_iter
        )
        solve = jax.jit(lambda: pg.run(jnp.zeros(d), hyperparams_prox=lam).params)
        return peer_fit(lambda: np.asarray(jax.block_until_ready(solve())), args, warmup=True)

    return [
        ("celer Lasso", "celer", ce),
        ("skglm Lasso", "skglm", sg),
        ("sklearn Lasso", "sklearn", sk),
        ("R glmnet", "glmnet", gl),
        ("jaxopt ProximalGradient", "jaxopt", jo),
    ]


def bench_lasso(args, n, d):
    X, y = lasso_data(n, d)
    lam = args.lam_frac * lam_max(X, y)
    load = row_header("lasso", n, d, f" lam={lam:.4g}")
    Xj, yj = jax.device_put(X), jax.device_put(y)
    methods = []
    for m in args.lasso_methods:
        methods.append(
            (
                f"l1jax lasso ({m})",
                "l1jax",
                lambda m=m: l1jax_fit(
                    lambda: solvers.lasso(Xj, yj, lam, method=m), args.repeats, args.min_time
                ),
            )
        )
    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        nv = write_r_data(tmp, X, y) if "error" not in args.r_info else 0
        methods += lasso_peers(args, X, y, lam, RBatch(args, "glmnet", tmp, n, d, nv))
        results = run_methods(methods, lambda c: lasso_obj(X, y, c, lam))
    row = {"row": "lasso", "n": n, "d": d, "lam": lam, "lam_frac": args.lam_frac}
    row.update(load_before=load, load_after=list(os.getloadavg()), methods=results)
    return finish_row(row, args)


def bench_path(args, n, d):
    X, y = lasso_data(n, d, seed=1)
    lmax = lam_max(X, y)
    lams = lmax * np.geomspace(1.0, args.path_min_ratio, args.path_lambdas)
    K = lams.size
    load = row_header("lasso path", n, d, f" {K} lambdas")
    Xj, yj, lj = jax.device_put(X), jax.device_put(y), jax.device_put(lams)
    XF = np.asfortranarray(X)
    tol, max_iter = args.peer_tol, args.peer_max_iter
    methods = []
    for m in args.lasso_methods:
        methods.append(
            (
                f"l1jax lasso path ({m})",
                "l1jax",
                lambda m=m: l1jax_fit(
                    lambda: solvers.lasso(Xj, yj, lj, method=m), args.repeats, args.min_time
                ),
            )
        )

    def path_coefs(alphas, coefs):
        if not np.allclose(alphas, lams, rtol=1e-12, atol=0):
            raise Skip("failed: the path came back on other lambdas")
        return np.asarray(coefs).T  # (K, d)

    def sk():
        mod = import_peer(args, "sklearn", "sklearn.linear_model")

        def run():
            a, c, _ = mod.lasso_path(XF, y, alphas=lams, tol=tol, max_iter=max_iter)
            return path_coefs(a, c)

        return peer_fit(run, args)

    def ce():
        mod = import_peer(args, "celer", "celer")

        def run():
            a, c, _ = mod.celer_path(XF, y, "lasso", alphas=lams, tol=tol)
            return path_coefs(a, c)

        return peer_fit(run, args)

    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        nv = write_r_data(tmp, X, y, lams) if "error" not in args.r_info else 0
        batch = RBatch(args, "glmnet", tmp, n, d, nv, setup="glmnet.control(fdev = 0, devmax = 1)")
        gl = batch.add(
            "glmnet(X, y, lambda = v, standardize = FALSE, intercept = FALSE, "
            f"thresh = {args.glmnet_thresh!r})",
            "if (length(fit$lambda) != nv) stop('glmnet stopped the path early') "
            "else as.matrix(coef(fit))[-1, , drop = FALSE]",
            shape=(K, d),
        )

        methods += [
            ("celer celer_path", "celer", ce),
            ("sklearn lasso_path", "sklearn", sk),
            ("R glmnet (path)", "glmnet", gl),
        ]
        results = run_methods(methods, lambda c: lasso_obj(X, y, c, lams))
    row = {"row": "path", "n": n, "d": d, "lambdas": K, "min_ratio": args.path_min_ratio}
    row.update(lam_max=lmax, load_before=load, load_after=list(os.getloadavg()))
    row["methods"] = results
    return finish_row(row, args)


def _batch_r_loop(fit, coef):
    """An R expression fitting every problem of the stacked data (``B`` problems of ``n0``
    rows in ``X``, ``y``; ``v[b]`` a per-problem parameter) and returning their coefficients as
    a ``d x B`` matrix."""
    return (
        "sapply(seq_len(B), function(b) { i <- ((b - 1) * n0 + 1):(b * n0); "
        f"fit <- {fit}; {coef} }})"
    )


def bench_batch(args, kind, n, d):
    """``--batch-problems`` independent problems in one vmapped l1jax call against loops."""
    B = args.batch_problems
    load = row_header(f"batch of {B} {kind} problems", n, d)
    if kind == "lad":
        data = [lad_data(n, d, seed=b) for b in range(B)]
    else:
        data = [lasso_data(n, d, seed=b) for b in range(B)]
    Xs = np.stack([x for x, _ in data])
    ys = np.stack([y for _, y in data])
    lams = np.array([args.lam_frac * lam_max(x, y) for x, y in data])
    Xj, yj, lj = jax.device_put(Xs), jax.device_put(ys), jax.device_put(lams)
    methods = []
    if kind == "lad":
        for m in args.quantile_methods:
            fit = jax.jit(jax.vmap(lambda X, y, m=m: solvers.lad(X, y, method=m)))
            methods.append(
                (
                    f"l1jax vmap(lad) ({m})",
                    "l1jax",
                    lambda fit=fit: l1jax_fit(lambda: fit(Xj, yj), args.repeats, args.min_time),
                )
            )
    else:
        for m in args.lasso_methods:
            fit = jax.jit(jax.vmap(lambda X, y, lam, m=m: solvers.lasso(X, y, lam, method=m)))
            methods.append(
                (
                    f"l1jax vmap(lasso) ({m})",
                    "l1jax",
                    lambda fit=fit: l1jax_fit(lambda: fit(Xj, yj, lj), args.repeats, args.min_time),
                )
            )

    def loop(make):
        """A peer's loop over the problems: (time, (B, d) coefficients, extra)."""
        return peer_fit(lambda: np.stack([make(b) for b in range(B)]), args)

    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        have_r = "error" not in args.r_info
        nv = write_r_data(tmp, Xs.reshape(B * n, d), ys.reshape(-1), lams) if have_r else 0
        setup = f"B <- {B}L; n0 <- {n}L"
        if kind == "lad":
            batch = RBatch(args, "quantreg", tmp, B * n, d, nv, setup=setup)
            for m in ("br", "fn"):
                fit = f'rq(y[i] ~ X[i, ] - 1, tau = 0.5, method = "{m}")'
                rq = batch.add(_batch_r_loop(fit, "coef(fit)"), coef="fit", shape=(B, d))
                methods.append((f"R quantreg rq ({m}) loop", "quantreg", rq))

            def sm():
                mod = import_peer(args, "statsmodels", "statsmodels.regression.quantile_regression")
                p_tol = args.statsmodels_p_tol
                return loop(lambda b: mod.QuantReg(ys[b], Xs[b]).fit(q=0.5, p_tol=p_tol).params)

            methods.append(("statsmodels QuantReg loop", "statsmodels", sm))

            def objective(c):
                return np.mean(np.abs(ys - np.einsum("bnd,bd->bn", Xs, c)), axis=1)

        else:
            batch = RBatch(args, "glmnet", tmp, B * n, d, nv, setup=setup)
            fit = (
                "glmnet(X[i, ], y[i], lambda = v[b], standardize = FALSE, intercept = FALSE, "
                f"thresh = {args.glmnet_thresh!r})"
            )
            gl = batch.add(_batch_r_loop(fit, "as.matrix(coef(fit))[-1, 1]"), "fit", (B, d))
            tol, max_iter = args.peer_tol, args.peer_max_iter
            XF = [np.asfortranarray(x) for x in Xs]  # each solver's preferred layout

            def sk():
                mod = import_peer(args, "sklearn", "sklearn.linear_model")
                return loop(
                    lambda b: (
                        mod.Lasso(alpha=lams[b], fit_intercept=False, tol=tol, max_iter=max_iter)
                        .fit(XF[b], ys[b])
                        .coef_
                    )
                )

            def ce():
                mod = import_peer(args, "celer", "celer")
                return loop(
                    lambda b: (
                        mod.Lasso(alpha=lams[b], fit_intercept=False, tol=tol)
                        .fit(XF[b], ys[b])
                        .coef_
                    )
                )

            methods += [
                ("celer Lasso loop", "celer", ce),
                ("sklearn Lasso loop", "sklearn", sk),
                ("R glmnet loop", "glmnet", gl),
            ]

            def objective(c):
                r = ys - np.einsum("bnd,bd->bn", Xs, c)
                return 0.5 * np.mean(r * r, axis=1) + lams * np.sum(np.abs(c), axis=1)

        results = run_methods(methods, objective)
    row = {"row": f"batch_{kind}", "n": n, "d": d, "problems": B, "lam_frac": args.lam_frac}
    row.update(load_before=load, load_after=list(os.getloadavg()), methods=results)
    return finish_row(row, args)


def bench_quantiles(args, n, d):
    K = args.quantiles_levels
    taus = np.round(np.linspace(0.01, 0.99, K), 10)
    load = row_header("quantiles", n, d, f" {K} levels")
    X, y = lad_data(n, d, seed=1)
    Xj, yj, tj = jax.device_put(X), jax.device_put(y), jax.device_put(taus)
    methods = []
    for m in args.quantile_methods:
        methods.append(
            (
                f"l1jax quantile_regression ({m})",
                "l1jax",
                lambda m=m: l1jax_fit(
                    lambda: solvers.quantile_regression(Xj, yj, tj, method=m),
                    args.repeats,
                    args.min_time,
                ),
            )
        )
    # statsmodels: the centres of sm_levels equal blocks of the levels, each standing for its
    # block (its time is dearer at the extreme levels, where IRLS needs more steps).
    m_sm = max(1, min(args.sm_levels, K))
    levels = np.unique(((np.arange(m_sm) + 0.5) * K / m_sm).astype(int))

    def sm():
        mod = import_peer(args, "statsmodels", "statsmodels.regression.quantile_regression")
        model = mod.QuantReg(y, X)
        coef = np.full((K, d), np.nan)
        times = []
        for i in levels:
            t, c, _ = peer_fit(
                lambda i=i: model.fit(q=taus[i], p_tol=args.statsmodels_p_tol).params, args
            )
            times.append(t)
            coef[i] = c
        extra = {"levels_timed": int(levels.size), "extrapolated": bool(levels.size < K)}
        extra["taus_timed"] = [float(taus[i]) for i in levels]
        extra["level_times_s"] = times
        return sum(times) * K / levels.size, coef, extra

    with tempfile.TemporaryDirectory(prefix="bench_peers_") as tmp:
        nv = write_r_data(tmp, X, y, taus) if "error" not in args.r_info else 0
        batch = RBatch(args, "quantreg", tmp, n, d, nv)
        rq = batch.add('rq(y ~ X - 1, tau = v, method = "fn")', shape=(K, d))

        methods += [
            ("R quantreg rq (fn, tau vector)", "quantreg", rq),
            ("statsmodels QuantReg (loop)", "statsmodels", sm),
        ]

        def objective(c):
            with np.errstate(invalid="ignore"):
                return pinball_obj(X, y, c, taus)

        results = run_methods(methods, objective)
    row = {"row": "quantiles", "n": n, "d": d, "levels": K, "taus": list(map(float, taus))}
    row.update(load_before=load, load_after=list(os.getloadavg()), methods=results)
    return finish_row(row, args)


# --------------------------------------------------------------------------------------------
# Machine and report


def cpu_model():
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=30).stdout
        for line in out.splitlines():
            if line.startswith("Model name:"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.SubprocessError):
        pass
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":")[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        return platform.processor() or platform.machine()


def l1jax_commit():
    """``git describe --always --dirty`` of the checkout the script runs from, if it is one."""
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=30,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() or None) if out.returncode == 0 else None


def blas_info():
    """The BLAS and OpenMP libraries loaded in this process, their thread counts (threadpoolctl)."""
    try:
        import threadpoolctl
    except ImportError:
        return None
    return [
        {
            "api": i.get("internal_api"),
            "threads": i.get("num_threads"),
            "library": Path(i.get("filepath", "")).name,
            "version": i.get("version"),
        }
        for i in threadpoolctl.threadpool_info()
    ]


def versions(r_info):
    v = {"l1jax commit": l1jax_commit(), "python": platform.python_version()}
    dists = ("jax", "jaxlib", "numpy", "scipy", "scikit-learn", "celer", "skglm", "statsmodels")
    for dist in (*dists, "numba", "jaxopt"):
        try:
            v[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            v[dist] = None
    for key in ("R", "quantreg", "glmnet"):
        v[key] = r_info.get(key)
    v["R BLAS"] = r_info.get("BLAS")
    return v


def fmt_time(t):
    if t is None:
        return ""
    if t >= 1:
        return f"{t:.2f} s"
    if t >= 1e-3:
        return f"{t * 1e3:.1f} ms"
    return f"{t * 1e6:.0f} us"


def fmt_ratio(x):
    if x >= 100:
        return f"{x:.0f}"
    if x >= 0.1:
        return f"{x:.2f}"
    return f"{x:.2g}"


def fmt_load(load):
    return " ".join(f"{x:.2f}" for x in load)


ROW_TITLES = {
    "lad": "LAD (median regression)",
    "lasso": "Lasso, one lambda",
    "path": "Lasso path",
    "quantiles": "Quantile levels in one call",
    "batch_lad": "Independent LAD problems in one call",
    "batch_lasso": "Independent lasso problems in one call",
}


def row_caption(r):
    s = f"n = {r['n']}, d = {r['d']}"
    if r["row"] == "lasso":
        s += f", lam = {r['lam_frac']:g} lam_max = {r['lam']:.4g}"
    if r["row"] == "path":
        s += f", {r['lambdas']} lambdas from lam_max = {r['lam_max']:.4g}"
        s += f" down to {r['min_ratio']:g} lam_max"
    if r["row"] == "quantiles":
        s += f", {r['levels']} levels tau = {r['taus'][0]:g} .. {r['taus'][-1]:g}"
    if r["row"].startswith("batch_"):
        s = f"{r['problems']} problems of " + s
        if r["row"] == "batch_lasso":
            s += f", each with lam = {r['lam_frac']:g} of its lam_max"
    return s + (
        f". Load average (1, 5, 15 min) {fmt_load(r['load_before'])} before the row, "
        f"{fmt_load(r['load_after'])} after."
    )


def markdown(result):
    m, v = result["machine"], result["machine"]["versions"]
    lines = [
        "# l1jax solvers against reference implementations",
        "",
        "Generated by `scripts/bench_peers.py` (its docstring describes the data, the timing and",
        "the accuracy check); every method runs in the same process or an R child of it, float64,",
        "on the same data. Command:",
        "",
        "```",
        " ".join([".venv/bin/python scripts/bench_peers.py", *result["argv"]]),
        "```",
        "",
        f"Machine: {m['cpu']}, {m['nproc']} usable cores (os.cpu_count() {m['cpu_count']}), "
        f"{m['platform']}. Load average (1, 5, 15 min): {fmt_load(m['load_before'])} before the "
        f"run, {fmt_load(m['load_after'])} after; each table gives its own. Times are wall "
        "clock; the methods of a table ran one after another, so its ratios compare like with "
        "like as far as the load stayed steady"
        + (
            f" (a load above {m['nproc']} means other jobs shared the cores: absolute times are "
            "inflated)."
            if max(m["load_before"][0], m["load_after"][0]) > (m["nproc"] or 1)
            else "."
        ),
        "",
        (
            "Sizes: the script's defaults (the full run)."
            if result.get("full_size")
            else "Sizes: REDUCED from the script's defaults (see the command and each table); "
            "the full run is the command without size flags."
        ),
        "",
        "Versions: "
        + ", ".join(f"{k} {val}" for k, val in v.items() if val is not None)
        + "."
        + "".join(f" {k}: not installed." for k, val in v.items() if val is None),
        "",
        f"Settings: l1jax best of {result['args']['repeats']} after a compile call; peers best of "
        f"{result['args']['peer_repeats']} (one run when it takes over "
        f"{result['args']['peer_repeat_max_s']:g} s); l1jax and Python peers repeat (up to 100 "
        f"calls) while their calls add up to under {result['args'].get('min_time', 0):g} s, R "
        "averages a batch of fits under its --r-min-time; Python peers tol = "
        f"{result['args']['peer_tol']:g}, glmnet thresh = {result['args']['glmnet_thresh']:g}, "
        f"statsmodels p_tol = {result['args']['statsmodels_p_tol']:g}; target relative objective "
        f"error {result['args']['target']:g}. `rel. error` is `(obj - best) / best` with `best` "
        "the lowest objective of the table (the worst over lambdas or levels for the path and "
        "quantile tables); `ratio` is the method's time over the l1jax method's. Threads: JAX "
        "(XLA) uses every core; quantreg, glmnet and the coordinate-descent solvers run their "
        "loops on one (R's BLAS above, NumPy's for the Python peers). Thread settings in the "
        "environment: "
        + (", ".join(f"{k}={val}" for k, val in m.get("thread_env", {}).items()) or "none")
        + "; thread pools in the Python process (threadpoolctl): "
        + (
            ", ".join(
                f"{b['library']} ({b['api']}, {b['threads']} thread{'s' * (b['threads'] != 1)})"
                for b in m.get("blas") or []
            )
            or "unknown"
        )
        + (
            f" (BLAS limited with --blas-threads {result['args']['blas_threads']})"
            if result["args"].get("blas_threads")
            else ""
        )
        + ".",
        "",
    ]
    if result.get("r_status"):
        lines += [f"R: {result['r_status']}", ""]
    for r in result["rows"]:
        bases = [x["method"] for x in r["methods"] if x["library"] == "l1jax" and "time_s" in x]
        lines += [f"## {ROW_TITLES[r['row']]}: n = {r['n']}, d = {r['d']}", "", row_caption(r), ""]
        head = "| method | time | compile | " + " | ".join(f"ratio to {b}" for b in bases)
        head += " | rel. error | status |"
        lines += [head, "|" + "---|" * (5 + len(bases))]
        for x in r["methods"]:
            if "time_s" not in x:
                lines.append(f"| {x['method']} | | | " + "| " * len(bases) + f"| {x['status']} |")
                continue
            t = fmt_time(x["time_s"])
            if x.get("extrapolated"):
                taus_timed = ", ".join(f"{u:g}" for u in x.get("taus_timed", []))
                t += f" (extrapolated from {x['levels_timed']} levels: {taus_timed})"
            comp = x.get("compile_s")
            # An l1jax method dispatched to a program compiled for an earlier one compiles nothing.
            comp = "< 1 ms" if comp is not None and comp < 1e-3 else fmt_time(comp)
            ratios = " | ".join(
                "" if x["ratio"].get(b) is None else fmt_ratio(x["ratio"][b]) for b in bases
            )
            status = x["status"]
            if x["library"] == "l1jax":
                status += f"; {x['steps']} steps, converged={x['converged']}"
            lines.append(
                f"| {x['method']} | {t} | {comp} | {ratios} | {x['rel_err']:.1e} | {status} |"
            )
        lines.append("")
    return "\n".join(lines)


def parse_methods(arg, known, kind):
    names = [s for s in arg.split(",") if s] if isinstance(arg, str) else list(arg)
    keep = []
    for name in names:
        if name in known:
            keep.append(name)
        else:
            print(f"skipping unknown {kind} method {name!r} (l1jax has {', '.join(known)})")
    return keep


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny sizes for a smoke test")
    p.add_argument("--rows", default="lad,lasso,path,quantiles,batch_lad,batch_lasso")
    p.add_argument("--lad-sizes", default="10000x20,100000x50,1000000x20")
    p.add_argument("--lasso-sizes", default="2000x200,10000x1000,500x10000")
    p.add_argument("--path-size", default="2000x200")
    p.add_argument("--path-lambdas", type=int, default=100)
    p.add_argument("--path-min-ratio", type=float, default=1e-3)
    p.add_argument("--quantiles-size", default="10000x20")
    p.add_argument("--quantiles-levels", type=int, default=99)
    p.add_argument("--lam-frac", type=float, default=0.1, help="lam = LAM_FRAC * lam_max")
    p.add_argument("--batch-problems", type=int, default=100)
    p.add_argument("--batch-lad-size", default="500x10")
    p.add_argument("--batch-lasso-size", default="200x50")
    p.add_argument(
        "--quantile-methods",
        default=",".join(DEFAULT_QUANTILE_METHODS),
        help="l1jax methods for lad/quantile_regression",
    )
    p.add_argument("--lasso-methods", default=",".join(DEFAULT_LASSO_METHODS))
    p.add_argument("--skip-peers", default="", help=f"comma-separated, of: {', '.join(PEERS)}")
    p.add_argument("--br-max-n", type=int, default=10_000, help="R rq method br up to this n")
    p.add_argument("--statsmodels-max-n", type=int, default=10_000)
    p.add_argument("--statsmodels-p-tol", type=float, default=1e-6, help="statsmodels' default")
    p.add_argument("--sm-levels", type=int, default=9, help="statsmodels levels timed")
    p.add_argument("--repeats", type=int, default=3, help="l1jax timed runs (best of)")
    p.add_argument("--peer-repeats", type=int, default=3, help="peer timed runs (best of)")
    p.add_argument("--peer-repeat-max-s", type=float, default=10.0)
    p.add_argument(
        "--min-time",
        type=float,
        default=0.5,
        help="l1jax and Python peers: more timed runs while they add up to under this (s)",
    )
    p.add_argument("--peer-tol", type=float, default=1e-12, help="celer/skglm/sklearn tol")
    p.add_argument("--peer-max-iter", type=int, default=100_000, help="sklearn/jaxopt max_iter")
    p.add_argument("--glmnet-thresh", type=float, default=1e-14)
    p.add_argument("--target", type=float, default=1e-9, help="relative objective error")
    p.add_argument(
        "--rscript",
        default=os.environ.get("L1JAX_BENCH_RSCRIPT", "Rscript"),
        help="Rscript to run (default $L1JAX_BENCH_RSCRIPT or Rscript on PATH)",
    )
    p.add_argument("--r-timeout", type=float, default=3600.0, help="seconds per row's R process")
    p.add_argument(
        "--r-min-time",
        type=float,
        default=0.2,
        help="R fits shorter than this are timed in batches (system.time counts milliseconds)",
    )
    p.add_argument(
        "--blas-threads",
        type=int,
        default=None,
        help="limit this process's BLAS (NumPy's and SciPy's OpenBLAS) to this many threads; "
        "on an oversubscribed machine a spinning multi-threaded BLAS slows NumPy-based peers "
        "(statsmodels) many times over",
    )
    p.add_argument("--json", default=None, help="write the results here")
    p.add_argument("--md", default=None, help="write the markdown report here")
    p.add_argument(
        "--render",
        default=None,
        metavar="JSON",
        help="only write --md from the results in this JSON file (runs nothing)",
    )
    defaults = {a.dest: a.default for a in p._actions}
    argv = sys.argv[1:] if argv is None else list(argv)
    args = p.parse_args(argv)
    if args.render:
        result = json.loads(Path(args.render).read_text())
        md = markdown(result)
        if args.md:
            Path(args.md).write_text(md)
        else:
            print(md)
        return
    if args.quick:
        for k, val in QUICK.items():
            if getattr(args, k) == defaults[k]:  # an explicit flag still wins
                setattr(args, k, val)
    args.quantile_methods = parse_methods(
        args.quantile_methods, _quantile.QUANTILE_METHODS, "quantile"
    )
    args.lasso_methods = parse_methods(args.lasso_methods, _lasso.LASSO_METHODS, "lasso")
    args.skip_peers = [s for s in args.skip_peers.split(",") if s]
    rows = [s for s in args.rows.split(",") if s]
    for r in rows:
        if r not in ROW_TITLES:
            p.error(f"unknown row {r!r}; rows are {', '.join(ROW_TITLES)}")

    if args.blas_threads:
        try:
            import scipy.linalg  # noqa: F401  (load SciPy's BLAS too: JAX's LAPACK calls use it)
            import threadpoolctl
        except ImportError as e:
            p.error(f"--blas-threads needs threadpoolctl ({e})")
        # Held for the whole run (the object keeps the limit until it is collected).
        args._blas_limit = threadpoolctl.threadpool_limits(
            limits=args.blas_threads, user_api="blas"
        )
    load_before = list(os.getloadavg())
    resolved = shutil.which(args.rscript) or args.rscript
    args.r_info = probe_r(resolved)
    args.rscript = resolved
    r_status = None
    if "error" in args.r_info:
        r_status = f"R rows skipped: {args.r_info['error']}"
    else:
        missing = [k for k in ("quantreg", "glmnet") if args.r_info.get(k) == "MISSING"]
        if missing:
            r_status = f"R package(s) {', '.join(missing)} missing: their rows are skipped"
    if r_status:
        print(r_status)
    machine = {
        "cpu": cpu_model(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "jax_backend": jax.default_backend(),
        "thread_env": {k: os.environ.get(k) for k in THREAD_ENV if os.environ.get(k)},
        "versions": versions(args.r_info),
        "load_before": load_before,
    }
    print(f"{machine['cpu']}, {machine['nproc']} cores, load {fmt_load(load_before)}")
    print("versions:", ", ".join(f"{k} {val}" for k, val in machine["versions"].items()))

    results = []
    for r in rows:
        if r == "lad":
            results += [bench_lad(args, *parse_size(s)) for s in args.lad_sizes.split(",") if s]
        elif r == "lasso":
            results += [bench_lasso(args, *parse_size(s)) for s in args.lasso_sizes.split(",") if s]
        elif r == "path":
            results.append(bench_path(args, *parse_size(args.path_size)))
        elif r == "quantiles":
            results.append(bench_quantiles(args, *parse_size(args.quantiles_size)))
        elif r in ("batch_lad", "batch_lasso"):
            size = args.batch_lad_size if r == "batch_lad" else args.batch_lasso_size
            results.append(bench_batch(args, r.removeprefix("batch_"), *parse_size(size)))
    machine["load_after"] = list(os.getloadavg())
    machine["blas"] = blas_info()  # at the end: every peer's BLAS is loaded by now
    print(f"\nload average after: {fmt_load(machine['load_after'])}")
    saved = {k: val for k, val in vars(args).items() if k not in ("r_info", "_blas_limit")}
    sizes = ("lad_sizes", "lasso_sizes", "path_size", "path_lambdas", "quantiles_size")
    sizes += ("quantiles_levels", "sm_levels", "batch_problems", "batch_lad_size")
    sizes += ("batch_lasso_size",)
    result = {
        "argv": argv,
        "full_size": all(getattr(args, k) == defaults[k] for k in sizes),
        "args": saved,
        "machine": machine,
        "r_status": r_status,
        "rows": results,
    }
    md = markdown(result)
    print("\n" + md)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    if args.md:
        Path(args.md).write_text(md)


if __name__ == "__main__":
    main()
