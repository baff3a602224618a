"""The Donoho-Tanner phase transition of basis pursuit, against the statistical-dimension curve.

For ``delta = m / n`` and ``rho = k / m`` on a grid, draw ``A`` with i.i.d. ``N(0, 1/m)`` entries
and a ``k``-sparse ``x`` (support uniform at random; entries random signs ``+-1`` for
``signal: rademacher``, ``N(0, 1)`` for ``signal: gaussian``), solve
``min ||z||_1 s.t. A z = A x`` with :func:`l1jax.solvers.basis_pursuit`, and call the trial a
success when ``||z - x|| / ||x|| < success_tol`` (``1e-3``). Exact recovery by l1 depends only
on the support and the sign pattern of ``x``, not on its magnitudes, so both signal types have
the same success probability; ``k = max(1, round(rho m))`` and the grid records the ``k / m``
actually used.

Theory (Amelunxen, Lotz, McCoy and Tropp 2014, sec. 4): recovery succeeds with high probability
when ``m > n psi(k / n)`` and fails when ``m < n psi(k / n)``, with the normalised statistical
dimension of the l1 descent cone at a ``k``-sparse point

    psi(eps) = inf_{t >= 0} eps (1 + t^2) + (1 - eps) E[(|g| - t)_+^2],
    E[(|g| - t)_+^2] = 2 ((1 + t^2) Q(t) - t phi(t)),

(``g ~ N(0, 1)``, ``phi`` its density, ``Q`` its upper tail). The infimum is where
``eps t = 2 (1 - eps) (phi(t) - t Q(t))``, which solved for ``eps`` gives the curve in the
parameter ``t``: ``eps(t) = 2 G(t) / (t + 2 G(t))``, ``G = phi - t Q``, then
``delta(t) = psi(eps(t))`` and ``rho(t) = eps(t) / delta(t)``. This is the Donoho-Tanner weak
threshold of the cross-polytope (``rho(1/2) = 0.3857``).

Batching. ``m`` changes along the grid, so shapes do too. Every problem is padded to
``m_max`` rows and ``n + m_max - m_min`` columns: row ``m + j`` (``j < m_max - m``) is the unit
row ``e_{n + j}`` with right-hand side 1, which pins the extra unknown ``z_{n + j}`` to 1; the
remaining extra columns are zero, so their unknowns are 0 at the optimum. The l1 objective gains
the constant ``m_max - m`` and the first ``n`` unknowns solve the original problem, while the
padded ``A`` keeps full row rank (the solvers factor ``A A^T``; zero rows would make it singular).
Pinning to 1 rather than 0 keeps the optimal vertex non-degenerate, so the solver's vertex polish
certifies it in a few steps (pinned to 0, the interior-point method stalls at its step cap). All
problems then share one compiled program: ``lax.map`` over them, ``batch_size`` at a time under
``vmap``. On a CPU, ``batch_size: 1`` is the fast choice (a vmapped ``while_loop`` runs every
batch to its slowest member: 6x slower at ``n = 100``); on an accelerator, vmap hundreds.

A subset of problems near the theoretical curve is re-solved by HiGHS
(:func:`l1jax.solvers.reference.basis_pursuit_lp`) on the unpadded problem as a check of the
solver and of the padding.

References:
  Donoho, D. L. and Tanner, J. (2009). Observed universality of phase transitions in
    high-dimensional geometry. Phil. Trans. R. Soc. A 367.
  Donoho, D. L. and Tanner, J. (2009). Counting faces of randomly projected polytopes when the
    projection radically lowers dimension. J. AMS 22(1).
  Amelunxen, D., Lotz, M., McCoy, M. B. and Tropp, J. A. (2014). Living on the edge: phase
    transitions in convex programs with random data. Information and Inference 3(3).
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from scipy import optimize, stats

from l1jax import runner, solvers
from l1jax.runner import ConfigError, StudyConfig
from l1jax.solvers import reference

SIGNALS = ("rademacher", "gaussian")


@dataclasses.dataclass
class GridConfig:
    n: int = 100
    delta_min: float = 0.05
    delta_max: float = 0.95
    num_delta: int = 15
    rho_min: float = 0.05
    rho_max: float = 0.95
    num_rho: int = 15
    # Independent (A, x) draws per grid point.
    trials: int = 20


@dataclasses.dataclass
class PhaseTransitionConfig(StudyConfig):
    grid: GridConfig = dataclasses.field(default_factory=GridConfig)
    # Nonzero entries of x: rademacher (+-1) or gaussian (N(0, 1)).
    signal: str = "rademacher"
    # l1jax.solvers.basis_pursuit method: ipm or admm.
    method: str = "ipm"
    # Success: ||x_hat - x|| / ||x|| < success_tol.
    success_tol: float = 1e-3
    # Problems solved together under vmap inside lax.map (1: one at a time, best on a CPU).
    batch_size: int = 1
    # Problems near the theoretical curve re-solved by HiGHS as a check (0: none).
    reference_checks: int = 40
    # Cells with rho <= rho_W(delta) - margin count as "well below" the curve, >= + margin above.
    margin: float = 0.15


SMOKE = {
    "grid.n": 48,
    "grid.delta_min": 0.1,
    "grid.delta_max": 0.9,
    "grid.num_delta": 5,
    "grid.num_rho": 10,
    "grid.trials": 10,
    "reference_checks": 10,
}


def validate(cfg: PhaseTransitionConfig) -> None:
    g = cfg.grid
    if cfg.signal not in SIGNALS:
        raise ConfigError(key="signal", expected=f"one of {SIGNALS}", given=repr(cfg.signal))
    if cfg.method not in ("ipm", "admm"):
        raise ConfigError(key="method", expected="ipm or admm", given=repr(cfg.method))
    for key, lo, hi in (("delta", g.delta_min, g.delta_max), ("rho", g.rho_min, g.rho_max)):
        if not 0 < lo <= hi <= 1:
            raise ConfigError(
                key=f"grid.{key}_min",
                expected=f"0 < {key}_min <= {key}_max <= 1",
                given=f"{key}_min={lo}, {key}_max={hi}",
            )
    if round(g.delta_min * g.n) < 1:
        raise ConfigError(
            key="grid.delta_min",
            expected=f">= 0.5 / n = {0.5 / g.n:g} (m >= 1)",
            given=repr(g.delta_min),
        )
    for key, value, low in (
        ("grid.n", g.n, 2),
        ("grid.num_delta", g.num_delta, 1),
        ("grid.num_rho", g.num_rho, 1),
        ("grid.trials", g.trials, 1),
        ("batch_size", cfg.batch_size, 1),
        ("reference_checks", cfg.reference_checks, 0),
    ):
        if value < low:
            raise ConfigError(key=key, expected=f"an int >= {low}", given=repr(value))
    if not 0 < cfg.success_tol < 1:
        raise ConfigError(key="success_tol", expected="in (0, 1)", given=repr(cfg.success_tol))


# --- theory --------------------------------------------------------------------------------------


def _tail_moment(t):
    """``E[(|g| - t)_+^2] = 2 ((1 + t^2) Q(t) - t phi(t))`` for ``g ~ N(0, 1)``."""
    return 2 * ((1 + t * t) * stats.norm.sf(t) - t * stats.norm.pdf(t))


def statistical_dimension(eps: float) -> float:
    """``psi(eps) = inf_t eps (1 + t^2) + (1 - eps) E[(|g| - t)_+^2]`` by direct minimisation.

    ``n psi(k / n)`` is the statistical dimension of the l1 descent cone at a ``k``-sparse
    vector in ``R^n`` (Amelunxen et al. 2014, prop. 4.5), up to ``O(sqrt n)``.
    """
    if eps >= 1:
        return 1.0
    res = optimize.minimize_scalar(
        lambda t: eps * (1 + t * t) + (1 - eps) * _tail_moment(t),
        bounds=(0.0, 40.0),
        method="bounded",
        options={"xatol": 1e-12},
    )
    return float(res.fun)


def _curve(t):
    """``(delta, rho)`` of the transition at the optimal threshold ``t > 0``."""
    g = stats.norm.pdf(t) - t * stats.norm.sf(t)
    eps = 2 * g / (t + 2 * g)
    delta = eps * (1 + t * t) + (1 - eps) * _tail_moment(t)
    return delta, eps / delta


def theory_rho(delta) -> np.ndarray:
    """The asymptotic 50% transition ``rho_W(delta)`` (``k / m``), elementwise, ``delta in (0, 1)``.

    ``delta(t)`` decreases from 1 (``t -> 0``) to 0 (``t -> inf``): solved for ``t`` by Brent's
    method on ``[1e-9, 20]`` (``delta(20) < 1e-80``).
    """
    out = []
    for d in np.atleast_1d(np.asarray(delta, np.float64)):
        if not 0 < d < 1:
            out.append(1.0 if d >= 1 else math.nan)
            continue
        t = optimize.brentq(lambda t, d=d: _curve(t)[0] - d, 1e-9, 20.0, xtol=1e-14)
        out.append(_curve(t)[1])
    return np.asarray(out).reshape(np.shape(delta))


# --- empirical transition ------------------------------------------------------------------------


def _decreasing_fit(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted least-squares non-increasing fit (pool adjacent violators)."""
    blocks: list[list[float]] = []  # [mean, weight, count]
    for yi, wi in zip(y, w, strict=True):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] < blocks[-1][0]:
            m2, w2, c2 = blocks.pop()
            m1, w1, c1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, c1 + c2])
    return np.concatenate([np.full(c, m) for m, _, c in blocks])


