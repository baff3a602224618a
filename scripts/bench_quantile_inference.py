"""Benchmark the xy-pairs bootstrap of l1jax.solvers.quantile_inference against statsmodels.

  .venv/bin/python scripts/bench_quantile_inference.py                 # B = 1000, 50 sm fits
  .venv/bin/python scripts/bench_quantile_inference.py --sm-fits 1000  # every statsmodels fit

Engel data (n = 235, food expenditure on income and an intercept), median regression, float64.
l1jax runs the B refits as one vmapped program (compile reported separately, then the best of
--repeats); statsmodels has no bootstrap, so it is the Python loop a user would write,
``QuantReg(y[i], X[i]).fit(q=tau)`` on the same resamples, timed on --sm-fits of them and
extrapolated to B. The load average is printed before and after: the machine may be shared.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
import warnings

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from l1jax import solvers  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--num-bootstrap", type=int, default=1000)
    ap.add_argument("--sm-fits", type=int, default=50)
    ap.add_argument("--tau", type=float, default=0.5)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    import statsmodels.api as sm
    from statsmodels.regression.quantile_regression import QuantReg

    data = sm.datasets.engel.load_pandas().data
    X = np.column_stack([np.ones(len(data)), data["income"].to_numpy()])
    y = data["foodexp"].to_numpy()
    n, tau, B = len(y), args.tau, args.num_bootstrap
    key = jax.random.key(0)
    print("uptime before:", subprocess.run(["uptime"], capture_output=True, text=True).stdout)

    fit = solvers.quantile_regression(X, y, tau)

    def boot():
        res = solvers.quantile_inference(
            X, y, fit, tau=tau, vcov="bootstrap", num_bootstrap=B, key=key
        )
        return jax.block_until_ready(res)

    t0 = time.perf_counter()
    res = boot()
    first = time.perf_counter() - t0
    times = []
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        boot()
        times.append(time.perf_counter() - t0)
    l1jax_s = min(times)

    # The same resamples quantile_inference draws.
    idx = np.asarray(jax.random.randint(key, (B, n), 0, n, dtype=jax.numpy.int32))
    m = min(args.sm_fits, B)
    coefs = []
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in idx[:m]:
            coefs.append(QuantReg(y[i], X[i]).fit(q=tau).params)
    sm_s = (time.perf_counter() - t0) * B / m

    print(f"B = {B}, n = {n}, d = 2, tau = {tau}, jax {jax.__version__}, {jax.devices()[0]}")
    print(
        f"l1jax bootstrap: {l1jax_s:.3f} s (best of {args.repeats}); first call with compile "
        f"{first:.1f} s; all refits certified: {bool(res.refits_converged)}"
    )
    extra = "" if m == B else f" (extrapolated from {m} fits)"
    print(f"statsmodels QuantReg loop: {sm_s:.2f} s{extra}; ratio {sm_s / l1jax_s:.0f}x")
    print(f"bootstrap SE (l1jax): {np.asarray(res.se)}")
    if m == B:
        print(f"bootstrap SE (statsmodels fits): {np.std(np.stack(coefs), axis=0, ddof=1)}")
    print("load average after:", " ".join(f"{x:.2f}" for x in os.getloadavg()))


if __name__ == "__main__":
    main()
