"""Ground-truth solvers for tests and benchmarks: LP/QP formulations solved by SciPy/scikit-learn.

SciPy (HiGHS through ``scipy.optimize.linprog``) and scikit-learn are optional: they are imported
inside each function, and a missing one raises ``ImportError`` naming the extra to install.
Everything here is NumPy in, NumPy out, float64, and not jit-able.
"""

from __future__ import annotations

import numpy as np
from jaxtyping import ArrayLike, Float64, Real

__all__ = ["lad_lp", "quantile_lp", "lasso_cd", "basis_pursuit_lp", "huber_fit"]


def _scipy():
    try:
        import scipy.optimize
        import scipy.sparse
    except ImportError as e:  # pragma: no cover - exercised only without scipy
        raise ImportError(
            "l1jax.solvers.reference needs SciPy (HiGHS LP solver): pip install 'l1jax[studies]'."
        ) from e
    return scipy.optimize, scipy.sparse


def _linprog(c, A_eq, b_eq, bounds, method="highs"):
    opt, _ = _scipy()
    res = opt.linprog(c, A_eq=A_eq, b_eq=b_eq, bounds=bounds, method=method)
    if res.status != 0:
        raise RuntimeError(f"linprog(method='highs') failed: {res.message}")
    return res.x


def quantile_lp(
    X: Real[ArrayLike, "n d"], y: Real[ArrayLike, " n"], tau: float, *, method: str = "highs"
) -> tuple[Float64[np.ndarray, " d"], float]:
    """Quantile regression as an LP solved by HiGHS; returns ``(coef, mean pinball objective)``.

    ``min tau 1^T u + (1 - tau) 1^T v  s.t.  X b + u - v = y,  u, v >= 0,  b free``.
    ``method`` is passed to ``linprog``: ``"highs"`` lets HiGHS choose (simplex here, slow past
    ``n ~ 1e4``); ``"highs-ipm"`` (interior point with crossover) is ~10x faster at ``n = 1e5``.

    References:
      - Koenker, R. and Bassett, G. (1978). Regression quantiles. Econometrica 46(1).

    Examples:
      >>> import numpy as np
      >>> from l1jax.solvers import reference
      >>> coef, objective = reference.quantile_lp(np.ones((5, 1)), np.arange(5.0), 0.8)
      >>> print(round(float(coef[0]), 6))
      3.0
    """
    _, sp = _scipy()
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    n, d = X.shape
    eye = sp.identity(n, format="csr")
    A = sp.hstack([sp.csr_matrix(X), eye, -eye], format="csc")
    c = np.concatenate([np.zeros(d), np.full(n, tau), np.full(n, 1.0 - tau)])
    bounds = [(None, None)] * d + [(0, None)] * (2 * n)
    coef = _linprog(c, A, y, bounds, method)[:d]
    r = y - X @ coef
    return coef, float(np.mean(np.maximum(tau * r, (tau - 1) * r)))


def lad_lp(
    X: Real[ArrayLike, "n d"], y: Real[ArrayLike, " n"], *, method: str = "highs"
) -> tuple[Float64[np.ndarray, " d"], float]:
    """Least absolute deviations by :func:`quantile_lp` at ``tau = 0.5``; objective ``mean|r|``.

    Examples:
      >>> import numpy as np
      >>> from l1jax.solvers import reference
      >>> coef, objective = reference.lad_lp(np.ones((3, 1)), np.array([0.0, 1.0, 5.0]))
      >>> print(round(float(coef[0]), 6), round(objective, 6))  # the median; mean |y - 1|
      1.0 1.666667
    """
    coef, obj = quantile_lp(X, y, 0.5, method=method)
    return coef, 2.0 * obj