def rho50(rho: np.ndarray, successes: np.ndarray, trials: np.ndarray) -> float:
    """Where the success rate crosses 1/2 along ``rho`` (increasing, duplicates allowed).

    Duplicate ``rho`` values are pooled, the rates are made non-increasing by isotonic regression
    (the success probability decreases in ``k`` for fixed ``m``), and the crossing is linearly
    interpolated. NaN when the fitted rate is below 1/2 at the smallest ``rho`` or never is.
    """
    r, inv = np.unique(rho, return_inverse=True)
    s = np.bincount(inv, weights=successes)
    t = np.bincount(inv, weights=trials)
    p = _decreasing_fit(s / t, t)
    below = np.nonzero(p < 0.5)[0]
    if len(below) == 0 or below[0] == 0:
        return math.nan
    j = below[0]
    return float(r[j - 1] + (p[j - 1] - 0.5) / (p[j - 1] - p[j]) * (r[j] - r[j - 1]))


# --- problems and the batched solve (JAX) --------------------------------------------------------


def make_problem(key, m, k, *, n: int, m_max: int, pad: int, signal: str):
    """The padded problem ``(A_pad (m_max, n + pad), b_pad (m_max,))`` and the true ``x (n,)``.

    Rows ``>= m`` pin the extra unknowns ``n .. n + m_max - m - 1`` to 1 (see the module
    docstring); ``m`` and ``k`` may be traced.
    """
    ka, kx, ks = jax.random.split(key, 3)
    rows = jnp.arange(m_max)
    live = rows < m
    A = jax.random.normal(ka, (m_max, n)) / jnp.sqrt(m.astype(jnp.result_type(float)))
    A = jnp.where(live[:, None], A, 0.0)
    pins = ((rows[:, None] - m) == jnp.arange(pad)[None, :]).astype(A.dtype)
    # argsort of uniforms is a uniformly random permutation: its k smallest ranks, a support.
    rank = jnp.argsort(jnp.argsort(jax.random.uniform(ks, (n,))))
    if signal == "rademacher":
        values = jax.random.rademacher(kx, (n,), dtype=A.dtype)
    else:
        values = jax.random.normal(kx, (n,), dtype=A.dtype)
    x = jnp.where(rank < k, values, 0.0)
    b = A @ x + jnp.where(live, 0.0, 1.0)
    return jnp.concatenate([A, pins], axis=1), b, x


