"""Robustness of L1, MSE, Huber and smooth L1 regression to gross outliers.

Linear data ``y = x . w + b + 0.1 e`` (``x ~ N(0, I_d)``) in which a growing fraction of rows
follows another linear model ``w_out = w + s u`` instead (``|w_out - w| = s``, gross errors in
``y`` only; see :func:`l1jax.datasets.contaminated_linear`). A linear model is fitted with each
loss by Adam on the full batch; all seeds and contamination fractions train together as one
vmapped program (``sweep: {seed: [...], data.fraction: [...]}``), one program per loss. The
study reports the coefficient error ``|w_hat - w|`` against the fraction, and how far each fit
is from its loss's exact minimiser (linear program for L1, least squares for MSE, BFGS for the
smooth losses, all SciPy/NumPy in float64) so that optimisation error is not mistaken for
statistical error.

Expected: least squares moves by about ``fraction * s``; L1 (and Huber/smooth L1, linear in
the tails) stays near the clean error as long as the outliers are in ``y`` and fewer than half.
Leverage points (``data.outliers: leverage``: outlier rows also have large ``x``) break L1 too.

Run: ``python experiments/robustness.py --config configs/robustness/default.yaml``.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from l1jax import runner
from l1jax.runner import ConfigError, Problem, RunConfig, Task, TrainConfig, bind, make_grid
from l1jax.runner.config import check_name
from l1jax.runner.registry import DATASETS, LOSSES, MODELS
from l1jax.solvers import reference


@dataclasses.dataclass
class RobustnessConfig(RunConfig):
    # {name: <dataset>, <its keywords>}: l1jax.datasets.contaminated_linear by default.
    data: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {
            "name": "contaminated_linear",
            "n": 512,
            "d": 5,
            "fraction": 0.0,
            "noise": 0.1,
            "outliers": "response",
            "outlier_scale": 10.0,
        }
    )
    model: dict[str, Any] = dataclasses.field(default_factory=lambda: {"name": "linear"})
    # Each entry is fitted in turn: {name: <loss in l1jax.losses.LOSSES>, <its hyperparameters>}.
    losses: list[dict[str, Any]] = dataclasses.field(
        default_factory=lambda: [
            {"name": "l1"},
            {"name": "mse"},
            {"name": "huber", "delta": 1.0},
            {"name": "smooth_l1", "beta": 0.1},
        ]
    )
    # Also compute each loss's exact minimiser with SciPy and report the optimisation gap.
    reference: bool = True
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            steps=2000, steps_per_call=500, log_every=50, checkpoint_every=1000
        )
    )


# --- the task --------------------------------------------------------------------------------


def _init(cfg: RobustnessConfig, key: jax.Array) -> Problem:
    k_data, k_model = jax.random.split(key)
    examples, truth = DATASETS.build(cfg.data, key=k_data)
    model = MODELS.build(cfg.model, in_features=cfg.data["d"], key=k_model)
    return Problem(params=model, data=examples, consts=truth)


def _evaluate(cfg: RobustnessConfig, model, data, consts):
    del cfg, data
    return {
        "coef_error": jnp.linalg.norm(model.weight - consts["weight"]),
        "bias_error": jnp.abs(model.bias - consts["bias"]),
    }


@functools.cache
def _task(loss: str) -> Task:
    """The task that fits the loss ``loss`` (a loss spec as sorted JSON), built once per loss so
    that reruns reuse its compiled program; the loss is the task's argument, not a config key."""
    spec = json.loads(loss)
    fn = LOSSES.partial(spec)

    def loss_fn(cfg: RobustnessConfig, model, batch, consts, key):
        del cfg, consts, key
        return fn(model(batch["x"]), batch["y"])

    return Task(init=_init, loss=loss_fn, evaluate=_evaluate, args={"loss": spec})


def task(spec: dict[str, Any]) -> Task:
    """The :class:`~l1jax.runner.Task` fitting the loss ``spec`` (``{name: huber, delta: 1}``)."""
    return _task(json.dumps(dict(spec), sort_keys=True))


