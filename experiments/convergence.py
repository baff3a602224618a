"""Convergence rates of non-smooth solvers, measured against certified optima.

Least absolute deviations ``f(w) = mean |y - X w|`` with ``f*`` from an LP (HiGHS), and the lasso
``F(w) = ||y - X w||^2 / (2n) + lam ||w||_1`` with ``F*`` from coordinate descent run to a
duality gap of 1e-12 (scikit-learn). For each method the best-so-far gap ``min_{j<=k} f(x_j) - f*``
is recorded for every ``k``; every seed's whole run is one ``lax.scan``, and the seeds are one
``vmap``-ed program. Each curve's tail slope on log-log axes is fitted per seed over the last
decade of iterations before the gap reaches the floor where the certificate stops being exact
(``floor_rtol * f*``) and set beside what theory says:

* subgradient method, constant step ``c``: ``f_best - f* <= (R^2 + G^2 c^2 k) / (2 c k)``,
  a plateau at ``G^2 c / 2``;
* subgradient method, ``c / sqrt(k + 1)``: ``O(log k / sqrt k)``, slope ``-1/2``;
* Polyak's step with the exact ``f*``: ``G R / sqrt k``, and linear on sharp problems (LAD is);
* smoothing: ``|r|`` replaced by the Huber function with width ``mu`` (``l1jax.losses.smooth_l1``),
  ``f - mu/2 <= f_mu <= f``, minimised by gradient descent (``O(1/k)``, slope ``-1``) and by
  Nesterov's method (FISTA with no prox, ``O(1/k^2)``, slope ``-2``); ``f`` itself then stalls at
  a bias of at most ``mu / 2``;
* the LAD solvers of :mod:`l1jax.solvers` (IRLS: MM, linear; interior point: superlinear),
  which return no per-iteration trace, so each is run with ``max_steps = k`` for a few ``k``;
* ISTA (``O(1/k)``) against FISTA (``O(1/k^2)``, non-monotone: the best-so-far is fitted) on the
  lasso.

The rates are worst-case bounds: on a well-conditioned problem the smooth methods converge
linearly and the fitted slopes are steeper. The problems below are made ill-conditioned on
purpose (``X^T X / n`` has eigenvalues spread geometrically over ``kappa``) so that the
sublinear regime lasts for the whole run.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from l1jax import datasets, losses, optim, penalties, runner, solvers
from l1jax._lapack import unbatched
from l1jax.runner import ConfigError, StudyConfig
from l1jax.solvers import reference

# --- problems ------------------------------------------------------------------------------------

# The problem generators are l1jax.datasets' (their QRs run one matrix at a time under vmap).
_spectral_norm = unbatched(lambda X: jnp.linalg.norm(X, 2))


@functools.partial(jax.jit, static_argnames=("lad", "lasso", "num_seeds"))
def make_problems(key: jax.Array, *, lad: tuple, lasso: tuple, num_seeds: int):
    """The LAD and lasso problems of every seed (``lad = (n, d, kappa, noise)``,
    ``lasso = (n, d, kappa, noise, lam_ratio)``), stacked on a leading seed axis."""
    lad_key, lasso_key = jax.random.split(key)
    n, d, kappa, noise = lad
    lad_data = jax.vmap(lambda k: datasets.lad_problem(k, n=n, d=d, kappa=kappa, noise=noise))(
        jax.random.split(lad_key, num_seeds)
    )
    n, d, kappa, noise, lam_ratio = lasso
    lasso_data = jax.vmap(
        lambda k: datasets.lasso_problem(k, n=n, d=d, kappa=kappa, noise=noise, lam_ratio=lam_ratio)
    )(jax.random.split(lasso_key, num_seeds))
    return lad_data, lasso_data


def lad_objective(w, X, y):
    return losses.l1(X @ w, y)


def smoothed_lad_objective(w, X, y, mu):
    return losses.smooth_l1(X @ w, y, beta=mu)


def lasso_objective(w, X, y, lam):
    return 0.5 * losses.mse(X @ w, y) + lam * penalties.l1(w)


def subgradient_bound(G, R, steps):
    """``(R^2 + G^2 sum a_j^2) / (2 sum a_j)`` after each of ``len(steps)`` updates."""
    return (R**2 + G**2 * jnp.cumsum(steps**2)) / (2 * jnp.cumsum(steps))


# --- runs: one seed, the whole run as a scan (vmapped over seeds by the caller) --------------


def _scan(update, params, state, num_steps):
    def body(carry, _):
        params, state = carry
        params, state, record = update(params, state)
        return (params, state), record

    _, records = jax.lax.scan(body, (params, state), None, length=num_steps)
    return records


def run_subgradient(opt, X, y, *, num_steps):
    """Best-so-far ``f`` (``track_best``), the current ``f(x_k)`` and ``||g_k||`` per update."""
    opt = optim.track_best(opt)
    f = functools.partial(lad_objective, X=X, y=y)

    def update(params, state):
        value, grads = jax.value_and_grad(f)(params)
        updates, state = opt.update(grads, state, params, value=value)
        record = (optim.get_best_value(state), value, jnp.linalg.norm(grads))
        return optax.apply_updates(params, updates), state, record

    params = jnp.zeros(X.shape[1], X.dtype)
    return _scan(update, params, opt.init(params), num_steps)


def _no_prox(params, step):
    """The prox of ``g = 0``: FISTA without a non-smooth part is Nesterov's method."""
    del step
    return params