def solve_all(keys, ms, ks, *, n, m_max, pad, signal, method, batch_size):
    """Solves every problem in one compiled program: relative errors, pin errors, diagnostics."""

    def one(args):
        key, m, k = args
        A, b, x = make_problem(key, m, k, n=n, m_max=m_max, pad=pad, signal=signal)
        res = solvers.basis_pursuit(A, b, method=method)
        z = res.coef
        err = jnp.linalg.norm(z[:n] - x) / jnp.linalg.norm(x)
        pinned = jnp.arange(pad) < m_max - m
        pin_err = jnp.max(jnp.abs(z[n:] - jnp.where(pinned, 1.0, 0.0)), initial=0.0)
        return err, pin_err, res.converged, res.num_steps

    @jax.jit
    def program(keys, ms, ks):
        return jax.lax.map(one, (keys, ms, ks), batch_size=batch_size if batch_size > 1 else None)

    return program(keys, ms, ks)


# --- the study -----------------------------------------------------------------------------------


def grid_values(cfg: PhaseTransitionConfig):
    """``delta`` (num_delta,), ``m`` (num_delta,), nominal ``rho`` (num_rho,), ``k`` (nd, nr)."""
    g = cfg.grid
    delta = np.linspace(g.delta_min, g.delta_max, g.num_delta)
    m = np.maximum(np.round(delta * g.n).astype(int), 1)
    rho = np.linspace(g.rho_min, g.rho_max, g.num_rho)
    k = np.clip(np.round(rho[None, :] * m[:, None]).astype(int), 1, m[:, None])
    return delta, m, rho, k


