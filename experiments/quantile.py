"""Several regression quantiles in one call, on heteroscedastic data: coverage and non-crossing.

Data: ``x ~ U(0, x_max)``, ``y = a + b x + (c0 + c1 x) eps`` with ``eps`` standard Gaussian or
Laplace times ``noise_scale``, features ``[1, x]``. The conditional ``tau``-quantile is then
linear, ``q_tau(x) = (a + c0 z_tau) + (b + c1 z_tau) x`` with ``z_tau`` the ``tau``-quantile of
``eps``, so linear quantile regression is well specified and the true lines are known exactly.

All levels are fitted by one ``l1jax.solvers.quantile_regression(X, y, tau=taus)`` call (vmapped
over ``tau`` inside the solver). On a fresh test set the empirical coverage
``P(y <= q_hat_tau(x))`` is compared with ``tau``; the population coverage of each fitted line,
``(1/x_max) int F((q_hat(x) - a - b x) / (noise_scale (c0 + c1 x))) dx``, is computed by
Gauss-Legendre quadrature, which separates the estimation error of the fit from the sampling error
of the test set. Asymptotic theory (Koenker 2005, thm. 4.1) gives
``sqrt(n) (b_hat - b) -> N(0, tau (1 - tau) D1^{-1} D0 D1^{-1})``, ``D0 = E[x x^T]``,
``D1 = E[f(q_tau | x) x x^T]``, hence the standard errors of the slopes and of the population
coverage (``g^T Var(b_hat) g`` with ``g = E[f(q_tau | x) x]``), checked against a Monte Carlo of
``num_replicates`` data sets solved as one vmapped program.

Non-crossing: fitted lines are straight, so they are ordered by ``tau`` on the data's range
``[min x, max x]`` iff they are ordered at both ends; the true lines never cross for
``c0 + c1 x > 0``.

References:
  Koenker, R. and Bassett, G. (1978). Regression quantiles. Econometrica 46(1).
  Koenker, R. (2005). Quantile Regression. Cambridge University Press, sec. 4.2.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from l1jax import runner, solvers
from l1jax.runner import ConfigError, StudyConfig

NOISES = ("gaussian", "laplace")
_QUAD_NODES = 64


@dataclasses.dataclass
class DataConfig:
    n_train: int = 1000
    n_test: int = 100_000
    x_max: float = 2.0
    # y = intercept + slope x + (scale_intercept + scale_slope x) * noise_scale * eps.
    intercept: float = 1.0
    slope: float = 2.0
    scale_intercept: float = 0.5
    scale_slope: float = 1.0
    # gaussian (eps ~ N(0, 1)) or laplace (density exp(-|eps|) / 2).
    noise: str = "gaussian"
    noise_scale: float = 1.0


@dataclasses.dataclass
class QuantileConfig(StudyConfig):
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    taus: list[float] = dataclasses.field(
        default_factory=lambda: [0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95]
    )
    # l1jax.solvers.quantile_regression method: ipm, admm or irls.
    method: str = "ipm"
    # Independent training sets for the Monte Carlo check, solved as one vmapped program.
    num_replicates: int = 200
    # Coverage tolerance = z_tol * sqrt(tau (1 - tau) / n_test + sd_fit^2) + slack, sd_fit the
    # asymptotic SD of the fitted line's population coverage (about sqrt(tau (1 - tau) / n_train)).
    z_tol: float = 4.0
    slack: float = 0.005


SMOKE = {"data.n_train": 800, "data.n_test": 20_000, "num_replicates": 32}


def validate(cfg: QuantileConfig) -> None:
    d = cfg.data
    if d.noise not in NOISES:
        raise ConfigError(key="data.noise", expected=f"one of {NOISES}", given=repr(d.noise))
    for key, value in {
        "data.n_train": d.n_train,
        "data.n_test": d.n_test,
        "data.x_max": d.x_max,
        "data.noise_scale": d.noise_scale,
        "num_replicates": cfg.num_replicates,
        "z_tol": cfg.z_tol,
    }.items():
        if not value > 0:
            raise ConfigError(key=key, expected="> 0", given=repr(value))
    if d.scale_intercept <= 0 or d.scale_intercept + d.scale_slope * d.x_max <= 0:
        raise ConfigError(
            key="data.scale_intercept",
            expected="c0 > 0 and c0 + c1 x_max > 0 (a positive scale)",
            given=f"c0={d.scale_intercept}, c1={d.scale_slope}",
        )
    if not cfg.taus or any(not 0 < t < 1 for t in cfg.taus) or sorted(cfg.taus) != cfg.taus:
        raise ConfigError(key="taus", expected="increasing levels in (0, 1)", given=repr(cfg.taus))
    if cfg.method not in ("ipm", "admm", "irls"):
        raise ConfigError(key="method", expected="ipm, admm or irls", given=repr(cfg.method))


# --- the model: exact quantities -----------------------------------------------------------------


def noise_dist(noise: str, scale: float):
    """The frozen SciPy distribution of ``noise_scale * eps``."""
    return (stats.norm if noise == "gaussian" else stats.laplace)(scale=scale)


def true_lines(d: DataConfig, taus: np.ndarray) -> np.ndarray:
    """``(len(taus), 2)``: intercept and slope of ``q_tau(x)``."""
    z = noise_dist(d.noise, d.noise_scale).ppf(taus)
    return np.stack([d.intercept + d.scale_intercept * z, d.slope + d.scale_slope * z], axis=-1)


def _quadrature(x_max: float):
    """Gauss-Legendre nodes and weights of the uniform average over ``[0, x_max]``."""
    t, w = np.polynomial.legendre.leggauss(_QUAD_NODES)
    return 0.5 * x_max * (t + 1), 0.5 * w


def population_coverage(d: DataConfig, coef: np.ndarray) -> np.ndarray:
    """``P(y <= c_0 + c_1 x)`` for lines ``coef[..., :]`` under the data's distribution."""
    x, w = _quadrature(d.x_max)
    mean = d.intercept + d.slope * x
    scale = d.scale_intercept + d.scale_slope * x
    line = coef[..., :1] + coef[..., 1:] * x
    return noise_dist(d.noise, 1.0).cdf((line - mean) / (d.noise_scale * scale)) @ w