def run_smoothed(X, y, *, mu, accelerated, num_steps):
    """Gradient descent or Nesterov's method (FISTA, no prox) on ``f_mu`` with step ``1 / L_mu``.

    Returns ``f(x_k)`` and ``f_mu(x_k)`` at the iterate the rate is stated for.
    """
    lipschitz = _spectral_norm(X) ** 2 / (X.shape[0] * mu)
    opt = (optim.fista if accelerated else optim.ista)(1 / lipschitz, _no_prox)
    grad_fn = jax.grad(smoothed_lad_objective)

    def update(params, state):
        updates, state = opt.update(grad_fn(params, X, y, mu), state, params)
        params = optax.apply_updates(params, updates)
        x = optim.get_fista_iterate(state) if accelerated else params
        record = (lad_objective(x, X, y), smoothed_lad_objective(x, X, y, mu))
        return params, state, record

    params = jnp.zeros(X.shape[1], X.dtype)
    return _scan(update, params, opt.init(params), num_steps)


def run_lasso(X, y, lam, *, accelerated, num_steps):
    """ISTA or FISTA with step ``1 / L``, ``L = ||X||_2^2 / n``; ``F`` at the iterate ``x_k``."""
    opt = (optim.fista_l1 if accelerated else optim.ista_l1)(
        X.shape[0] / _spectral_norm(X) ** 2, lam=lam
    )
    grad_fn = jax.grad(lambda w: 0.5 * losses.mse(X @ w, y))

    def update(params, state):
        updates, state = opt.update(grad_fn(params), state, params)
        params = optax.apply_updates(params, updates)
        x = optim.get_fista_iterate(state) if accelerated else params
        return params, state, lasso_objective(x, X, y, lam)

    params = jnp.zeros(X.shape[1], X.dtype)
    return _scan(update, params, opt.init(params), num_steps)


@functools.partial(jax.jit, static_argnames=("num_steps", "mu"))
def lad_first_order_runs(X, y, f_star, radius, G, const_step, sqrt_scale, *, mu, num_steps):
    """All first-order LAD runs for a batch of seeds in one compiled program."""

    def one(X, y, f_star, radius, G):
        sqrt_c = sqrt_scale * radius / G
        const = run_subgradient(optim.subgradient_method(const_step), X, y, num_steps=num_steps)
        sqrt = run_subgradient(
            optim.subgradient_method(optim.inverse_sqrt_schedule(sqrt_c)),
            X,
            y,
            num_steps=num_steps,
        )
        polyak = run_subgradient(optim.polyak_subgradient(f_star), X, y, num_steps=num_steps)
        k = jnp.arange(num_steps, dtype=X.dtype)
        return {
            "subgradient_constant": const,
            "subgradient_inv_sqrt": sqrt,
            "subgradient_polyak": polyak,
            "bound_constant": subgradient_bound(G, radius, jnp.full_like(k, const_step)),
            "bound_inv_sqrt": subgradient_bound(G, radius, sqrt_c / jnp.sqrt(k + 1)),
            "smoothing_gd": run_smoothed(X, y, mu=mu, accelerated=False, num_steps=num_steps),
            "smoothing_nesterov": run_smoothed(X, y, mu=mu, accelerated=True, num_steps=num_steps),
        }

    return jax.vmap(one)(X, y, f_star, radius, G)