# --- exact minimisers (float64, SciPy / NumPy) -----------------------------------------------


def _design(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x, np.ones((x.shape[0], 1))], axis=1)


def exact_fit(spec: dict[str, Any], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The exact minimiser ``(w, b)`` of the mean loss, float64 (``l1jax.solvers.reference``)."""
    a = _design(np.asarray(x, np.float64))
    y = np.asarray(y, np.float64)
    name = spec["name"]
    if name == "mse":
        return np.linalg.lstsq(a, y, rcond=None)[0]
    if name == "l1":
        return reference.lad_lp(a, y)[0]
    if name in ("huber", "smooth_l1"):
        # smooth_l1(beta) = huber(delta=beta) / beta: the same minimiser.
        return reference.huber_fit(a, y, float(spec.get("delta", spec.get("beta", 1.0))))[0]
    raise ValueError(f"no exact minimiser for loss {name!r}")


# --- the study -------------------------------------------------------------------------------


def label(spec: dict[str, Any]) -> str:
    """``{name: huber, delta: 1.0}`` -> ``"huber-delta1.0"`` (a run tag)."""
    extra = "".join(f"-{k}{v}" for k, v in spec.items() if k != "name")
    return f"{spec['name']}{extra}"


_EXACT = ("l1", "mse", "huber", "smooth_l1")


def validate(cfg: RobustnessConfig) -> None:
    if not cfg.losses:
        raise ConfigError(key="losses", expected="at least one loss", given="[]")
    probe = jax.ShapeDtypeStruct((8,), jnp.float32)
    for i, spec in enumerate(cfg.losses):
        try:
            # Traced, not run: the loss's own checks of its hyperparameters (delta > 0, ...).
            jax.eval_shape(LOSSES.partial(spec), probe, probe)
        except (LookupError, TypeError, ValueError) as e:
            raise ConfigError(str(e), key=f"losses[{i}]") from None
        check_name(label(spec), f"losses[{i}]")
        if cfg.reference and spec["name"] not in _EXACT:
            raise ConfigError(
                "the study has no exact minimiser for this loss; set reference: false",
                key=f"losses[{i}].name",
                expected=f"one of {list(_EXACT)}",
                given=repr(spec["name"]),
            )
    if len({label(s) for s in cfg.losses}) != len(cfg.losses):
        raise ConfigError(key="losses", expected="distinct entries", given=repr(cfg.losses))
    try:
        MODELS.validate(cfg.model, provided=["in_features", "key"])
    except (LookupError, TypeError) as e:
        raise ConfigError(str(e), key="model") from None
    # The data set's own range checks, for its config and each swept value of a data key.
    grid = make_grid(cfg)
    points = [("data", {})] + [
        (f"sweep.{key}", {key: value})
        for key, values in zip(grid.keys if grid else (), grid.axes if grid else (), strict=True)
        if key.startswith("data.")
        for value in values
    ]
    for where, point in points:
        data = bind(cfg, point).data
        try:
            DATASETS.validate(data, provided=["key"])
            jax.eval_shape(lambda k, data=data: DATASETS.build(data, key=k), jax.random.key(0))
        except (LookupError, TypeError, ValueError) as e:
            raise ConfigError(str(e), key=where) from None


def _groups(result) -> tuple[list[float], list[np.ndarray]]:
    """Grid members grouped by contamination fraction (one group if it is not swept)."""
    grid = result.grid
    if grid is None:
        return [float(result.problem.data["outlier"].mean())], [np.arange(1)]
    if "data.fraction" not in grid.keys:
        return [None], [np.arange(len(grid))]
    fractions = sorted({p["data.fraction"] for p in grid.points})
    return fractions, [
        np.array([i for i, p in enumerate(grid.points) if p["data.fraction"] == f])
        for f in fractions
    ]


def run(cfg: RobustnessConfig, run: runner.Run) -> dict[str, Any]:
    table: dict[str, Any] = {}
    exact_table: dict[str, Any] = {}
    gaps: dict[str, float] = {}
    speeds: dict[str, float] = {}
    fractions: list[float | None] = []
    groups: list[np.ndarray] = []
    for spec in cfg.losses:
        tag = label(spec)
        result = run.train(task(spec), tag=tag)
        speeds[tag] = round(result.steps_per_second, 1)
        err = np.atleast_1d(result.evals["coef_error"])
        fractions, groups = _groups(result)
        table[tag] = {
            "mean": [float(err[g].mean()) for g in groups],
            "std": [float(err[g].std()) for g in groups],
            "max": [float(err[g].max()) for g in groups],
        }
        if cfg.reference:
            fitted, exact, w_true = _exact_fits(spec, result)
            gaps[tag] = float(np.max(np.linalg.norm(fitted - exact, axis=1)))
            exact_err = np.linalg.norm(exact[:, :-1] - w_true, axis=1)
            exact_table[tag] = {"mean": [float(exact_err[g].mean()) for g in groups]}
    summary: dict[str, Any] = {
        "fractions": fractions,
        "seeds": len(groups[0]),
        "coef_error": table,
        "note": "coef_error = |w_hat - w_true| over seeds (mean/std/max) at each outlier fraction",
        "steps_per_second": speeds,
    }
    if cfg.reference:
        summary["exact_minimiser_coef_error_mean"] = exact_table
        summary["max_distance_to_exact_minimiser"] = gaps
    _print_table(summary)
    _plot(run, summary, cfg)
    return summary


def _exact_fits(spec, result) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per grid point: the trained ``(w, b)``, the exact minimiser's, and ``w_true``."""
    x = np.asarray(result.problem.data["x"])
    n, d = x.shape[-2:]
    x = x.reshape(-1, n, d)
    y = np.asarray(result.problem.data["y"]).reshape(-1, n)
    fitted = np.concatenate(
        [
            np.asarray(result.params.weight).reshape(-1, d),
            np.asarray(result.params.bias).reshape(-1, 1),
        ],
        axis=1,
    )
    exact = np.stack([exact_fit(spec, x[i], y[i]) for i in range(len(x))])
    w_true = np.asarray(result.problem.consts["weight"]).reshape(-1, d)
    return fitted, exact, w_true


def _print_table(summary: dict[str, Any]) -> None:
    losses = list(summary["coef_error"])
    print("coefficient error |w_hat - w_true| (mean over seeds)")
    print("fraction  " + "  ".join(f"{t:>16}" for t in losses))
    for i, f in enumerate(summary["fractions"]):
        cells = "  ".join(f"{summary['coef_error'][t]['mean'][i]:>16.4f}" for t in losses)
        print(f"{f if f is not None else '-':>8}  {cells}")


def _plot(run: runner.Run, summary: dict[str, Any], cfg: RobustnessConfig) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fractions = summary["fractions"]
    if any(f is None for f in fractions):
        return
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for tag, row in summary["coef_error"].items():
        ax.errorbar(fractions, row["mean"], yerr=row["std"], marker="o", capsize=3, label=tag)
    ax.set_yscale("log")
    ax.set_xlabel("fraction of outliers")
    ax.set_ylabel(r"$\|\hat w - w\|$ (mean $\pm$ std over seeds)")
    ax.set_title(
        f"{cfg.data.get('outliers', 'response')} outliers, "
        f"|w_out - w| = {cfg.data.get('outlier_scale')}"
    )
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0))
    run.save_figure(fig, "coef_error.png")


STUDY = runner.Study(
    name="robustness",
    schema=RobustnessConfig,
    run=run,
    validate=validate,
    smoke={
        "data.n": 64,
        "train.steps": 300,
        "train.steps_per_call": 100,
        "train.checkpoint_every": 200,
        "sweep": {"seed": [0, 1], "data.fraction": [0.0, 0.2, 0.4]},
    },
)

if __name__ == "__main__":
    raise SystemExit(runner.main(STUDY))
