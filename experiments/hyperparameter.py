"""The lasso's lambda by gradient descent on a held-out loss, with the implicit hypergradient.

Bertrand et al. (2020): the validation loss ``V(lam) = ||y_val - X_val b(lam)||^2 / n_val`` of the
lasso solution ``b(lam) = argmin ||y_train - X_train b||^2 / (2 n_train) + lam ||b||_1`` is
differentiable in ``lam`` wherever the support of ``b`` does not change, with
``d b_S / d lam = -n (X_S^T X_S)^{-1} sign(b_S)`` (the KKT conditions on the support ``S``) and
``d b / d lam = 0`` off it. ``l1jax.solvers.lasso`` returns exactly that derivative
(``jax.grad`` through ``coef``: one linear solve on the support, never the iterations), so
``log(lam)`` can be optimised by a first-order method on ``V`` (optax's Adam, Rprop or plain
gradient descent). Compared, on the same train / validation split and in the same process:

* the descent: ``descent.steps`` iterations from ``lam = init_ratio * lam_max``, one solve and one
  hypergradient each (and a table of further descents over optimizers, starts and step sizes:
  the validation loss is not convex in ``lam``, so where a descent ends depends on them);
* a grid of ``grid.num`` log-spaced values from ``lam_max = ||X_train^T y_train||_inf / n_train``
  (where ``b = 0``) down to ``ratio_min * lam_max``, solved by **one** ``solvers.lasso(X, y,
  lam_array)`` call (vmapped over ``lam`` inside the solver);
* scikit-learn's ``LassoCV`` with ``cv=PredefinedSplit`` (train rows fit, validation rows scored;
  its own path of 100 values from its ``alpha_max`` down by ``eps=1e-3``, coordinate descent with
  warm starts, then its refit on train + validation, which its ``fit`` always does).
  ``Lasso``'s objective is ``||y - X w||^2 / (2 n) + alpha ||w||_1``, the same scaling as
  ``solvers.lasso``, so ``alpha = lam``; the study checks it by fitting scikit-learn's ``Lasso`` at
  the chosen ``lam`` and comparing coefficients.

A held-out test split (never used for choosing) scores each method's ``lam``, refitted on the
training rows by ``solvers.lasso``.

Elastic net. ``l1jax`` has no elastic-net solver (``l1jax.prox.prox_elastic_net`` and
``l1jax.penalties.elastic_net`` are its prox and penalty). The elastic net
``||y - X b||^2 / (2n) + lam1 ||b||_1 + lam2 ||b||^2 / 2`` is a lasso on augmented data (Zou and
Hastie 2005, lemma 1): with ``X_a = [X; sqrt(n lam2) I_d]``, ``y_a = [y; 0]`` and
``n_a = n + d`` rows, ``||y_a - X_a b||^2 / (2 n_a) + lam1 (n / n_a) ||b||_1`` is the elastic-net
objective times ``n / n_a``, so ``solvers.lasso(X_a, y_a, lam1 n / n_a)`` solves it exactly; its
derivative in ``X_a`` carries ``d / d lam2``. With ``elastic_net.enabled`` the study also descends
on ``(log lam1, log lam2)`` and compares with a ``num_lam1 x num_lam2`` grid and with
``ElasticNetCV`` (``alpha = lam1 + lam2``, ``l1_ratio = lam1 / (lam1 + lam2)``).

Data: a simulated sparse problem (``x ~ N(0, Sigma)``, ``Sigma_ij = rho^|i - j|``, ``k`` non-zero
coefficients of random sign, Gaussian noise at signal-to-noise ratio ``snr``) and scikit-learn's
diabetes data (442 rows, 10 features, shipped with the package), split at random into train,
validation and test rows, features standardised and ``y`` centred with the training rows' means and
standard deviations. Everything runs in float64.

Timing: each method's wall time in this process after one call that compiled its programs (the
first calls' times, compilation included, are reported apart); for the lasso, the fastest of
``timing_repeats`` identical runs, since other jobs on a shared machine slow some runs down.

References:
  Bertrand, Q., Klopfenstein, Q., Blondel, M., Vaiter, S., Gramfort, A. and Salmon, J. (2020).
    Implicit differentiation of Lasso-type models for hyperparameter optimization. ICML.
  Zou, H. and Hastie, T. (2005). Regularization and variable selection via the elastic net.
    JRSS B 67(2).
  Efron, B., Hastie, T., Johnstone, I. and Tibshirani, R. (2004). Least angle regression.
    Ann. Statist. 32(2) (the diabetes data).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import time
import warnings
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from l1jax import runner, solvers
from l1jax.runner import ConfigError, StudyConfig

OPTIMIZERS = ("adam", "rprop", "sgd")
DATASETS = ("simulated", "diabetes")
DIABETES_ROWS = 442


@dataclasses.dataclass
class SimulatedConfig:
    n_train: int = 100
    n_val: int = 100
    n_test: int = 1000
    d: int = 200
    # Non-zero coefficients, +-1 at random positions.
    k: int = 10
    # corr(x_i, x_j) = rho^|i - j|.
    rho: float = 0.5
    # Var(x^T beta) / noise variance.
    snr: float = 2.0


@dataclasses.dataclass
class DiabetesConfig:
    # Rows drawn at random for training and validation; the rest (442 - both) is the test set.
    n_train: int = 221
    n_val: int = 110


@dataclasses.dataclass
class GridConfig:
    # Log-spaced lam from lam_max down to ratio_min * lam_max.
    num: int = 100
    ratio_min: float = 1e-3


@dataclasses.dataclass
class DescentConfig:
    # On log(lam): adam (optax.adam), rprop (optax.rprop: a step per coordinate that grows by
    # 1.2 while the gradient keeps its sign and halves when it flips; learning_rate is the
    # first step) or sgd (plain gradient descent: the step scales with the loss's units).
    optimizer: str = "adam"
    # Adam's step in log(lam) is at most about learning_rate: 0.3 crosses the grid's three
    # decades (6.9 in log units) in about 23 steps.
    learning_rate: float = 0.3
    steps: int = 50
    # The first iterate: lam = init_ratio * lam_max.
    init_ratio: float = 0.5
    # "Solves to match the grid": the first iterate whose validation loss is within match_rtol
    # (relative) of the grid's best.
    match_rtol: float = 1e-3
    # Further descents (same number of steps), one per combination of these lists: how the
    # outcome depends on the optimizer, the start and the step size (any list empty: none).
    sensitivity_optimizers: list[str] = dataclasses.field(default_factory=lambda: ["adam", "rprop"])
    sensitivity_init_ratios: list[float] = dataclasses.field(
        default_factory=lambda: [0.5, 0.1, 0.01]
    )
    sensitivity_learning_rates: list[float] = dataclasses.field(
        default_factory=lambda: [0.1, 0.3, 0.5]
    )


@dataclasses.dataclass
class ElasticNetConfig:
    enabled: bool = True
    # Grid: num_lam1 lam1 values as the lasso grid's range x num_lam2 log-spaced lam2 values.
    num_lam1: int = 30
    num_lam2: int = 20
    lam2_min: float = 1e-4
    lam2_max: float = 10.0
    # Descent on (log lam1, log lam2) from (init_ratio * lam_max, init_lam2), with the lasso
    # descent's optimizer and learning rate.
    init_lam2: float = 0.1
    steps: int = 100
    # ElasticNetCV's l1_ratio values (each with its default path of 100 alphas).
    l1_ratios: list[float] = dataclasses.field(
        default_factory=lambda: [0.1, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0]
    )


@dataclasses.dataclass
class HyperparameterConfig(StudyConfig):
    datasets: list[str] = dataclasses.field(default_factory=lambda: list(DATASETS))
    simulated: SimulatedConfig = dataclasses.field(default_factory=SimulatedConfig)
    diabetes: DiabetesConfig = dataclasses.field(default_factory=DiabetesConfig)
    grid: GridConfig = dataclasses.field(default_factory=GridConfig)
    descent: DescentConfig = dataclasses.field(default_factory=DescentConfig)
    elastic_net: ElasticNetConfig = dataclasses.field(default_factory=ElasticNetConfig)
    # The hypergradient against a central finite difference of the validation loss in log(lam)
    # at this many points of the descent path (evenly spaced iterates), step fd_step.
    fd_checks: int = 3
    fd_step: float = 1e-5
    # The lasso's grid, descent and LassoCV each run this many times; the fastest is reported.
    timing_repeats: int = 3


# The smoke profile's simulated split has the diabetes split's shapes (221 / 110 / 111 rows,
# 10 features), so that both data sets run the same compiled programs.
SMOKE = {
    "simulated.n_train": 221,
    "simulated.n_val": 110,
    "simulated.n_test": 111,
    "simulated.d": 10,
    "simulated.k": 3,
    "grid.num": 30,
    "elastic_net.num_lam1": 8,
    "elastic_net.num_lam2": 5,
    "elastic_net.l1_ratios": [0.5, 0.9, 1.0],
    "timing_repeats": 1,
    "descent.sensitivity_optimizers": ["rprop"],
    "descent.sensitivity_init_ratios": [0.5],
    "descent.sensitivity_learning_rates": [0.3],
}


def validate(cfg: HyperparameterConfig) -> None:
    s, db, g, de, en = cfg.simulated, cfg.diabetes, cfg.grid, cfg.descent, cfg.elastic_net
    if not cfg.datasets or any(x not in DATASETS for x in cfg.datasets):
        raise ConfigError(
            key="datasets", expected=f"a non-empty list of {DATASETS}", given=repr(cfg.datasets)
        )
    if len(set(cfg.datasets)) != len(cfg.datasets):
        raise ConfigError(key="datasets", expected="each data set once", given=repr(cfg.datasets))
    for key, value, low in (
        ("simulated.n_train", s.n_train, 2),
        ("simulated.n_val", s.n_val, 1),
        ("simulated.n_test", s.n_test, 1),
        ("simulated.d", s.d, 1),
        ("simulated.k", s.k, 1),
        ("diabetes.n_train", db.n_train, 11),
        ("diabetes.n_val", db.n_val, 1),
        ("grid.num", g.num, 2),
        ("descent.steps", de.steps, 1),
        ("elastic_net.num_lam1", en.num_lam1, 2),
        ("elastic_net.num_lam2", en.num_lam2, 2),
        ("elastic_net.steps", en.steps, 1),
        ("fd_checks", cfg.fd_checks, 0),
        ("timing_repeats", cfg.timing_repeats, 1),
    ):
        if isinstance(value, bool) or value < low:
            raise ConfigError(key=key, expected=f"an int >= {low}", given=repr(value))
    if s.k > s.d:
        raise ConfigError(key="simulated.k", expected=f"<= d = {s.d}", given=repr(s.k))
    if not -1 < s.rho < 1:
        raise ConfigError(key="simulated.rho", expected="in (-1, 1)", given=repr(s.rho))
    if db.n_train + db.n_val >= DIABETES_ROWS:
        raise ConfigError(
            key="diabetes.n_val",
            expected=f"n_train + n_val < {DIABETES_ROWS} (rows left for the test set)",
            given=f"n_train={db.n_train}, n_val={db.n_val}",
        )
    for key, value in (
        ("simulated.snr", s.snr),
        ("descent.learning_rate", de.learning_rate),
        ("descent.match_rtol", de.match_rtol),
        ("elastic_net.lam2_min", en.lam2_min),
        ("elastic_net.init_lam2", en.init_lam2),
        ("fd_step", cfg.fd_step),
    ):
        if not value > 0:
            raise ConfigError(key=key, expected="> 0", given=repr(value))
    for key, value in (
        ("grid.ratio_min", g.ratio_min),
        ("descent.init_ratio", de.init_ratio),
        *(("descent.sensitivity_init_ratios", r) for r in de.sensitivity_init_ratios),
    ):
        if not 0 < value < 1:
            raise ConfigError(key=key, expected="in (0, 1)", given=repr(value))
    if any(not lr > 0 for lr in de.sensitivity_learning_rates):
        raise ConfigError(
            key="descent.sensitivity_learning_rates",
            expected="values > 0",
            given=repr(de.sensitivity_learning_rates),
        )
    if not en.lam2_max > en.lam2_min:
        raise ConfigError(
            key="elastic_net.lam2_max",
            expected=f"> lam2_min = {en.lam2_min}",
            given=repr(en.lam2_max),
        )
    if de.optimizer not in OPTIMIZERS:
        raise ConfigError(
            key="descent.optimizer", expected=f"one of {OPTIMIZERS}", given=repr(de.optimizer)
        )
    if any(o not in OPTIMIZERS for o in de.sensitivity_optimizers):
        raise ConfigError(
            key="descent.sensitivity_optimizers",
            expected=f"values in {OPTIMIZERS}",
            given=repr(de.sensitivity_optimizers),
        )
    if not en.l1_ratios or any(not 0 < r <= 1 for r in en.l1_ratios):
        raise ConfigError(
            key="elastic_net.l1_ratios", expected="values in (0, 1]", given=repr(en.l1_ratios)
        )


# --- data ----------------------------------------------------------------------------------------


@dataclasses.dataclass
class Split:
    """Train / validation / test arrays of one data set (float64 NumPy)."""

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    truth: np.ndarray | None = None


def simulated(rng: np.random.Generator, s: SimulatedConfig) -> Split:
    """The sparse linear model: ``n_train + n_val + n_test`` rows from one generator."""
    n = s.n_train + s.n_val + s.n_test
    idx = np.arange(s.d)
    sigma = s.rho ** np.abs(idx[:, None] - idx[None, :])
    X = rng.standard_normal((n, s.d)) @ np.linalg.cholesky(sigma).T
    beta = np.zeros(s.d)
    beta[rng.choice(s.d, s.k, replace=False)] = rng.choice([-1.0, 1.0], s.k)
    noise_sd = np.sqrt(beta @ sigma @ beta / s.snr)
    y = X @ beta + noise_sd * rng.standard_normal(n)
    a, b = s.n_train, s.n_train + s.n_val
    return Split("simulated", X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:], beta)


def diabetes(rng: np.random.Generator, db: DiabetesConfig) -> Split:
    """scikit-learn's diabetes data, randomly split; standardised with the training rows."""
    from sklearn.datasets import load_diabetes

    X, y = load_diabetes(return_X_y=True, scaled=False)
    perm = rng.permutation(len(y))
    X, y = X[perm].astype(np.float64), y[perm].astype(np.float64)
    a, b = db.n_train, db.n_train + db.n_val
    mu, sd, y_mu = X[:a].mean(0), X[:a].std(0), y[:a].mean()
    X, y = (X - mu) / sd, y - y_mu
    return Split("diabetes", X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:])