@functools.partial(jax.jit, static_argnames=("num_steps",))
def lasso_runs(X, y, lam, *, num_steps):
    def one(X, y, lam):
        return {
            "ista": run_lasso(X, y, lam, accelerated=False, num_steps=num_steps),
            "fista": run_lasso(X, y, lam, accelerated=True, num_steps=num_steps),
        }

    return jax.vmap(one)(X, y, lam)


@functools.partial(jax.jit, static_argnames=("plan",))
def solver_runs(X, y, *, plan: tuple[tuple[str, int | None, bool], ...]):
    """``l1jax.solvers.lad`` on every seed, for each ``(method, max_steps, polish)`` of ``plan``.

    One compiled program for the whole plan (compiling each call alone costs more than the
    solves). Returns ``{"method/max_steps/polish": (objective, num_steps)}``, batched over seeds.
    The seeds go through ``lax.map``, not ``vmap``: the plan's solves are independent loops that
    XLA runs concurrently, and vmapped their LAPACK calls are batched, which can deadlock the CPU
    backend (see ``l1jax._lapack``); one seed at a time also stops each solve at its own step.
    """
    out = {}
    for method, max_steps, polish in plan:
        res = jax.lax.map(
            lambda Xy, m=method, s=max_steps, p=polish: solvers.lad(
                *Xy, method=m, max_steps=s, polish=p
            ),
            (X, y),
        )
        out[f"{method}/{max_steps}/{polish}"] = (res.objective, res.num_steps)
    return out


# --- references ------------------------------------------------------------------------------


def smoothed_lad_min(X: np.ndarray, y: np.ndarray, mu: float, *, max_iter: int = 500):
    """``min f_mu`` by a damped semismooth Newton method (NumPy, float64).

    ``f_mu`` is piecewise quadratic, so Newton with the generalised Hessian
    ``X_A^T X_A / (n mu)`` (``A``: residuals inside ``(-mu, mu)``) stops once ``A`` is right. A
    Levenberg-Marquardt term keeps the step a descent direction while ``X_A`` is rank deficient
    (few residuals inside): it grows when the line search fails and shrinks when it succeeds.

    Returns:
      ``(f_mu*, ||grad f_mu||)`` at the last iterate; the gradient norm is the certificate.
    """
    n, d = X.shape
    lipschitz = np.linalg.norm(X, 2) ** 2 / (n * mu)

    def value_grad(w):
        r = y - X @ w
        a = np.abs(r)
        val = np.mean(np.where(a < mu, 0.5 * r * r / mu, a - 0.5 * mu))
        return val, -(X.T @ np.clip(r / mu, -1, 1)) / n, a < mu

    w = np.linalg.lstsq(X, y, rcond=None)[0]
    val, g, inside = value_grad(w)
    damping = 1e-12
    for _ in range(max_iter):
        if np.linalg.norm(g) <= 1e-15 * max(1.0, val) * np.sqrt(lipschitz):
            break
        H = X[inside].T @ X[inside] / (n * mu) + damping * lipschitz * np.eye(d)
        step = -np.linalg.solve(H, g)
        t, accepted = 1.0, False
        for _ in range(30):
            new_val, new_g, new_inside = value_grad(w + t * step)
            if new_val <= val + 1e-4 * t * (g @ step):
                accepted = True
                break
            t *= 0.5
        if accepted:
            w, val, g, inside = w + t * step, new_val, new_g, new_inside
            damping = max(damping / 10, 1e-12)
        elif damping >= 1e6:
            break
        else:
            damping *= 100
    return float(val), float(np.linalg.norm(g))


# --- analysis --------------------------------------------------------------------------------


def best_so_far(values: np.ndarray) -> np.ndarray:
    return np.minimum.accumulate(values, axis=-1)