def _reference_check(cfg, keys, ms, ks, err, near, statics) -> dict[str, Any]:
    """Re-solves up to ``reference_checks`` problems flagged ``near`` with HiGHS (unpadded)."""
    rng = np.random.default_rng(cfg.seed)
    idx = np.nonzero(near)[0]
    idx = rng.choice(idx, size=min(cfg.reference_checks, len(idx)), replace=False)
    if len(idx) == 0:
        return {"checked": 0}
    make = jax.jit(lambda key, m, k: make_problem(key, m, k, **statics))
    n = cfg.grid.n
    agree, err_diff, lp_err = [], [], []
    for i in idx:
        A, b, x = map(np.asarray, make(keys[i], ms[i], ks[i]))
        m = int(ms[i])
        z, _ = reference.basis_pursuit_lp(A[:m, :n], b[:m])
        e = np.linalg.norm(z - x) / np.linalg.norm(x)
        lp_err.append(e)
        agree.append((e < cfg.success_tol) == (err[i] < cfg.success_tol))
        err_diff.append(abs(e - err[i]))
    return {
        "checked": len(idx),
        "agreement": float(np.mean(agree)),
        "lp_successes": int(np.sum(np.array(lp_err) < cfg.success_tol)),
        "max_abs_error_difference": float(np.max(err_diff)),
    }


def run(cfg: PhaseTransitionConfig, run: runner.Run) -> dict[str, Any]:
    g = cfg.grid
    delta, m, rho, k = grid_values(cfg)
    nd, nr, T = len(delta), len(rho), g.trials
    m_max, pad = int(m.max()), int(m.max() - m.min())
    statics = {"n": g.n, "m_max": m_max, "pad": pad, "signal": cfg.signal}
    ms = np.repeat(np.repeat(m, nr), T).astype(np.int32)
    ks = np.repeat(k.reshape(-1), T).astype(np.int32)
    with jax.enable_x64(True):
        keys = jax.random.split(jax.random.key(cfg.seed), nd * nr * T)
        t0 = time.time()
        out = solve_all(
            keys,
            jnp.asarray(ms),
            jnp.asarray(ks),
            method=cfg.method,
            batch_size=cfg.batch_size,
            **statics,
        )
        err, pin_err, conv, steps = map(np.asarray, jax.block_until_ready(out))
        seconds = time.time() - t0
        rho_eff = k / m[:, None]
        # theory at the delta = m / n actually used (m is rounded)
        curve_gap = rho_eff - theory_rho(m / g.n)[:, None]
        near = np.repeat((np.abs(curve_gap) < 0.1).reshape(-1), T)
        ref = _reference_check(cfg, keys, ms, ks, err, near, statics)

    success = (err < cfg.success_tol).reshape(nd, nr, T)
    rate = success.mean(-1)
    emp = np.array([rho50(rho_eff[i], success[i].sum(-1), np.full(nr, T)) for i in range(nd)])
    theo = theory_rho(delta)
    below, above = curve_gap <= -cfg.margin, curve_gap >= cfg.margin
    for i in range(nd):
        run.log(
            {
                "tag": "delta",
                "delta": float(delta[i]),
                "m": int(m[i]),
                "rho50_empirical": _num(emp[i]),
                "rho50_theory": float(theo[i]),
                "success_rate": rate[i].tolist(),
                "rho_effective": rho_eff[i].tolist(),
            }
        )

    summary = {
        "n": g.n,
        "trials": T,
        "signal": cfg.signal,
        "method": cfg.method,
        "success_tol": cfg.success_tol,
        "delta": delta.tolist(),
        "m": m.tolist(),
        "rho_nominal": rho.tolist(),
        "rho_effective": rho_eff.tolist(),
        "success_rate": rate.tolist(),
        "rho50_empirical": [_num(v) for v in emp],
        "rho50_theory": theo.tolist(),
        "rho50_at_delta_half": {
            "empirical": _num(_at_half(delta, emp)),
            "theory": float(theory_rho(0.5)),
        },
        "well_below_curve": {
            "cells": int(below.sum()),
            "success_rate": _num(rate[below].mean() if below.any() else math.nan),
        },
        "well_above_curve": {
            "cells": int(above.sum()),
            "success_rate": _num(rate[above].mean() if above.any() else math.nan),
        },
        "margin": cfg.margin,
        "solver": {
            "problems": int(err.size),
            "seconds": round(seconds, 3),
            "converged_fraction": float(conv.mean()),
            "max_steps": int(steps.max()),
            "median_steps": float(np.median(steps)),
            "max_pin_error": float(pin_err.max()),
            "ambiguous_errors": int(np.sum((err > 1e-6) & (err < 1e-1))),
        },
        "reference": ref,
    }
    _plot(run, cfg, delta, rho, rate, rho_eff, emp)
    return summary


