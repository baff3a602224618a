"""The influence of each observation on the fitted coefficients, ``d coef / d y_i``, under outliers.

Data: ``l1jax.datasets.contaminated_linear`` (``y = x . w + b + noise e`` with a fraction of gross
outliers that follow a second linear model, in ``y`` only or, with ``outliers: leverage``, also
with ``x`` scaled up), design ``X = [1, x]`` (an intercept column and ``d`` features, ``p = d + 1``
coefficients). For each estimator the Jacobian ``J = d coef / d y`` (``p x n``) is computed by JAX:

* least squares: ``jnp.linalg.lstsq`` differentiated by JAX; in closed form
  ``J = (X^T X)^{-1} X^T``, which does not depend on ``y``: every observation moves the fit, by an
  amount set by its leverage alone;
* least absolute deviations (``solvers.lad``) and quantile regression at ``tau``
  (``solvers.quantile_regression``): the solvers' implicit derivative. The solution is a vertex
  ``coef = X_B^{-1} y_B`` through ``p`` observations ``B`` (zero residuals), so ``J_B = X_B^{-1}``
  and every other column is exactly zero: moving any other response changes nothing as long as its
  residual keeps its sign (optimality of a vertex depends only on the residuals' signs);
* Huber regression (``min_b mean huber_delta(y - X b)``, ``delta = huber.k * data.noise``, a fixed
  scale): solved in JAX by IRLS and a few safeguarded Newton steps, then differentiated by
  ``jax.lax.custom_root`` through its optimality condition ``X^T psi(y - X b) = 0``,
  ``psi = clip(., -delta, delta)``: ``J = (X^T W X)^{-1} X^T W`` with ``W = diag(|r_i| <= delta)``,
  so observations with ``|r_i| > delta`` (the outliers, and a few clean ones) have exactly zero
  influence and the others the least-squares influence of the inlier fit.

Identities the study checks: ``J X = I_p`` for all four (regression equivariance:
``coef(y + X c) = coef(y) + c``), hence ``J 1 = e_0`` with the intercept column
(``sum_i d coef / d y_i`` is the intercept's unit vector; at a LAD or quantile vertex it is
``X_B^{-1} 1_B``, for least squares ``(X^T X)^{-1} X^T 1``); ``coef = J y`` for least squares,
LAD and quantile regression (estimators positively homogeneous in ``y``: Euler's identity), so
``coef - truth = J (y - X truth) = sum_i J_i e_i`` splits their coefficient error exactly into the
observations' contributions ``J_i e_i`` (``e_i`` the error of observation ``i`` under the clean
model; for Huber, whose ``delta`` is fixed, it is a first-order picture only); and ``J`` against
central finite differences of each solver in ``y_i`` at a few observations.

References:
  Hampel, F. R., Ronchetti, E. M., Rousseeuw, P. J. and Stahel, W. A. (1986). Robust Statistics:
    The Approach Based on Influence Functions. Wiley.
  Koenker, R. (2005). Quantile Regression. Cambridge University Press, sec. 2.2 (the vertex
    solutions) and 3.2 (regression equivariance).
  Huber, P. J. (1973). Robust regression: asymptotics, conjectures and Monte Carlo. Ann. Statist.
    1(5).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from l1jax import datasets, runner, solvers
from l1jax.runner import ConfigError, StudyConfig
from l1jax.solvers import reference

OUTLIERS = ("response", "leverage")
METHODS = ("least_squares", "lad", "quantile", "huber")
LABELS = {
    "least_squares": "least squares",
    "lad": "LAD",
    "quantile": "quantile",
    "huber": "Huber",
}


@dataclasses.dataclass
class DataConfig:
    n: int = 200
    d: int = 5
    fraction: float = 0.1
    noise: float = 0.1
    # response (gross errors in y) or leverage (also x scaled by `leverage` on outlier rows).
    outliers: str = "response"
    outlier_scale: float = 10.0
    leverage: float = 10.0


@dataclasses.dataclass
class HuberConfig:
    # delta = k * data.noise (the clean noise SD, known here): 1.345 gives 95% efficiency
    # at Gaussian noise.
    k: float = 1.345
    irls_steps: int = 200
    newton_steps: int = 10


@dataclasses.dataclass
class InfluenceConfig(StudyConfig):
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    # Quantile level of the quantile-regression fit.
    tau: float = 0.25
    huber: HuberConfig = dataclasses.field(default_factory=HuberConfig)
    # J's columns checked against central finite differences of the solvers, at this many
    # observations (the first ones of each method's non-zero columns, then of its zero columns).
    fd_checks: int = 4
    fd_step: float = 1e-6


SMOKE = {"data.n": 80, "data.d": 3, "fd_checks": 2}


def validate(cfg: InfluenceConfig) -> None:
    d, h = cfg.data, cfg.huber
    if d.outliers not in OUTLIERS:
        raise ConfigError(
            key="data.outliers", expected=f"one of {OUTLIERS}", given=repr(d.outliers)
        )
    for key, value, low in (
        ("data.d", d.d, 1),
        ("data.n", d.n, d.d + 2),
        ("huber.irls_steps", h.irls_steps, 1),
        ("huber.newton_steps", h.newton_steps, 0),
        ("fd_checks", cfg.fd_checks, 0),
    ):
        if isinstance(value, bool) or value < low:
            raise ConfigError(key=key, expected=f"an int >= {low}", given=repr(value))
    if not 0 <= d.fraction < 0.5:
        raise ConfigError(key="data.fraction", expected="in [0, 0.5)", given=repr(d.fraction))
    for key, value in (
        ("data.noise", d.noise),
        ("data.leverage", d.leverage),
        ("huber.k", h.k),
        ("fd_step", cfg.fd_step),
    ):
        if not value > 0:
            raise ConfigError(key=key, expected="> 0", given=repr(value))
    if not d.outlier_scale >= 0:
        raise ConfigError(key="data.outlier_scale", expected=">= 0", given=repr(d.outlier_scale))
    if not 0 < cfg.tau < 1:
        raise ConfigError(key="tau", expected="in (0, 1)", given=repr(cfg.tau))


# --- the estimators (JAX, differentiable in y) -------------------------------------------------


def least_squares(X: jax.Array, y: jax.Array) -> jax.Array:
    return jnp.linalg.lstsq(X, y)[0]


def lad(X: jax.Array, y: jax.Array) -> jax.Array:
    return solvers.lad(X, y).coef


def quantile(X: jax.Array, y: jax.Array, tau: float) -> jax.Array:
    return solvers.quantile_regression(X, y, tau).coef


def _huber_grad(X, y, b, delta):
    """``-X^T psi(y - X b) / n``: the gradient of ``mean huber_delta(y - X b)`` in ``b``."""
    return -X.T @ jnp.clip(y - X @ b, -delta, delta) / X.shape[0]


def huber_solve(X, y, delta, *, irls_steps: int, newton_steps: int):
    """Huber regression: IRLS (weights ``min(1, delta / |r|)``, a monotone descent) from least
    squares, then Newton steps on the active set ``|r| <= delta`` (exact once it is right), each
    kept only if it lowers the gradient norm. Returns ``coef`` and ``||gradient||_inf``."""

    def irls(_, b):
        w = delta / jnp.maximum(jnp.abs(y - X @ b), delta)
        return jnp.linalg.solve((X.T * w[None, :]) @ X, (X.T * w[None, :]) @ y)

    def newton(_, b):
        r = y - X @ b
        w = (jnp.abs(r) <= delta).astype(X.dtype)
        b_new = b + jnp.linalg.solve((X.T * w[None, :]) @ X, X.T @ jnp.clip(r, -delta, delta))
        g_old = jnp.max(jnp.abs(_huber_grad(X, y, b, delta)))
        g_new = jnp.max(jnp.abs(_huber_grad(X, y, b_new, delta)))
        keep = jnp.all(jnp.isfinite(b_new)) & (g_new <= g_old)
        return jnp.where(keep, b_new, b)

    b = jax.lax.fori_loop(0, irls_steps, irls, jnp.linalg.lstsq(X, y)[0])
    b = jax.lax.fori_loop(0, newton_steps, newton, b)
    return b, jnp.max(jnp.abs(_huber_grad(X, y, b, delta)))


def huber(X, y, delta, *, irls_steps: int = 200, newton_steps: int = 10) -> jax.Array:
    """Huber coefficients, differentiable in ``X`` and ``y`` through ``X^T psi(y - X b) = 0``.

    ``jax.lax.custom_root`` differentiates the root of ``f(b) = _huber_grad(X, y, b, delta)``
    implicitly in the values ``f`` closes over: ``d b = -(df/db)^{-1} (df/dy dy + df/dX dX)``,
    ``df/db = X^T W X / n``; the iterations are never differentiated.
    """
    sg = jax.lax.stop_gradient

    def solve(f, b0):
        del f, b0
        b, _ = huber_fit(sg(X), sg(y), delta, irls_steps=irls_steps, newton_steps=newton_steps)
        return b

    def tangent_solve(g, v):
        return jnp.linalg.solve(jax.jacobian(g)(v), v)

    b0 = jnp.zeros(X.shape[1], X.dtype)
    return jax.lax.custom_root(lambda b: _huber_grad(X, y, b, delta), b0, solve, tangent_solve)


@jax.jit
def _ls_jacobian(X, y):
    return jax.jacrev(least_squares, argnums=1)(X, y)


_STEPS = ("irls_steps", "newton_steps")


@functools.partial(jax.jit, static_argnames=_STEPS)
def huber_fit(X, y, delta, *, irls_steps, newton_steps):
    """Compiled :func:`huber_solve`: ``(coef, ||gradient||_inf)``."""
    return huber_solve(X, y, delta, irls_steps=irls_steps, newton_steps=newton_steps)


@functools.partial(jax.jit, static_argnames=_STEPS)
def huber_jacobian(X, y, delta, *, irls_steps, newton_steps):
    """``d coef / d y`` of :func:`huber` (reverse mode through ``custom_root``)."""
    steps = {"irls_steps": irls_steps, "newton_steps": newton_steps}
    return jax.jacrev(lambda y: huber(X, y, delta, **steps))(y)


def _huber_kw(cfg: InfluenceConfig) -> dict[str, Any]:
    h = cfg.huber
    return {"irls_steps": h.irls_steps, "newton_steps": h.newton_steps}


def coef_fn(cfg: InfluenceConfig, method: str):
    """``(X, y) -> coef`` of one estimator (the Huber fit without its custom derivative)."""
    if method == "least_squares":
        return least_squares
    if method == "lad":
        return lad
    if method == "quantile":
        return lambda X, y: quantile(X, y, cfg.tau)
    delta = cfg.huber.k * cfg.data.noise
    return lambda X, y: huber_fit(X, y, delta, **_huber_kw(cfg))[0]


def jacobians(cfg: InfluenceConfig, X: jax.Array, y: jax.Array) -> dict[str, np.ndarray]:
    """``d coef / d y`` (``p x n``) of each estimator."""
    delta = cfg.huber.k * cfg.data.noise
    return {
        "least_squares": np.asarray(_ls_jacobian(X, y)),
        # Eager jacrev: lad and quantile regression share the solver's compiled programs (lad
        # is the tau = 0.5 quantile), and so do the finite differences.
        "lad": np.asarray(jax.jacrev(lambda y: lad(X, y))(y)),
        "quantile": np.asarray(jax.jacrev(lambda y: quantile(X, y, cfg.tau))(y)),
        "huber": np.asarray(huber_jacobian(X, y, delta, **_huber_kw(cfg))),
    }


# --- the study -----------------------------------------------------------------------------------


def run(cfg: InfluenceConfig, run: runner.Run) -> dict[str, Any]:
    d = cfg.data
    with jax.enable_x64(True):
        data, truth = datasets.contaminated_linear(
            jax.random.key(cfg.seed),
            n=d.n,
            d=d.d,
            fraction=d.fraction,
            noise=d.noise,
            outliers=d.outliers,
            outlier_scale=d.outlier_scale,
            leverage=d.leverage,
        )
        X = jnp.concatenate([jnp.ones((d.n, 1)), data["x"]], axis=1)
        y = data["y"]
        coefs = {m: np.asarray(coef_fn(cfg, m)(X, y)) for m in METHODS}
        jac = jacobians(cfg, X, y)
        fd = {m: finite_differences(cfg, m, X, y, jac[m]) for m in METHODS}
        X_np, y_np = np.asarray(X), np.asarray(y)
    outlier = np.asarray(data["outlier"])
    beta = np.r_[float(truth["bias"]), np.asarray(truth["weight"])]
    delta = cfg.huber.k * d.noise
    p = X_np.shape[1]
    errors = y_np - X_np @ beta  # each observation's error under the true (clean) model

    methods = {}
    for m in METHODS:
        J, coef = jac[m], coefs[m]
        norms = np.linalg.norm(J, axis=0)
        nonzero = ~np.all(J == 0.0, axis=0)
        resid = y_np - X_np @ coef
        contrib = J * errors  # column i: observation i's share of J e
        row = {
            "coef": coef.tolist(),
            "coef_error": float(np.linalg.norm(coef - beta)),
            "nonzero_columns": int(nonzero.sum()),
            "exactly_zero_columns": int((~nonzero).sum()),
            "outliers_with_influence": int(nonzero[outlier].sum()),
            "influence_mean_outliers": float(norms[outlier].mean()) if outlier.any() else None,
            "influence_mean_clean": float(norms[~outlier].mean()),
            "influence_max": float(norms.max()),
            "argmax_is_outlier": bool(outlier[int(np.argmax(norms))]),
            # J X = I (equivariance), J 1 = e_0 (intercept), coef = J y (homogeneity).
            "max_abs_JX_minus_I": float(np.max(np.abs(J @ X_np - np.eye(p)))),
            "column_sum": J.sum(axis=1).tolist(),
            "max_abs_coef_minus_Jy": float(np.max(np.abs(coef - J @ y_np))),
            "error_from_outliers": float(np.linalg.norm(contrib[:, outlier].sum(axis=1))),
            "error_from_clean": float(np.linalg.norm(contrib[:, ~outlier].sum(axis=1))),
            "contribution_share_outliers": float(
                np.abs(contrib[:, outlier]).sum() / max(np.abs(contrib).sum(), 1e-300)
            ),
            "finite_difference": fd[m],
        }
        if m in ("lad", "quantile"):
            basis = np.nonzero(nonzero)[0]
            XB = X_np[basis]
            row["basis"] = basis.tolist()
            row["basis_max_abs_residual"] = float(np.max(np.abs(resid[basis])))
            row["max_abs_JB_minus_XB_inverse"] = (
                float(np.max(np.abs(J[:, basis] - np.linalg.inv(XB)))) if len(basis) == p else None
            )
            row["XB_inverse_ones"] = (
                (np.linalg.inv(XB) @ np.ones(p)).tolist() if len(basis) == p else None
            )
        if m == "least_squares":
            row["max_abs_J_minus_pinv"] = float(np.max(np.abs(J - np.linalg.pinv(X_np))))
        if m == "huber":
            inl = np.abs(resid) <= delta
            W = inl.astype(float)
            closed = np.linalg.solve((X_np.T * W) @ X_np, X_np.T * W)
            ref, _ = reference.huber_fit(X_np, y_np, delta)
            row["delta"] = delta
            row["inliers"] = int(inl.sum())
            row["nonzero_columns_are_inliers"] = bool(np.array_equal(nonzero, inl))
            row["max_abs_J_minus_closed_form"] = float(np.max(np.abs(J - closed)))
            row["max_abs_coef_minus_scipy"] = float(np.max(np.abs(coef - ref)))
            row["gradient_norm"] = float(
                np.max(np.abs(X_np.T @ np.clip(resid, -delta, delta))) / d.n
            )
        run.log({"tag": "method", "method": m, **{k: v for k, v in row.items() if np.isscalar(v)}})
        methods[m] = row

    summary = {
        "n": d.n,
        "d": d.d,
        "p": p,
        "outliers": d.outliers,
        "num_outliers": int(outlier.sum()),
        "outlier_rows": np.nonzero(outlier)[0].tolist(),
        "tau": cfg.tau,
        "truth": beta.tolist(),
        "methods": methods,
    }
    _plot(run, cfg, summary, jac, outlier, errors)
    return summary


def finite_differences(cfg, method, X, y, J) -> list[dict[str, Any]]:
    """Central differences of the solver in ``y_i`` against ``J[:, i]`` at ``fd_checks`` rows:
    half from the non-zero columns of ``J``, half from the zero ones (fewer if there are none)."""
    if cfg.fd_checks == 0:
        return []
    fn = coef_fn(cfg, method)
    nonzero = np.nonzero(~np.all(J == 0.0, axis=0))[0]
    zero = np.nonzero(np.all(J == 0.0, axis=0))[0]
    half = (cfg.fd_checks + 1) // 2
    rows = [*nonzero[:half], *zero[: cfg.fd_checks - half]]
    rows = [*rows, *nonzero[half : half + cfg.fd_checks - len(rows)]]
    h = cfg.fd_step
    out = []
    for i in rows:
        e = jnp.zeros_like(y).at[int(i)].set(h)
        fd = (np.asarray(fn(X, y + e)) - np.asarray(fn(X, y - e))) / (2 * h)
        out.append(
            {
                "row": int(i),
                "jacobian_column_zero": bool(np.all(J[:, i] == 0.0)),
                "max_abs_error": float(np.max(np.abs(fd - J[:, i]))),
                "column_norm": float(np.linalg.norm(J[:, i])),
            }
        )
    return out


def _plot(run, cfg, summary, jac, outlier, errors):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    n = summary["n"]
    idx = np.arange(n)
    fig, axes = plt.subplots(len(METHODS), 2, figsize=(11, 2.0 * len(METHODS)), sharex=True)
    for row, m in zip(axes, METHODS, strict=True):
        J = jac[m]
        norms = np.linalg.norm(J, axis=0)
        contrib = np.linalg.norm(J * errors, axis=0)
        res = summary["methods"][m]
        label = LABELS[m] + (f" (tau={cfg.tau:g})" if m == "quantile" else "")
        for ax, vals, what in (
            (row[0], norms, "||d coef / d y_i||"),
            (row[1], contrib, "||d coef / d y_i|| |e_i|"),
        ):
            for mask, color, name in (
                (~outlier, "tab:blue", "clean"),
                (outlier, "tab:red", "outlier"),
            ):
                ax.vlines(idx[mask], 0, vals[mask], color=color, lw=1.0, label=name)
            zero = vals == 0
            ax.plot(
                idx[zero & ~outlier], np.zeros(int((zero & ~outlier).sum())), "_", color="0.6", ms=3
            )
            ax.plot(
                idx[zero & outlier],
                np.zeros(int((zero & outlier).sum())),
                "x",
                color="tab:red",
                ms=3,
            )
            ax.set_ylabel(what, fontsize=8)
        row[0].set_title(
            f"{label}: {res['nonzero_columns']} of {n} observations move the fit "
            f"({res['outliers_with_influence']} of {summary['num_outliers']} outliers)",
            fontsize=9,
        )
        row[1].set_title(
            f"{label}: contribution to coef - truth (outliers' share "
            f"{res['contribution_share_outliers']:.2f})",
            fontsize=9,
        )
    axes[0, 0].legend(fontsize=7, loc="upper right")
    for ax in axes[-1]:
        ax.set_xlabel("observation i (red: outlier; x: outlier with zero influence)")
    fig.suptitle(
        f"contaminated_linear, {summary['outliers']} outliers: n={n}, p={summary['p']} "
        f"(intercept + {summary['d']}), {summary['num_outliers']} outliers",
        fontsize=10,
    )
    fig.tight_layout()
    run.save_figure(fig, "influence.png", dpi=90)


def headline(summary: dict[str, Any]) -> list[str]:
    """How many observations move each fit, and how many of them are outliers."""
    ms = summary["methods"]
    parts = [
        f"{LABELS[m]} {ms[m]['nonzero_columns']} ({ms[m]['outliers_with_influence']} outliers)"
        for m in METHODS
    ]
    return [
        f"observations with non-zero d coef / d y_i, of n = {summary['n']} with "
        f"{summary['num_outliers']} outliers: " + ", ".join(parts),
        "coefficient error: "
        + ", ".join(f"{LABELS[m]} {ms[m]['coef_error']:.4g}" for m in METHODS),
    ]


STUDY = runner.Study(
    name="influence",
    schema=InfluenceConfig,
    run=run,
    smoke=SMOKE,
    validate=validate,
    headline=headline,
)

if __name__ == "__main__":
    raise SystemExit(runner.main(STUDY))