def tail_slope(k: np.ndarray, gap: np.ndarray, floor: float) -> tuple[float, int, int]:
    """Least-squares slope of ``log gap`` on ``log k`` over the last decade before the floor.

    The window is ``[k_end / 10, k_end]`` with ``k_end`` the last ``k`` whose gap is above
    ``floor`` (the last ``k`` if it never gets there). NaN when fewer than 3 points fall in it.

    Returns:
      ``(slope, k_lo, k_end)``.
    """
    above = np.nonzero(gap > floor)[0]
    if above.size == 0:
        return float("nan"), 0, 0
    # Stop at the first sample under the floor: later ones are rounding noise.
    under = np.nonzero(gap <= floor)[0]
    last = above[-1] if under.size == 0 else (under[0] - 1)
    if last < 0:
        return float("nan"), 0, 0
    k_end = k[last]
    sel = (k >= k_end / 10) & (k <= k_end)
    if sel.sum() < 3:
        return float("nan"), int(k_end / 10), int(k_end)
    slope = np.polyfit(np.log(k[sel]), np.log(gap[sel]), 1)[0]
    return float(slope), int(np.ceil(k_end / 10)), int(k_end)


def first_below(k: np.ndarray, gap: np.ndarray, level: float) -> int | None:
    hit = np.nonzero(gap <= level)[0]
    return int(k[hit[0]]) if hit.size else None


def decade_slopes(k: np.ndarray, gap: np.ndarray, floor: float) -> dict[str, float | None]:
    """Slope over each full decade ``[10^j, 10^(j+1)]`` of ``k`` whose gaps all exceed ``floor``."""
    out: dict[str, float | None] = {}
    for j in range(int(math.log10(k[-1])) + 1):
        lo, hi = 10**j, 10 ** (j + 1)
        sel = (k >= lo) & (k <= hi)
        if hi > k[-1] or sel.sum() < 3:
            continue
        ok = bool(np.all(gap[sel] > floor))
        fit = np.polyfit(np.log(k[sel]), np.log(gap[sel]), 1)[0] if ok else None
        out[f"{lo}-{hi}"] = None if fit is None else float(fit)
    return out


# --- the study -------------------------------------------------------------------------------


@dataclasses.dataclass
class LadProblemConfig:
    n: int = 200
    d: int = 20
    # Condition number of X^T X / n (eigenvalues spread geometrically); 1: orthogonal design.
    kappa: float = 10.0
    # Scale of the Laplace noise.
    noise: float = 1.0


@dataclasses.dataclass
class LassoProblemConfig:
    n: int = 100
    d: int = 50
    # Large on purpose: a well-conditioned lasso converges linearly and hides the 1/k, 1/k^2.
    kappa: float = 1e6
    noise: float = 0.0
    # lam = lam_ratio * ||X^T y||_inf / n (the smallest lam with the all-zero solution).
    lam_ratio: float = 1e-3


@dataclasses.dataclass
class ConvergenceConfig(StudyConfig):
    # Problems drawn from seeds seed, ..., all solved in one vmapped program.
    num_seeds: int = 8
    # Iterations of every first-order method.
    num_steps: int = 10_000
    lad: LadProblemConfig = dataclasses.field(default_factory=LadProblemConfig)
    lasso: LassoProblemConfig = dataclasses.field(default_factory=LassoProblemConfig)
    # Constant subgradient step c (absolute).
    constant_step: float = 0.05
    # c/sqrt(k+1) with c = inv_sqrt_scale * R / G (R = ||x_0 - x*||, the bound's best c).
    inv_sqrt_scale: float = 1.0
    # Huber width of the smoothing (bias <= mu / 2).
    mu: float = 1e-3
    # l1jax.solvers.lad methods and the max_steps values each is run with.
    solver_steps: dict[str, list[int]] = dataclasses.field(
        default_factory=lambda: {
            "irls": [1, 2, 4, 8, 16, 32, 64, 128, 256, 500],
            "ipm": [1, 2, 3, 4, 5, 6, 7, 8, 10, 12],
        }
    )
    # Gaps below floor_rtol * f* are at the accuracy of the certificate: fits stop there.
    floor_rtol: float = 1e-10


SMOKE = {
    "num_seeds": 4,
    "num_steps": 2000,
    "solver_steps": {"irls": [4, 16, 64], "ipm": [2, 4, 8]},
    # 2000 steps of gradient descent do not get anywhere at mu = 1e-3.
    "mu": 1e-2,
}