def _num(v) -> float | None:
    v = float(v)
    return None if math.isnan(v) else v


def _at_half(delta: np.ndarray, values: np.ndarray) -> float:
    ok = ~np.isnan(values)
    if not ok.any() or not delta[ok].min() <= 0.5 <= delta[ok].max():
        return math.nan
    return float(np.interp(0.5, delta[ok], values[ok]))


def _plot(run, cfg, delta, rho, rate, rho_eff, emp):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    g = cfg.grid
    fig, ax = plt.subplots(figsize=(6.4, 5.0))
    dd = np.diff(delta).mean() if len(delta) > 1 else 0.1
    dr = np.diff(rho).mean() if len(rho) > 1 else 0.1
    extent = (delta[0] - dd / 2, delta[-1] + dd / 2, rho[0] - dr / 2, rho[-1] + dr / 2)
    im = ax.imshow(
        rate.T, origin="lower", cmap="gray", vmin=0, vmax=1, aspect="auto", extent=extent
    )
    fig.colorbar(im, ax=ax, label=f"success rate ({g.trials} trials)")
    if len(delta) > 1 and len(rho) > 1:
        ax.contour(delta, rho, rate.T, levels=[0.5], colors="tab:orange", linewidths=1.2)
    ax.plot(delta, emp, "o", color="tab:orange", ms=4, label="empirical 50% (isotonic, k/m)")
    dense = np.linspace(0.01, 0.99, 199)
    ax.plot(
        dense,
        theory_rho(dense),
        color="tab:red",
        lw=2,
        label="theory: m = n psi(k/n) (Donoho-Tanner)",
    )
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("delta = m / n")
    ax.set_ylabel("rho = k / m")
    ax.set_title(
        f"basis pursuit, n={g.n}, {cfg.signal} signs, success: rel. err < {cfg.success_tol:g}",
        fontsize=9,
    )
    ax.plot([], [], color="tab:orange", lw=1.2, label="50% contour of the heatmap (nominal rho)")
    ax.legend(fontsize=7, loc="upper left")
    run.save_figure(fig, "phase_transition.png", dpi=90)


def headline(summary: dict[str, Any]) -> list[str]:
    """The 50% point at delta = 1/2 against theory, and the success rates off the curve."""

    def num(v, fmt):
        return "n/a" if v is None else format(v, fmt)

    half = summary["rho50_at_delta_half"]
    below, above = summary["well_below_curve"], summary["well_above_curve"]
    return [
        f"rho_50 at delta = 1/2: empirical {num(half['empirical'], '.4f')}, "
        f"theory {half['theory']:.4f}",
        f"success rate well below the curve {num(below['success_rate'], '.3f')} "
        f"({below['cells']} cells), well above {num(above['success_rate'], '.3f')} "
        f"({above['cells']} cells)",
    ]


STUDY = runner.Study(
    name="phase_transition",
    schema=PhaseTransitionConfig,
    run=run,
    smoke=SMOKE,
    validate=validate,
    headline=headline,
)

if __name__ == "__main__":
    raise SystemExit(runner.main(STUDY))