def lam_max(X: np.ndarray, y: np.ndarray) -> float:
    """The smallest ``lam`` with ``b = 0``: ``||X^T y||_inf / n``."""
    return float(np.max(np.abs(X.T @ y)) / len(y))


# --- the losses and their hypergradients (JAX, one compiled program each per shape) -------------


def augment(X: jax.Array, y: jax.Array, lam2: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``[X; sqrt(n lam2) I]`` and ``[y; 0]``: the elastic net as a lasso (module docstring)."""
    n, d = X.shape
    Xa = jnp.concatenate([X, jnp.sqrt(n * lam2) * jnp.eye(d, dtype=X.dtype)])
    return Xa, jnp.concatenate([y, jnp.zeros(d, y.dtype)])


def enet_coef(X, y, lam1, lam2):
    """The elastic-net solution by ``solvers.lasso`` on augmented data (scalar or 1-D ``lam1``)."""
    n, d = X.shape
    Xa, ya = augment(X, y, lam2)
    return solvers.lasso(Xa, ya, lam1 * (n / (n + d))).coef


def _mse(X, y, coef):
    return jnp.mean((y - X @ coef) ** 2)


@jax.jit
def lasso_value_and_grad(log_lam, Xt, yt, Xv, yv):
    """``((validation MSE, coef), d MSE / d log_lam)`` at ``lam = exp(log_lam)``."""

    def loss(p):
        coef = solvers.lasso(Xt, yt, jnp.exp(p)).coef
        return _mse(Xv, yv, coef), coef

    return jax.value_and_grad(loss, has_aux=True)(log_lam)


@jax.jit
def enet_value_and_grad(log_lams, Xt, yt, Xv, yv):
    """``((validation MSE, coef), gradient in log_lams)`` at ``(lam1, lam2) = exp(log_lams)``."""

    def loss(p):
        coef = enet_coef(Xt, yt, jnp.exp(p[0]), jnp.exp(p[1]))
        return _mse(Xv, yv, coef), coef

    return jax.value_and_grad(loss, has_aux=True)(log_lams)


@jax.jit
def lasso_grid(lams, Xt, yt, Xv, yv):
    """Validation MSE at every ``lams`` (one ``solvers.lasso`` call) and the fits' certificates."""
    res = solvers.lasso(Xt, yt, lams)
    return jnp.mean((yv[None] - res.coef @ Xv.T) ** 2, axis=1), res.converged


@functools.cache
def _optimizer(name: str, learning_rate: float):
    """The optax optimizer and its compiled update ``(g, state, p) -> (p, state)``."""
    opt = {"adam": optax.adam, "rprop": optax.rprop, "sgd": optax.sgd}[name](learning_rate)

    @jax.jit
    def update(g, state, p):
        updates, state = opt.update(g, state, p)
        return optax.apply_updates(p, updates), state

    return opt, update


class Problem:
    """One split as JAX arrays; ``value(p)`` is the validation MSE at ``exp(p)`` with its
    gradient in ``p`` and the coefficients (``p`` a scalar: the lasso; ``(2,)``: the elastic net).

    Every evaluation is one call of a compiled program (a solve and a hypergradient).
    """

    def __init__(self, sp: Split):
        self.split = sp
        self.train_val = tuple(map(jnp.asarray, (sp.X_train, sp.y_train, sp.X_val, sp.y_val)))

    def value(self, p) -> tuple[float, np.ndarray, np.ndarray]:
        p = jnp.asarray(p, jnp.float64)
        fn = lasso_value_and_grad if p.ndim == 0 else enet_value_and_grad
        (v, coef), g = fn(p, *self.train_val)
        return float(v), np.asarray(g), np.asarray(coef)

    def test_loss(self, coef: np.ndarray) -> float:
        sp = self.split
        return float(np.mean((sp.y_test - sp.X_test @ coef) ** 2))


def descend(problem: Problem, p0, optimizer: str, learning_rate: float, steps: int):
    """``steps`` optimizer steps on ``p`` (log hyperparameters) from ``p0``.

    Returns the iterates ``exp(p)`` ``(steps, len(p0))``, their validation losses and gradients.
    """
    opt, update = _optimizer(optimizer, learning_rate)
    p = jnp.asarray(p0, jnp.float64)
    state = opt.init(p)
    path, values, grads = [], [], []
    for _ in range(steps):
        v, g, _ = problem.value(p)
        path.append(np.atleast_1d(np.asarray(p)))
        values.append(v)
        grads.append(np.atleast_1d(g))
        p, state = update(jnp.asarray(g), state, p)
    return np.exp(np.array(path)), np.array(values), np.array(grads)


def fd_check(problem: Problem, p: np.ndarray, grad: np.ndarray, h: float) -> dict[str, Any]:
    """The hypergradient against central differences of the validation loss, step ``h`` in ``p``."""
    p = np.atleast_1d(np.asarray(p, np.float64))
    fd = []
    for j in range(len(p)):
        e = np.zeros_like(p)
        e[j] = h
        up, down = (problem.value(q if len(p) > 1 else q[0])[0] for q in (p + e, p - e))
        fd.append((up - down) / (2 * h))
    fd, grad = np.array(fd), np.atleast_1d(grad)
    return {
        "lam": np.exp(p).tolist(),
        "hypergradient": grad.tolist(),
        "finite_difference": fd.tolist(),
        "max_rel_error": float(np.max(np.abs(grad - fd) / np.maximum(np.abs(fd), 1e-300))),
    }


def _timed(fn, *args):
    t0 = time.perf_counter()
    out = jax.block_until_ready(fn(*args))
    return out, time.perf_counter() - t0


def _first_within(values: np.ndarray, target: float, rtol: float) -> int | None:
    """1-based index of the first value ``<= target (1 + rtol)``, or None."""
    hit = np.nonzero(values <= target * (1 + rtol))[0]
    return int(hit[0]) + 1 if hit.size else None


# --- scikit-learn ---------------------------------------------------------------------------------


def _sklearn_cv(sp: Split, l1_ratios: list[float] | None = None):
    """``LassoCV`` (``l1_ratios`` None) or ``ElasticNetCV`` on the predefined train / val split."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import ElasticNetCV, LassoCV
    from sklearn.model_selection import PredefinedSplit

    X = np.concatenate([sp.X_train, sp.X_val])
    y = np.concatenate([sp.y_train, sp.y_val])
    fold = np.r_[np.full(len(sp.y_train), -1), np.zeros(len(sp.y_val), int)]
    split = PredefinedSplit(fold)
    if l1_ratios is None:
        model = LassoCV(cv=split, fit_intercept=False)
    else:
        model = ElasticNetCV(cv=split, fit_intercept=False, l1_ratio=l1_ratios)
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        model.fit(X, y)
    seconds = time.perf_counter() - t0
    unconverged = sum(issubclass(w.category, ConvergenceWarning) for w in caught)
    return model, seconds, unconverged


def _sklearn_coef(sp: Split, alpha: float, l1_ratio: float = 1.0) -> np.ndarray:
    from sklearn.linear_model import ElasticNet, Lasso

    kw = dict(alpha=alpha, fit_intercept=False, tol=1e-14, max_iter=1_000_000)
    model = Lasso(**kw) if l1_ratio == 1.0 else ElasticNet(l1_ratio=l1_ratio, **kw)
    return model.fit(sp.X_train, sp.y_train).coef_


# --- one data set ---------------------------------------------------------------------------------


def _descent_summary(cfg, problem, path, values, grads, seconds, compile_seconds, grid_best):
    i = int(np.argmin(values))
    _, _, coef = problem.value(np.log(path[i]) if path.shape[1] > 1 else np.log(path[i, 0]))
    return {
        "optimizer": cfg.descent.optimizer,
        "learning_rate": cfg.descent.learning_rate,
        "lam": path[i].tolist(),
        "val_loss": float(values[i]),
        "final_val_loss": float(values[-1]),
        "test_loss": problem.test_loss(coef),
        "best_step": i + 1,
        "grad_at_best": grads[i].tolist() if grads.shape[1] > 1 else float(grads[i, 0]),
        "grad_at_start": grads[0].tolist() if grads.shape[1] > 1 else float(grads[0, 0]),
        "solves": len(values),
        "solves_to_match_grid": _first_within(values, grid_best, cfg.descent.match_rtol),
        "seconds": seconds,
        "compile_seconds": compile_seconds,
        "vs_grid_rel": float(values[i] / grid_best - 1),
        "support_size": int(np.sum(coef != 0)),
        "path_lam": path.tolist(),
        "path_val_loss": values.tolist(),
        "path_grad": grads.tolist(),
    }, coef


def study_lasso(cfg: HyperparameterConfig, problem: Problem) -> dict[str, Any]:
    """Descent, grid and LassoCV on one split; the hypergradient checks; scikit-learn's scaling."""
    sp = problem.split
    lmax = lam_max(sp.X_train, sp.y_train)
    lams = lmax * np.logspace(0, np.log10(cfg.grid.ratio_min), cfg.grid.num)
    p0 = np.log(cfg.descent.init_ratio * lmax)

    # First calls compile (and solve once); the timed calls below reuse the programs.
    de = cfg.descent
    _, compile_grid = _timed(lasso_grid, jnp.asarray(lams), *problem.train_val)
    t0 = time.perf_counter()
    descend(problem, p0, de.optimizer, de.learning_rate, 2)
    compile_step = time.perf_counter() - t0

    # Each method runs timing_repeats times (the same computation each time); the fastest
    # counts (the others measure the machine's other jobs).
    reps = range(cfg.timing_repeats)
    runs = [_timed(lasso_grid, jnp.asarray(lams), *problem.train_val) for _ in reps]
    (grid_val, grid_ok), grid_times = runs[0][0], [t for _, t in runs]
    grid_val = np.asarray(grid_val)
    i_best = int(np.argmin(grid_val))
    grid_best = float(grid_val[i_best])

    descent_times = []
    for _ in reps:
        t0 = time.perf_counter()
        path, values, grads = descend(problem, p0, de.optimizer, de.learning_rate, de.steps)
        descent_times.append(time.perf_counter() - t0)
    descent, coef_desc = _descent_summary(
        cfg, problem, path, values, grads, min(descent_times), compile_step, grid_best
    )
    descent["seconds_each"] = descent_times
    descent["lam"] = descent["lam"][0]
    descent["lam_ratio"] = descent["lam"] / lmax

    cv_runs = [_sklearn_cv(sp) for _ in reps]
    cv, _, cv_unconverged = cv_runs[0]
    cv_times = [t for _, t, _ in cv_runs]
    cv_alphas = np.asarray(cv.alphas_)
    cv_mse = np.asarray(cv.mse_path_).reshape(len(cv_alphas))  # one fold
    lam_cv = float(cv.alpha_)
    cv_val, _, cv_coef = problem.value(np.log(lam_cv))
    _, _, grid_coef = problem.value(np.log(lams[i_best]))

    sensitivity = []
    for name, ratio, lr in itertools.product(
        de.sensitivity_optimizers, de.sensitivity_init_ratios, de.sensitivity_learning_rates
    ):
        opt, update = _optimizer(name, lr)
        p = jnp.asarray(0.0, jnp.float64)
        jax.block_until_ready(update(p, opt.init(p), p))  # compile the update outside the timing
        t0 = time.perf_counter()
        path_s, values_s, grads_s = descend(problem, np.log(ratio * lmax), name, lr, de.steps)
        seconds = time.perf_counter() - t0
        i = int(np.argmin(values_s))
        sensitivity.append(
            {
                "optimizer": name,
                "init_ratio": ratio,
                "learning_rate": lr,
                "lam_ratio": float(path_s[i, 0] / lmax),
                "val_loss": float(values_s[i]),
                "best_step": i + 1,
                "grad_at_best": float(grads_s[i, 0]),
                "grad_at_start": float(grads_s[0, 0]),
                "vs_grid_rel": float(values_s[i] / grid_best - 1),
                "solves_to_match_grid": _first_within(values_s, grid_best, de.match_rtol),
                "seconds": seconds,
            }
        )
    # Local minima of the grid curve: the validation loss is not convex in lam.
    inner = np.arange(1, len(grid_val) - 1)
    is_min = (grid_val[inner] < grid_val[inner - 1]) & (grid_val[inner] < grid_val[inner + 1])
    local_minima = [
        {"lam_ratio": float(lams[i] / lmax), "val_loss": float(grid_val[i])} for i in inner[is_min]
    ]

    at = np.linspace(0, len(values) - 1, cfg.fd_checks).round().astype(int)
    checks = [
        {"step": int(i) + 1, **fd_check(problem, np.log(path[i, 0]), grads[i], cfg.fd_step)}
        for i in at
    ]
    return {
        "lam_max": lmax,
        "grid": {
            "lam": float(lams[i_best]),
            "lam_ratio": float(lams[i_best] / lmax),
            "val_loss": grid_best,
            "test_loss": problem.test_loss(grid_coef),
            "solves": int(cfg.grid.num),
            "seconds": min(grid_times),
            "seconds_each": grid_times,
            "compile_seconds": compile_grid,
            "all_converged": bool(np.all(np.asarray(grid_ok))),
            "support_size": int(np.sum(grid_coef != 0)),
            "local_minima": local_minima,
            "lams": lams.tolist(),
            "val_losses": grid_val.tolist(),
        },
        "descent": descent,
        "lassocv": {
            "lam": lam_cv,
            "lam_ratio": lam_cv / lmax,
            "val_loss": float(cv_mse.min()),
            "val_loss_exact": cv_val,
            "test_loss": problem.test_loss(cv_coef),
            "solves": len(cv_alphas) + 1,
            "seconds": min(cv_times),
            "seconds_each": cv_times,
            "convergence_warnings": cv_unconverged,
            "support_size": int(np.sum(cv_coef != 0)),
            "alpha_range": [float(cv_alphas.min()), float(cv_alphas.max())],
        },
        "descent_sensitivity": sensitivity,
        "hypergradient_checks": checks,
        "sklearn_lasso_max_abs_coef_diff": float(
            np.max(np.abs(coef_desc - _sklearn_coef(sp, descent["lam"])))
        ),
    }


def study_enet(cfg: HyperparameterConfig, problem: Problem, lmax: float) -> dict[str, Any]:
    """The elastic net's (lam1, lam2) by descent, a 2-D grid and ElasticNetCV."""
    en, sp = cfg.elastic_net, problem.split
    lams1 = lmax * np.logspace(0, np.log10(cfg.grid.ratio_min), en.num_lam1)
    lams2 = np.logspace(np.log10(en.lam2_min), np.log10(en.lam2_max), en.num_lam2)
    p0 = np.log([cfg.descent.init_ratio * lmax, en.init_lam2])

    de = cfg.descent
    t0 = time.perf_counter()
    descend(problem, p0, de.optimizer, de.learning_rate, 2)
    compile_step = time.perf_counter() - t0

    # The grid runs the descent's program point by point (a solve and a hypergradient each, the
    # latter unused): one more compiled program would cost more than the gradients.
    t0 = time.perf_counter()
    grid_val = np.array([[problem.value(np.log([l1, l2]))[0] for l1 in lams1] for l2 in lams2])
    grid_seconds = time.perf_counter() - t0  # grid_val: (num_lam2, num_lam1)
    i2, i1 = np.unravel_index(int(np.argmin(grid_val)), grid_val.shape)
    grid_best = float(grid_val[i2, i1])

    t0 = time.perf_counter()
    path, values, grads = descend(problem, p0, de.optimizer, de.learning_rate, en.steps)
    descent_seconds = time.perf_counter() - t0
    descent, coef_desc = _descent_summary(
        cfg, problem, path, values, grads, descent_seconds, compile_step, grid_best
    )
    lam1_d, lam2_d = descent["lam"]

    cv, cv_seconds, cv_unconverged = _sklearn_cv(sp, list(en.l1_ratios))
    cv_mse = np.asarray(cv.mse_path_).reshape(len(en.l1_ratios), -1)  # (l1_ratios, alphas)
    alpha, ratio = float(cv.alpha_), float(cv.l1_ratio_)
    lam1_cv, lam2_cv = alpha * ratio, alpha * (1 - ratio)
    # lam2 = 0 (l1_ratio 1) is the lasso; log(0) has no place in the descent's parametrisation.
    cv_val, _, cv_coef = problem.value(np.log([lam1_cv, max(lam2_cv, 1e-300)]))
    _, _, grid_coef = problem.value(np.log([lams1[i1], lams2[i2]]))
    return {
        "grid": {
            "lam": [float(lams1[i1]), float(lams2[i2])],
            "val_loss": grid_best,
            "test_loss": problem.test_loss(grid_coef),
            "solves": int(grid_val.size),
            "seconds": grid_seconds,
            "support_size": int(np.sum(grid_coef != 0)),
            "lams1": lams1.tolist(),
            "lams2": lams2.tolist(),
            "val_losses": grid_val.tolist(),
        },
        "descent": descent,
        "elasticnetcv": {
            "lam": [lam1_cv, lam2_cv],
            "alpha": alpha,
            "l1_ratio": ratio,
            "val_loss": float(cv_mse.min()),
            "val_loss_exact": cv_val,
            "test_loss": problem.test_loss(cv_coef),
            "solves": int(cv_mse.size) + 1,
            "seconds": cv_seconds,
            "convergence_warnings": cv_unconverged,
            "support_size": int(np.sum(cv_coef != 0)),
        },
        "hypergradient_check": fd_check(problem, np.log(path[-1]), grads[-1], cfg.fd_step),
        "sklearn_enet_max_abs_coef_diff": float(
            np.max(
                np.abs(coef_desc - _sklearn_coef(sp, lam1_d + lam2_d, lam1_d / (lam1_d + lam2_d)))
            )
        ),
    }


# --- the study ------------------------------------------------------------------------------------


def run(cfg: HyperparameterConfig, run: runner.Run) -> dict[str, Any]:
    out: dict[str, Any] = {}
    with jax.enable_x64(True):
        for name in cfg.datasets:
            rng = np.random.default_rng([cfg.seed, DATASETS.index(name)])
            if name == "simulated":
                sp = simulated(rng, cfg.simulated)
            else:
                sp = diabetes(rng, cfg.diabetes)
            problem = Problem(sp)
            res = {
                "n_train": len(sp.y_train),
                "n_val": len(sp.y_val),
                "n_test": len(sp.y_test),
                "d": sp.X_train.shape[1],
                "val_mean_square": float(np.mean(sp.y_val**2)),
                "lasso": study_lasso(cfg, problem),
            }
            if cfg.elastic_net.enabled:
                res["elastic_net"] = study_enet(cfg, problem, res["lasso"]["lam_max"])
            for model in ("lasso", "elastic_net"):
                for method, m in res.get(model, {}).items():
                    if isinstance(m, dict) and "val_loss" in m:
                        run.log({"tag": model, "data": name, "method": method, **_scalars(m)})
            out[name] = res
    summary = {"datasets": out}
    _plot(run, cfg, summary)
    if cfg.elastic_net.enabled:
        _plot_enet(run, cfg, summary)
    return summary


def _scalars(d: dict[str, Any]) -> dict[str, Any]:
    """The entries that are numbers (or a pair of them), for a metrics line."""
    return {k: v for k, v in d.items() if not isinstance(v, (list, dict)) or k == "lam"}


def _plot(run, cfg, summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = summary["datasets"]
    fig, axes = plt.subplots(2, len(data), figsize=(5.4 * len(data), 7.2), squeeze=False)
    for j, (name, res) in enumerate(data.items()):
        g, de, cv = res["lasso"]["grid"], res["lasso"]["descent"], res["lasso"]["lassocv"]
        lams, vals = np.asarray(g["lams"]), np.asarray(g["val_losses"])
        path, path_val = np.asarray(de["path_lam"])[:, 0], np.asarray(de["path_val_loss"])
        steps = np.arange(1, len(path) + 1)
        best = float(vals.min())
        for i, ax in enumerate(axes[:, j]):
            ax.plot(lams, vals, color="0.3", lw=1.5, marker="." if i else None, ms=3,
                    label=f"grid ({g['solves']} values, one solver call)")  # fmt: skip
            ax.plot(path, path_val, color="tab:blue", lw=0.6, alpha=0.6)
            sc = ax.scatter(path, path_val, c=steps, cmap="viridis", s=14, zorder=3,
                            label=f"{de['optimizer']} iterates ({len(steps)} solves)")  # fmt: skip
            ax.axvline(cv["lam"], color="tab:red", ls="--", lw=1, label="LassoCV alpha")
            ax.plot(g["lam"], g["val_loss"], "k*", ms=10, label="grid best")
            ax.set_xscale("log")
            ax.set_xlabel("lambda")
            ax.set_ylabel("validation MSE")
            fig.colorbar(sc, ax=ax, label="descent step", pad=0.01)
        axes[0, j].set_title(f"{name}: n_train={res['n_train']}, d={res['d']}")
        axes[0, j].legend(fontsize=7)
        # Zoom: where the grid curve is within 4% of its best.
        near = lams[vals <= best * 1.04]
        zoom = axes[1, j]
        zoom.set_xlim(near.min() / 1.5, near.max() * 1.5)
        zoom.set_ylim(best * 0.998, best * 1.04)
        zoom.set_title(f"{name}: zoom (within 4% of the grid's best)", fontsize=9)
    fig.tight_layout()
    run.save_figure(fig, "hyperparameter.png", dpi=90)


def _plot_enet(run, cfg, summary):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    data = summary["datasets"]
    fig, axes = plt.subplots(1, len(data), figsize=(5.2 * len(data), 4.0), squeeze=False)
    for ax, (name, res) in zip(axes[0], data.items(), strict=True):
        en = res["elastic_net"]
        g, de = en["grid"], en["descent"]
        val = np.asarray(g["val_losses"])
        cs = ax.contourf(g["lams1"], g["lams2"], np.log10(val), levels=20, cmap="Greys_r")
        fig.colorbar(cs, ax=ax, label="log10 validation MSE", pad=0.01)
        path = np.asarray(de["path_lam"])
        ax.plot(path[:, 0], path[:, 1], ".-", color="tab:blue", ms=4, lw=0.8, label="descent")
        ax.plot(*g["lam"], "r*", ms=10, label="grid best")
        cv = en["elasticnetcv"]
        if cv["lam"][1] > 0:
            ax.plot(*cv["lam"], "o", mfc="none", mec="tab:orange", ms=9, label="ElasticNetCV")
        else:  # l1_ratio 1: lam2 = 0, off the log axis
            ax.axvline(cv["lam"][0], color="tab:orange", ls="--", lw=1,
                       label="ElasticNetCV (l1_ratio 1: lam2 = 0)")  # fmt: skip
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("lam1 (l1)")
        ax.set_ylabel("lam2 (l2)")
        ax.set_title(f"{name}: elastic net")
        ax.legend(fontsize=7)
    fig.tight_layout()
    run.save_figure(fig, "hyperparameter_enet.png", dpi=90)


def headline(summary: dict[str, Any]) -> list[str]:
    """Per data set: the validation MSE of descent, grid and LassoCV, with solves and seconds."""
    lines = []
    for name, res in summary["datasets"].items():
        m = res["lasso"]
        parts = [
            f"{label} {m[k]['val_loss']:.5g} ({m[k]['solves']} solves, {m[k]['seconds']:.2f} s)"
            for k, label in (("descent", "descent"), ("grid", "grid"), ("lassocv", "LassoCV"))
        ]
        lines.append(f"{name}: validation MSE " + ", ".join(parts))
    return lines


STUDY = runner.Study(
    name="hyperparameter",
    schema=HyperparameterConfig,
    run=run,
    smoke=SMOKE,
    validate=validate,
    headline=headline,
)

if __name__ == "__main__":
    raise SystemExit(runner.main(STUDY))