# name: (problem, label, theory slope or None, what theory says)
METHODS: dict[str, tuple[str, str, float | None, str]] = {
    "subgradient_constant": ("lad", "subgradient, constant c", None, "plateau: bound -> G^2 c / 2"),
    "subgradient_inv_sqrt": ("lad", "subgradient, c/sqrt(k+1)", -0.5, "O(log k / sqrt k) bound"),
    "subgradient_polyak": (
        "lad",
        "subgradient, Polyak step",
        -0.5,
        "G R / sqrt k bound; linear when sharp",
    ),
    "smoothing_gd": (
        "lad",
        "Huber smoothing + GD (f_mu gap)",
        -1.0,
        "L_mu R^2 / (2k); f within mu/2",
    ),
    "smoothing_nesterov": (
        "lad",
        "Huber smoothing + Nesterov (f_mu gap)",
        -2.0,
        "2 L_mu R^2 / (k+1)^2; f within mu/2",
    ),
    "irls": ("lad", "IRLS, solvers.lad(method='irls')", None, "MM descent; floor O(n eps)"),
    "ipm": ("lad", "interior point, solvers.lad(method='ipm')", None, "superlinear"),
    "admm": ("lad", "ADMM, solvers.lad(method='admm')", None, "O(1/k) ergodic"),
    "ista": ("lasso", "ISTA", -1.0, "L R^2 / (2k)"),
    "fista": ("lasso", "FISTA (best so far)", -2.0, "2 L R^2 / (k+1)^2"),
}


def validate(cfg: ConvergenceConfig) -> None:
    positive = {
        "num_seeds": cfg.num_seeds,
        "num_steps": cfg.num_steps,
        "constant_step": cfg.constant_step,
        "inv_sqrt_scale": cfg.inv_sqrt_scale,
        "mu": cfg.mu,
        "floor_rtol": cfg.floor_rtol,
        "lad.kappa": cfg.lad.kappa,
        "lasso.kappa": cfg.lasso.kappa,
        "lasso.lam_ratio": cfg.lasso.lam_ratio,
    }
    for key, value in positive.items():
        if not value > 0:
            raise ConfigError(key=key, expected="> 0", given=repr(value))
    for section in ("lad", "lasso"):
        p = getattr(cfg, section)
        if not 1 <= p.d <= p.n:
            raise ConfigError(key=f"{section}.d", expected=f"1 <= d <= n = {p.n}", given=repr(p.d))
    if cfg.num_steps < 10:
        raise ConfigError(
            key="num_steps", expected=">= 10 (a decade to fit)", given=repr(cfg.num_steps)
        )
    for method, steps in cfg.solver_steps.items():
        if method not in ("irls", "ipm", "admm"):
            raise ConfigError(
                key=f"solver_steps.{method}", expected="irls, ipm or admm", given=repr(method)
            )
        if not steps or min(steps) < 1:
            raise ConfigError(
                key=f"solver_steps.{method}", expected="a list of ints >= 1", given=repr(steps)
            )


def _geomean(x: np.ndarray, axis: int = 0) -> np.ndarray:
    return np.exp(np.mean(np.log(x), axis=axis))


def _clean(x: Any) -> Any:
    """NaN -> None (JSON has no NaN), numpy -> Python."""
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    if isinstance(x, np.ndarray):
        return _clean(x.tolist())
    if isinstance(x, np.generic):
        x = x.item()
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _lad_references(X: np.ndarray, y: np.ndarray, mu: float):
    f_star, radius, f_mu_star, newton_grad = [], [], [], []
    for Xs, ys in zip(X, y, strict=True):
        coef, f = reference.lad_lp(Xs, ys)
        fm, gn = smoothed_lad_min(Xs, ys, mu)
        f_star.append(f)
        radius.append(np.linalg.norm(coef))
        f_mu_star.append(fm)
        newton_grad.append(gn)
    n = X.shape[1]
    # ||g|| = ||X^T s|| / n with s in [-1, 1]^n: at most ||X||_2 / sqrt(n) and mean_i ||x_i||.
    G = np.minimum(
        np.linalg.norm(X, 2, axis=(1, 2)) / np.sqrt(n), np.linalg.norm(X, axis=2).mean(axis=1)
    )
    return (np.array(f_star), np.array(radius), G, np.array(f_mu_star), np.array(newton_grad))