def asymptotic_se(d: DataConfig, taus: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Standard errors of the fitted slope and of the fitted line's population coverage.

    ``Var(b_hat) = tau (1 - tau) D1^{-1} D0 D1^{-1} / n`` (Koenker 2005, thm. 4.1) and, to first
    order, ``Var(coverage) = g^T Var(b_hat) g`` with ``g = E[f(q_tau | x) [1, x]]``.
    """
    x, w = _quadrature(d.x_max)
    feats = np.stack([np.ones_like(x), x], axis=-1)
    dist = noise_dist(d.noise, d.noise_scale)
    sigma = d.scale_intercept + d.scale_slope * x
    d0 = (feats.T * w) @ feats
    se_slope, se_cov = [], []
    for tau in taus:
        dens = dist.pdf(dist.ppf(tau)) / sigma  # f(q_tau(x) | x)
        d1 = (feats.T * (w * dens)) @ feats
        d1_inv = np.linalg.inv(d1)
        cov = tau * (1 - tau) * d1_inv @ d0 @ d1_inv / n
        g = (feats.T * w) @ dens
        se_slope.append(math.sqrt(cov[1, 1]))
        se_cov.append(math.sqrt(g @ cov @ g))
    return np.array(se_slope), np.array(se_cov)


# --- sampling and fitting (JAX) ------------------------------------------------------------------


def sample(key: jax.Array, d: DataConfig, n: int) -> tuple[jax.Array, jax.Array]:
    """``X = [1, x]`` of shape ``(n, 2)`` and ``y`` of shape ``(n,)``."""
    kx, ke = jax.random.split(key)
    x = jax.random.uniform(kx, (n,), maxval=d.x_max)
    if d.noise == "gaussian":
        eps = jax.random.normal(ke, (n,))
    else:
        eps = jax.random.laplace(ke, (n,))
    y = d.intercept + d.slope * x + (d.scale_intercept + d.scale_slope * x) * d.noise_scale * eps
    return jnp.stack([jnp.ones_like(x), x], axis=-1), y


def line_gaps(coef: jax.Array, lo: jax.Array, hi: jax.Array) -> jax.Array:
    """``q_{j+1} - q_j`` at ``x = lo`` and ``x = hi``, shape ``(2, len(taus) - 1)``.

    A straight line's difference is monotone in ``x``, so all entries ``>= 0`` means the lines
    are ordered on the whole of ``[lo, hi]``.
    """
    ends = jnp.stack([lo, hi])
    q = coef[None, :, 0] + coef[None, :, 1] * ends[:, None]
    return jnp.diff(q, axis=1)


def monte_carlo(key: jax.Array, taus: jax.Array, d: DataConfig, *, method: str, num: int):
    """Fits ``num`` independent training sets as one vmapped program.

    Returns:
      coefficients ``(num, len(taus), 2)``, the smallest gap between consecutive lines on each
      set's own x range ``(num,)``, and whether every level converged ``(num,)``.
    """

    def one(k):
        X, y = sample(k, d, d.n_train)
        res = solvers.quantile_regression(X, y, taus, method=method)
        gaps = line_gaps(res.coef, jnp.min(X[:, 1]), jnp.max(X[:, 1]))
        return res.coef, jnp.min(gaps), jnp.all(res.converged)

    return jax.jit(jax.vmap(one))(jax.random.split(key, num))


# --- the study -----------------------------------------------------------------------------------


def run(cfg: QuantileConfig, run: runner.Run) -> dict[str, Any]:
    d = cfg.data
    taus_np = np.asarray(cfg.taus, dtype=np.float64)
    with jax.enable_x64(True):
        k_train, k_test, k_mc = jax.random.split(jax.random.key(cfg.seed), 3)
        taus = jnp.asarray(taus_np)
        X, y = sample(k_train, d, d.n_train)
        fit = solvers.quantile_regression(X, y, taus, method=cfg.method)
        Xt, yt = sample(k_test, d, d.n_test)
        cover_test = np.mean(np.asarray(yt[:, None] <= Xt @ fit.coef.T), axis=0)
        lo, hi = jnp.min(X[:, 1]), jnp.max(X[:, 1])
        gaps = np.asarray(line_gaps(fit.coef, lo, hi))
        mc_coef, mc_gap, mc_conv = monte_carlo(
            k_mc, taus, d, method=cfg.method, num=cfg.num_replicates
        )
        coef = np.asarray(fit.coef)
        mc_coef, mc_gap, mc_conv = map(np.asarray, (mc_coef, mc_gap, mc_conv))
        X_np, y_np = np.asarray(X), np.asarray(y)
        steps, converged = np.asarray(fit.num_steps), np.asarray(fit.converged)

    truth = true_lines(d, taus_np)
    ends = np.array([[0.0], [d.x_max]])
    true_gaps = np.diff(truth[:, 0][None] + truth[:, 1][None] * ends, axis=1)
    cover_pop = population_coverage(d, coef)
    se_slope, se_cov = asymptotic_se(d, taus_np, d.n_train)
    tol = cfg.z_tol * np.sqrt(taus_np * (1 - taus_np) / d.n_test + se_cov**2) + cfg.slack
    mc_cover = population_coverage(d, mc_coef)  # (replicates, taus)

    levels = []
    for j, tau in enumerate(taus_np):
        row = {
            "tau": float(tau),
            "intercept": float(coef[j, 0]),
            "slope": float(coef[j, 1]),
            "true_intercept": float(truth[j, 0]),
            "true_slope": float(truth[j, 1]),
            "slope_se_theory": float(se_slope[j]),
            "coverage_test": float(cover_test[j]),
            "coverage_population": float(cover_pop[j]),
            "coverage_tolerance": float(tol[j]),
            "coverage_ok": bool(abs(cover_test[j] - tau) < tol[j]),
            "num_steps": int(steps[j]),
            "converged": bool(converged[j]),
            "mc_coverage_mean": float(mc_cover[:, j].mean()),
            "mc_coverage_sd": float(mc_cover[:, j].std(ddof=1)),
            "coverage_sd_theory": float(se_cov[j]),
            "mc_slope_mean": float(mc_coef[:, j, 1].mean()),
            "mc_slope_sd": float(mc_coef[:, j, 1].std(ddof=1)),
        }
        run.log({"tag": "level", **row})
        levels.append(row)

    summary = {
        "noise": d.noise,
        "n_train": d.n_train,
        "n_test": d.n_test,
        "method": cfg.method,
        "levels": levels,
        "all_coverage_ok": all(r["coverage_ok"] for r in levels),
        "max_abs_coverage_error": float(np.max(np.abs(cover_test - taus_np))),
        "x_range": [float(lo), float(hi)],
        "non_crossing": bool(np.all(gaps >= 0)),
        "min_gap_on_data_range": float(gaps.min()),
        "true_min_gap_on_data_range": float(true_gaps.min()),
        "monte_carlo": {
            "replicates": cfg.num_replicates,
            "crossing_fraction": float(np.mean(mc_gap < 0)),
            "converged_fraction": float(np.mean(mc_conv)),
        },
    }
    _plot(run, cfg, X_np, y_np, coef, truth, cover_test, mc_cover, se_cov, tol)
    return summary


def _plot(run, cfg, X, y, coef, truth, cover_test, mc_cover, se_cov, tol):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    taus = np.asarray(cfg.taus)
    d = cfg.data
    colors = plt.cm.viridis(np.linspace(0.05, 0.95, len(taus)))
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10.5, 4.2), gridspec_kw={"width_ratios": [1.4, 1]})
    show = min(len(y), 1500)
    ax.scatter(X[:show, 1], y[:show], s=3, c="0.6", alpha=0.5, lw=0, label=f"data ({show} shown)")
    xs = np.array([X[:, 1].min(), X[:, 1].max()])
    for j, tau in enumerate(taus):
        ax.plot(xs, coef[j, 0] + coef[j, 1] * xs, color=colors[j], lw=1.8, label=f"tau={tau:g}")
        ax.plot(xs, truth[j, 0] + truth[j, 1] * xs, color="k", lw=0.8, ls="--")
    ax.plot([], [], color="k", lw=0.8, ls="--", label="true q_tau(x)")
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_title(f"{d.noise} noise, n={d.n_train}: fitted (solid) vs true (dashed) quantiles")
    ax.legend(fontsize=7, ncol=2, loc="upper left")

    dev = cover_test - taus
    bx.axhline(0, color="k", lw=0.8)
    bx.fill_between(taus, -tol, tol, color="0.85", label="test tolerance")
    bx.errorbar(
        taus,
        dev,
        yerr=2 * np.sqrt(taus * (1 - taus) / d.n_test),
        fmt="o",
        ms=4,
        label=f"test set (n={d.n_test}), +-2 binomial SE",
    )
    bx.errorbar(
        taus + 0.008,
        mc_cover.mean(0) - taus,
        yerr=mc_cover.std(0, ddof=1),
        fmt="s",
        ms=3,
        color="tab:orange",
        label=f"Monte Carlo ({cfg.num_replicates} fits), +-1 SD",
    )
    bx.plot(taus, se_cov, "k:", lw=1, label="asymptotic SD of coverage")
    bx.plot(taus, -se_cov, "k:", lw=1)
    bx.set_xlabel("tau")
    bx.set_ylabel("coverage - tau")
    bx.set_title("coverage P(y <= q_hat_tau(x)) - tau")
    bx.legend(fontsize=7)
    fig.tight_layout()
    run.save_figure(fig, "quantile.png", dpi=90)


def headline(summary: dict[str, Any]) -> list[str]:
    """Coverage, non-crossing and the Monte Carlo crossing rate (the results page's lead)."""
    levels = summary["levels"]
    ok = sum(r["coverage_ok"] for r in levels)
    mc = summary["monte_carlo"]
    return [
        f"test coverage within tolerance at {ok} of {len(levels)} levels; "
        f"max |coverage - tau| = {summary['max_abs_coverage_error']:.4f}",
        f"non-crossing on the data range: {summary['non_crossing']} "
        f"(smallest gap between levels {summary['min_gap_on_data_range']:.4f})",
        f"Monte Carlo ({mc['replicates']} data sets): crossing fraction "
        f"{mc['crossing_fraction']:.3f}, converged fraction {mc['converged_fraction']:.3f}",
    ]


STUDY = runner.Study(
    name="quantile",
    schema=QuantileConfig,
    run=run,
    smoke=SMOKE,
    validate=validate,
    headline=headline,
)

if __name__ == "__main__":
    raise SystemExit(runner.main(STUDY))