def lasso_cd(
    X: Real[ArrayLike, "n d"], y: Real[ArrayLike, " n"], lam: float
) -> tuple[Float64[np.ndarray, " d"], float]:
    """Lasso ``(1/2n)||y - X b||^2 + lam ||b||_1`` by scikit-learn's coordinate descent.

    ``sklearn.linear_model.Lasso(alpha=lam, fit_intercept=False, tol=1e-12)`` minimises exactly
    this objective (a QP, so no LP here); ``max_iter`` is raised so that tol is what stops it.

    References:
      - Friedman, J., Hastie, T. and Tibshirani, R. (2010). Regularization paths for generalized
      - linear models via coordinate descent. J. Stat. Softw. 33(1).

    Examples:
      >>> import numpy as np
      >>> from l1jax.solvers import reference
      >>> X = np.eye(4) * 2.0  # X^T X / n = I: the solution is soft_threshold(X^T y / n, lam)
      >>> coef, objective = reference.lasso_cd(X, np.array([4.0, 1.0, 0.0, -4.0]), 0.5)
      >>> print(np.round(coef, 6).tolist())  # soft_threshold([2, 0.5, 0, -2], 0.5)
      [1.5, 0.0, 0.0, -1.5]
    """
    try:
        from sklearn.linear_model import Lasso
    except ImportError as e:  # pragma: no cover
        raise ImportError(
            "reference.lasso_cd needs scikit-learn: pip install 'l1jax[studies]'."
        ) from e
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    model = Lasso(alpha=lam, fit_intercept=False, tol=1e-12, max_iter=1_000_000)
    coef = model.fit(X, y).coef_
    obj = 0.5 * np.mean((y - X @ coef) ** 2) + lam * np.sum(np.abs(coef))
    return coef, float(obj)


def basis_pursuit_lp(
    A: Real[ArrayLike, "m n"], b: Real[ArrayLike, " m"]
) -> tuple[Float64[np.ndarray, " n"], float]:
    """Basis pursuit ``min ||x||_1 s.t. A x = b`` as an LP (``x = p - q``, ``p, q >= 0``) by HiGHS.

    References:
      - Chen, S. S., Donoho, D. L. and Saunders, M. A. (1998). Atomic decomposition by basis
      - pursuit. SIAM J. Sci. Comput. 20(1).

    Examples:
      >>> import numpy as np
      >>> from l1jax.solvers import reference
      >>> x, objective = reference.basis_pursuit_lp(np.array([[1.0, 2.0]]), np.array([2.0]))
      >>> print(np.round(x, 6).tolist(), round(objective, 6))  # the cheaper column carries b
      [0.0, 1.0] 1.0
    """
    A = np.asarray(A, np.float64)
    b = np.asarray(b, np.float64)
    n = A.shape[1]
    pq = _linprog(np.ones(2 * n), np.hstack([A, -A]), b, [(0, None)] * (2 * n))
    x = pq[:n] - pq[n:]
    return x, float(np.sum(np.abs(x)))


def huber_fit(
    X: Real[ArrayLike, "n d"], y: Real[ArrayLike, " n"], delta: float = 1.0
) -> tuple[Float64[np.ndarray, " d"], float]:
    """Huber regression ``min_b mean(huber_delta(y - X b))`` by SciPy's BFGS to ``gtol=1e-12``.

    ``huber_delta(r) = r^2 / 2`` for ``|r| <= delta``, ``delta (|r| - delta / 2)`` beyond (as
    ``l1jax.losses.huber``); ``smooth_l1`` with ``beta`` is ``huber`` with ``delta = beta``
    divided by ``beta``, so it has the same minimiser. Smooth and convex: BFGS from the least
    squares start converges to the unique minimiser of a full-rank ``X``.

    Examples:
      >>> import numpy as np
      >>> from l1jax.solvers import reference
      >>> coef, objective = reference.huber_fit(np.ones((4, 1)), np.array([0.0, 0.0, 0.0, 100.0]))
      >>> print(round(float(coef[0]), 4))  # one outlier moves the Huber location by delta/3
      0.3333
    """
    opt, _ = _scipy()
    X = np.asarray(X, np.float64)
    y = np.asarray(y, np.float64)
    if not delta > 0:
        raise ValueError(f"huber_fit: delta must be > 0, got delta={delta!r}.")

    def f(beta):
        r = X @ beta - y
        q = np.abs(r) <= delta
        val = np.where(q, 0.5 * r**2, delta * (np.abs(r) - 0.5 * delta)).mean()
        grad = X.T @ np.where(q, r, delta * np.sign(r)) / len(y)
        return val, grad

    start = np.linalg.lstsq(X, y, rcond=None)[0]
    res = opt.minimize(
        f, start, jac=True, method="BFGS", options={"gtol": 1e-12, "maxiter": 10_000}
    )
    return res.x, float(f(res.x)[0])