def _method_summary(name, k, gap, floor, f_ref) -> dict[str, Any]:
    """Tail and per-decade slopes (per seed, then averaged), final gap and certificate check."""
    problem, label, theory, text = METHODS[name]
    seeds = range(len(gap))
    fits = [tail_slope(k, gap[s], floor[s]) for s in seeds]
    slopes = np.array([f[0] for f in fits])
    decades = [decade_slopes(k, gap[s], floor[s]) for s in seeds]
    decade_mean = {}
    for key in decades[0]:
        vals = [d.get(key) for d in decades]
        decade_mean[key] = None if None in vals else float(np.mean(vals))
    finite = np.isfinite(slopes).any()
    rel = gap / np.abs(f_ref)[:, None]
    return {
        "problem": problem,
        "label": label,
        "theory_slope": theory,
        "theory": text,
        "tail_slope_mean": float(np.nanmean(slopes)) if finite else None,
        "tail_slope_std": float(np.nanstd(slopes)) if finite else None,
        "tail_slopes": slopes,
        "fit_windows": [[f[1], f[2]] for f in fits],
        "decade_slopes": decade_mean,
        "final_gap_geomean": float(_geomean(np.maximum(gap[:, -1], floor))),
        "steps_to_rel_gap_1e-6": [first_below(k, rel[s], 1e-6) for s in seeds],
        # Negative beyond rounding would mean the certificate f* is not a lower bound.
        "min_signed_gap": float(gap.min()),
    }


def run(cfg: ConvergenceConfig, run: runner.Run) -> dict[str, Any]:
    with jax.enable_x64(True):
        return _run(cfg, run)


