"""Quantile regression of food expenditure on income (Engel's 235 Belgian households), with
standard errors and 95% confidence intervals.

One call fits every level (``tau`` is a vector); ``quantile_inference`` gives the Huber
sandwich standard errors (``vcov="robust"``, Hall-Sheather bandwidth), as R's
``summary(rq(...), se = "nid")`` and statsmodels' ``QuantReg`` do. The Engel data come with
statsmodels (``pip install statsmodels``).

    python examples/engel_quantiles.py
"""

import jax
import jax.numpy as jnp
import numpy as np

from l1jax import solvers

TAUS = (0.1, 0.25, 0.5, 0.75, 0.9)


def load_engel():
    try:
        from statsmodels.datasets import engel
    except ImportError as err:  # pragma: no cover - a message, not a traceback
        raise SystemExit("this example reads the Engel data from statsmodels") from err
    data = engel.load_pandas().data
    X = np.column_stack([np.ones(len(data)), data["income"].to_numpy()])
    return X, data["foodexp"].to_numpy()


def main(argv=None):
    del argv
    X, y = load_engel()
    with jax.enable_x64(True):  # LP vertices to float64 accuracy
        taus = jnp.array(TAUS)
        fit = solvers.quantile_regression(X, y, taus)
        inf = solvers.quantile_inference(X, y, fit, tau=taus)
        assert bool(jnp.all(fit.converged))
        rows = []
        print(" tau  intercept   slope    se(slope)  95% CI of the slope")
        for i, tau in enumerate(TAUS):
            b0, b1 = (float(c) for c in inf.coef[i])
            se, lo, hi = float(inf.se[i, 1]), float(inf.ci_lower[i, 1]), float(inf.ci_upper[i, 1])
            rows.append((tau, b0, b1, se, lo, hi))
            print(f"{tau:4.2f}  {b0:9.3f}  {b1:6.4f}  {se:9.4f}  [{lo:.4f}, {hi:.4f}]")
    return rows


if __name__ == "__main__":
    main()