def _run(cfg: ConvergenceConfig, run: runner.Run) -> dict[str, Any]:
    K = cfg.num_steps
    k = np.arange(1, K + 1)
    p, q = cfg.lad, cfg.lasso
    (X, y), (Xl, yl, lam) = make_problems(
        jax.random.key(cfg.seed),
        lad=(p.n, p.d, p.kappa, p.noise),
        lasso=(q.n, q.d, q.kappa, q.noise, q.lam_ratio),
        num_seeds=cfg.num_seeds,
    )
    Xn, yn = np.asarray(X), np.asarray(y)
    f_star, radius, G, f_mu_star, newton_grad = _lad_references(Xn, yn, cfg.mu)
    lad_floor = cfg.floor_rtol * np.abs(f_star)

    out = jax.tree.map(
        np.asarray,
        lad_first_order_runs(
            X,
            y,
            jnp.asarray(f_star),
            jnp.asarray(radius),
            jnp.asarray(G),
            cfg.constant_step,
            cfg.inv_sqrt_scale,
            mu=cfg.mu,
            num_steps=K,
        ),
    )
    lasso_ref = [
        reference.lasso_cd(a, b, float(c))
        for a, b, c in zip(np.asarray(Xl), np.asarray(yl), np.asarray(lam), strict=True)
    ]
    F_star = np.array([r[1] for r in lasso_ref])
    lasso_floor = cfg.floor_rtol * np.abs(F_star)
    lasso_out = jax.tree.map(np.asarray, lasso_runs(Xl, yl, lam, num_steps=K))

    # Signed gaps per method, shape (num_seeds, K) or (num_seeds, len(steps)) for the solvers.
    curves: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # name -> (k, gap, floor)
    for name in ("subgradient_constant", "subgradient_inv_sqrt", "subgradient_polyak"):
        curves[name] = (k, out[name][0] - f_star[:, None], lad_floor)
    for name in ("smoothing_gd", "smoothing_nesterov"):
        curves[name] = (k, best_so_far(out[name][1] - f_mu_star[:, None]), lad_floor)
    for name in ("ista", "fista"):
        curves[name] = (k, best_so_far(lasso_out[name] - F_star[:, None]), lasso_floor)
    plan = tuple(
        (method, s, False) for method, steps in cfg.solver_steps.items() for s in sorted(set(steps))
    ) + tuple((method, None, True) for method in cfg.solver_steps)
    solved = jax.tree.map(np.asarray, solver_runs(X, y, plan=plan))
    solver_info = {}
    for method, steps in cfg.solver_steps.items():
        steps = sorted(set(steps))
        # Each solve already returns the best objective of its max_steps iterations.
        gap = np.stack([solved[f"{method}/{s}/False"][0] for s in steps], axis=1) - f_star[:, None]
        curves[method] = (np.array(steps), gap, lad_floor)
        obj, num = solved[f"{method}/None/True"]
        solver_info[method] = {
            "max_steps": steps,
            "gap_geomean": _geomean(np.maximum(gap, lad_floor[:, None])),
            "polished_num_steps": num,
            "polished_gap": obj - f_star,
        }

    methods = {}
    for name, (kk, gap, floor) in curves.items():
        f_ref = f_star if METHODS[name][0] == "lad" else F_star
        methods[name] = _method_summary(name, kk, gap, floor, f_ref)
        for j in np.unique(np.round(np.geomspace(1, kk[-1], 60)).astype(int)):
            i = int(np.searchsorted(kk, j))
            if i < len(kk) and kk[i] == j:
                g = np.maximum(gap[:, i], floor)
                run.log(
                    {
                        "method": name,
                        "k": int(j),
                        "gap_geomean": float(_geomean(g)),
                        "gap_min": float(g.min()),
                        "gap_max": float(g.max()),
                    }
                )

    c = cfg.constant_step
    tail = k > K // 10
    constant = {
        "c": c,
        "G_bound": G,
        "G_observed_max": out["subgradient_constant"][2].max(axis=1),
        "plateau_bound_G2c_over_2": G**2 * c / 2,
        "bound_at_K": out["bound_constant"][:, -1],
        "best_gap_at_K": curves["subgradient_constant"][1][:, -1],
        "iterate_gap_median_last_decade": np.median(
            out["subgradient_constant"][1][:, tail] - f_star[:, None], axis=1
        ),
    }
    constant["plateau_bound_over_measured_best"] = float(
        _geomean(constant["plateau_bound_G2c_over_2"] / constant["best_gap_at_K"])
    )
    constant["plateau_bound_over_measured_iterate"] = float(
        _geomean(constant["plateau_bound_G2c_over_2"] / constant["iterate_gap_median_last_decade"])
    )
    smoothing = {
        "mu": cfg.mu,
        "bias_bound_mu_over_2": cfg.mu / 2,
        "f_mu_star_minus_f_star": f_mu_star - f_star,  # in [-mu/2, 0] by f - mu/2 <= f_mu <= f
        "newton_grad_norm": newton_grad,
        "f_gap_at_K_gd": best_so_far(out["smoothing_gd"][0] - f_star[:, None])[:, -1],
        "f_gap_at_K_nesterov": best_so_far(out["smoothing_nesterov"][0] - f_star[:, None])[:, -1],
    }
    summary = {
        "num_seeds": cfg.num_seeds,
        "num_steps": K,
        "lad": {"f_star": f_star, "R": radius, "G": G},
        "lasso": {"F_star": F_star, "lam": np.asarray(lam)},
        "methods": methods,
        "constant_step": constant,
        "smoothing": smoothing,
        "solvers": solver_info,
    }
    _plot(run, curves, out, cfg, f_star, G)
    return _clean(summary)


_COLORS = {
    "subgradient_constant": "tab:blue",
    "subgradient_inv_sqrt": "tab:orange",
    "subgradient_polyak": "tab:green",
    "smoothing_gd": "tab:blue",
    "smoothing_nesterov": "tab:red",
    "irls": "tab:purple",
    "ipm": "tab:brown",
    "admm": "tab:gray",
    "ista": "tab:blue",
    "fista": "tab:red",
}


def _band(ax, kk, gap, floor, name, *, marker=None):
    g = np.maximum(gap, floor[:, None])
    color = _COLORS[name]
    ax.plot(kk, _geomean(g), color=color, marker=marker, ms=3, label=METHODS[name][1])
    ax.fill_between(kk, g.min(axis=0), g.max(axis=0), color=color, alpha=0.15, lw=0)


def _slope_guide(ax, k0, k1, y0, slope, text):
    ks = np.array([k0, k1], dtype=float)
    ax.plot(ks, y0 * (ks / k0) ** slope, "k:", lw=1)
    ax.annotate(text, (k1, y0 * (k1 / k0) ** slope), fontsize=7, ha="left", va="center")


def _plot(run, curves, out, cfg, f_star, G):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))
    K = cfg.num_steps
    ax = axes[0, 0]
    for name in ("subgradient_constant", "subgradient_inv_sqrt", "subgradient_polyak"):
        kk, gap, floor = curves[name]
        _band(ax, kk, gap, floor, name)
    kk = curves["subgradient_constant"][0]
    ax.plot(
        kk, _geomean(out["bound_constant"]), "--", color="tab:blue", lw=1, label="bound, constant"
    )
    ax.plot(
        kk,
        _geomean(out["bound_inv_sqrt"]),
        "--",
        color="tab:orange",
        lw=1,
        label="bound, c/sqrt(k+1)",
    )
    g2c = float(_geomean(G**2 * cfg.constant_step / 2))
    ax.axhline(g2c, color="tab:blue", ls=":", lw=1, label="G^2 c / 2")
    ax.set_title(f"LAD, subgradient methods (d={cfg.lad.d}, n={cfg.lad.n})")

    ax = axes[0, 1]
    for name in ("smoothing_gd", "smoothing_nesterov"):
        kk, gap, floor = curves[name]
        _band(ax, kk, gap, floor, name)
        f_gap = best_so_far(out[name][0] - f_star[:, None])
        ax.plot(
            kk,
            _geomean(np.maximum(f_gap, floor[:, None])),
            "--",
            color=_COLORS[name],
            lw=1.2,
            label=METHODS[name][1].replace("f_mu gap", "LAD gap f - f*"),
        )
    ax.axhline(cfg.mu / 2, color="k", ls="-.", lw=1, label="mu / 2 (bias bound on f)")
    for name, k0, slope in (("smoothing_gd", K // 10, -1), ("smoothing_nesterov", K // 100, -2)):
        anchor = 0.3 * float(_geomean(np.maximum(curves[name][1][:, k0 - 1], curves[name][2])))
        _slope_guide(ax, k0, 10 * k0, anchor, slope, str(slope))
    ax.set_title(f"LAD, Huber smoothing mu={cfg.mu:g}: f_mu - f_mu* (solid), f - f* (dashed)")

    ax = axes[1, 0]
    for name in cfg.solver_steps:
        kk, gap, floor = curves[name]
        _band(ax, kk, gap, floor, name, marker="o")
    ax.set_title("LAD, l1jax.solvers.lad run with max_steps = k (no polish)")

    ax = axes[1, 1]
    for name in ("ista", "fista"):
        kk, gap, floor = curves[name]
        _band(ax, kk, gap, floor, name)
    for name, scale, k1, slope in (("ista", 0.3, K / 10, -1), ("fista", 0.1, 1000, -2)):
        anchor = scale * float(_geomean(np.maximum(curves[name][1][:, 9], curves[name][2])))
        _slope_guide(ax, 10, k1, anchor, slope, str(slope))
    ax.set_title(f"lasso (d={cfg.lasso.d}, n={cfg.lasso.n}, kappa={cfg.lasso.kappa:g})")

    for ax in axes.flat:
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("iteration k")
        ax.set_ylabel("best gap  min_{j<=k} f(x_j) - f*")
        ax.grid(True, which="major", alpha=0.3)
        ax.legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"Gap to the certified optimum, geometric mean over {cfg.num_seeds} seeds (band: min-max)",
        fontsize=11,
    )
    fig.tight_layout()
    run.save_figure(fig, "convergence.png", dpi=80)


def headline(summary: dict[str, Any]) -> list[str]:
    """Fitted tail slopes against theory, and the certificates' check (the results page's
    lead)."""
    lines = ["tail slope of log gap on log k (mean +- std over seeds), theory in brackets:"]
    for name in ("subgradient_inv_sqrt", "smoothing_gd", "ista", "fista"):
        m = summary["methods"].get(name)
        if m is None:
            continue
        slope = (
            "n/a"
            if m["tail_slope_mean"] is None
            else f"{m['tail_slope_mean']:.2f} +- {m['tail_slope_std']:.2f}"
        )
        lines.append(f"  {m['label']}: {slope} ({m['theory_slope']})")
    gap = min(m["min_signed_gap"] for m in summary["methods"].values())
    lines.append(f"smallest gap to the certified optimum: {gap:+.1e} (>= 0 up to rounding)")
    return lines


STUDY = runner.Study(
    name="convergence",
    schema=ConvergenceConfig,
    run=run,
    smoke=SMOKE,
    validate=validate,
    headline=headline,
)

if __name__ == "__main__":
    raise SystemExit(runner.main(STUDY))
