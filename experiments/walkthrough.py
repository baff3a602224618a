"""The one-weight model ``y_hat = w x``, its L1 and L2 losses, their derivatives and GD on both.

With a handful of points ``(x_i, y_i)``, ``y_i ~ 2 x_i``, the study draws, for the clean data and
for the same data with one outlier:

* the losses ``L1(w) = sum_i |y_i - w x_i|`` and ``L2(w) = sum_i (y_i - w x_i)^2`` (or their
  means, ``reduction: mean``);
* their derivatives, computed by ``jax.grad`` of :func:`l1jax.losses.l1` and
  :func:`l1jax.losses.mse`: for L1 the step function ``sum_i -x_i sign(y_i - w x_i)``, which
  jumps by ``2 |x_j|`` at each kink ``w_j = y_j / x_j``; at a kink ``jax.grad`` returns the middle
  of the jump (each ``|.|`` term contributes its minimum-norm subgradient 0), a valid subgradient;
* gradient descent on both losses from the same start, all four runs in one ``vmap``-ed
  ``lax.scan``;
* the data are ``y_i = 2 x_i + noise`` with each ratio ``y_i / x_i`` rounded to a multiple of
  ``2^-12``, so that the kinks are exact floats and the derivative can be evaluated *at* them;
* the minimisers in closed form: for L1 the weighted median of the ratios ``y_i / x_i`` with
  weights ``|x_i|`` (since ``|y_i - w x_i| = |x_i| |y_i / x_i - w|``), for L2
  ``sum x_i y_i / sum x_i^2``, and how far the outlier moves each.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from l1jax import losses, runner
from l1jax.runner import ConfigError, StudyConfig

# --- closed forms (NumPy, float64) ------------------------------------------------------------


def weighted_median(values: np.ndarray, weights: np.ndarray) -> float:
    """The smallest minimiser of ``sum_i weights_i |values_i - m|`` (weights ``>= 0``).

    It is the first sorted value at which the cumulative weight reaches half the total; when it
    reaches exactly half, every point up to the next value is a minimiser too.
    """
    order = np.argsort(values)
    v, c = values[order], np.cumsum(weights[order])
    return float(v[np.searchsorted(c, 0.5 * c[-1])])


def l1_minimiser(x: np.ndarray, y: np.ndarray) -> float:
    """``argmin_w sum |y_i - w x_i|``: the weighted median of ``y_i / x_i``, weights ``|x_i|``."""
    keep = x != 0
    return weighted_median(y[keep] / x[keep], np.abs(x[keep]))


def l2_minimiser(x: np.ndarray, y: np.ndarray) -> float:
    """``argmin_w sum (y_i - w x_i)^2 = sum x_i y_i / sum x_i^2``."""
    return float(x @ y / (x @ x))


def exact_kink(x: float, y: float) -> float:
    """A float ``w`` near ``y / x`` with ``w * x == y`` in floating point, so that the residual at
    the kink is exactly 0 (``y / x`` itself may round off it); ``y / x`` when none of its
    8 nearest neighbours does (there may be no such float)."""
    w = y / x
    candidates = [w]
    up = down = w
    for _ in range(4):
        up, down = np.nextafter(up, np.inf), np.nextafter(down, -np.inf)
        candidates += [up, down]
    for c in candidates:
        if c * x == y:
            return float(c)
    return float(w)


# --- losses, derivatives and gradient descent (JAX) -----------------------------------------


def l1_loss(w, x, y, reduction):
    return losses.l1(w * x, y, reduction=reduction)


def l2_loss(w, x, y, reduction):
    return losses.mse(w * x, y, reduction=reduction)


@functools.partial(jax.jit, static_argnames=("reduction",))
def loss_curves(w_grid, x, y, *, reduction):
    """L1, L2 and their ``jax.grad`` on a grid of ``w``, per data set (leading axis of ``y``)."""

    def one(y):
        curves = {}
        for name, fn in (("l1", l1_loss), ("l2", l2_loss)):
            value_and_grad = jax.vmap(jax.value_and_grad(fn), in_axes=(0, None, None, None))
            curves[name], curves[f"d{name}"] = value_and_grad(w_grid, x, y, reduction)
        return curves

    return jax.vmap(one)(y)


@functools.partial(jax.jit, static_argnames=("reduction",))
def l1_grad(w, x, y, *, reduction):
    """``d L1 / dw`` at each ``w`` (a vector), by ``jax.grad``."""
    return jax.vmap(jax.grad(l1_loss), in_axes=(0, None, None, None))(w, x, y, reduction)


@functools.partial(jax.jit, static_argnames=("reduction", "num_steps"))
def gradient_descent(w0, x, y, lr_l1, lr_l2, *, reduction, num_steps):
    """``w_{k+1} = w_k - lr L'(w_k)`` on L1 and L2 for every data set: one vmapped scan.

    Returns:
      ``{"l1": w, "l2": w}``, each of shape ``(len(y), num_steps + 1)``, starting with ``w0``.
    """

    def descend(fn, lr, y):
        grad = jax.grad(fn)

        def step(w, _):
            w = w - lr * grad(w, x, y, reduction)
            return w, w

        _, ws = jax.lax.scan(step, w0, None, length=num_steps)
        return jnp.concatenate([w0[None], ws])

    def one(y):
        return {"l1": descend(l1_loss, lr_l1, y), "l2": descend(l2_loss, lr_l2, y)}

    return jax.vmap(one)(y)


# --- the study -------------------------------------------------------------------------------


@dataclasses.dataclass
class WalkthroughConfig(StudyConfig):
    x: list[float] = dataclasses.field(default_factory=lambda: [1.0, 2.0, 3.0, 4.0, 5.0])
    # y_i = true_slope x_i + noise_scale * N(0, 1), drawn from `seed`.
    true_slope: float = 2.0
    noise_scale: float = 0.2
    # The outlier: y[outlier_index] += outlier_shift.
    outlier_index: int = 4
    outlier_shift: float = 20.0
    # "sum" (the SAE / SSE of the derivation) or "mean" (MAE / MSE: the same minimisers).
    reduction: str = "sum"
    # Plot range and resolution of w.
    w_min: float = 0.0
    w_max: float = 7.0
    grid_points: int = 2001
    # Gradient descent from w0 with a constant learning rate per loss.
    w0: float = 0.0
    lr_l1: float = 0.01
    lr_l2: float = 0.005
    num_steps: int = 60


SMOKE = {"grid_points": 401}


def validate(cfg: WalkthroughConfig) -> None:
    if len(cfg.x) < 2 or not any(v != 0 for v in cfg.x):
        raise ConfigError(key="x", expected="at least 2 values, not all 0", given=repr(cfg.x))
    if not -len(cfg.x) <= cfg.outlier_index < len(cfg.x):
        raise ConfigError(
            key="outlier_index",
            expected=f"an index into x (len {len(cfg.x)})",
            given=repr(cfg.outlier_index),
        )
    if cfg.reduction not in ("sum", "mean"):
        raise ConfigError(key="reduction", expected="'sum' or 'mean'", given=repr(cfg.reduction))
    if not cfg.w_min < cfg.w_max:
        raise ConfigError(key="w_max", expected=f"> w_min = {cfg.w_min}", given=repr(cfg.w_max))
    for key in ("grid_points", "num_steps"):
        if getattr(cfg, key) < 2:
            raise ConfigError(key=key, expected="an int >= 2", given=repr(getattr(cfg, key)))
    for key in ("lr_l1", "lr_l2", "noise_scale"):
        if not getattr(cfg, key) >= 0:
            raise ConfigError(key=key, expected=">= 0", given=repr(getattr(cfg, key)))


# Ratios y_i / x_i are rounded to this grid so that, for integer-valued x, w = y_i / x_i gives
# w * x_i == y_i exactly: jax.grad can then be evaluated *at* a kink (a float w near an arbitrary
# y_i / x_i may round the residual off zero, and the grad there is a one-sided derivative).
_RATIO_GRID = 2.0**-12


def make_data(cfg: WalkthroughConfig) -> tuple[np.ndarray, np.ndarray]:
    """``x`` and ``y`` of shape ``(2, n)``: row 0 clean, row 1 with the outlier."""
    x = np.asarray(cfg.x, np.float64)
    noise = np.asarray(jax.random.normal(jax.random.key(cfg.seed), x.shape, jnp.float64))
    clean = cfg.true_slope * x + cfg.noise_scale * noise
    safe_x = np.where(x != 0, x, 1.0)
    snapped = np.round(clean / safe_x / _RATIO_GRID) * _RATIO_GRID * x
    clean = np.where(x != 0, snapped, clean)
    dirty = clean.copy()
    dirty[cfg.outlier_index] += cfg.outlier_shift
    return x, np.stack([clean, dirty])


def run(cfg: WalkthroughConfig, run: runner.Run) -> dict[str, Any]:
    with jax.enable_x64(True):
        return _run(cfg, run)


def _run(cfg: WalkthroughConfig, run: runner.Run) -> dict[str, Any]:
    x, ys = make_data(cfg)
    n = len(x)
    scale = 1.0 if cfg.reduction == "sum" else 1.0 / n
    w_grid = np.linspace(cfg.w_min, cfg.w_max, cfg.grid_points)
    curves = jax.tree.map(np.asarray, loss_curves(w_grid, x, ys, reduction=cfg.reduction))
    # The clean kinks sit close together around the true slope: the derivative panel zooms in.
    clean_kinks = ys[0][x != 0] / x[x != 0]
    pad = 0.3 * np.ptp(clean_kinks) + 0.05
    zoom_grid = np.linspace(clean_kinks.min() - pad, clean_kinks.max() + pad, cfg.grid_points)
    zoom = jax.tree.map(np.asarray, loss_curves(zoom_grid, x, ys, reduction=cfg.reduction))
    traj = jax.tree.map(
        np.asarray,
        gradient_descent(
            jnp.asarray(cfg.w0, jnp.float64),
            x,
            ys,
            cfg.lr_l1,
            cfg.lr_l2,
            reduction=cfg.reduction,
            num_steps=cfg.num_steps,
        ),
    )

    datasets = {}
    for i, name in enumerate(("clean", "outlier")):
        y = ys[i]
        keep = x != 0
        kinks = np.array([exact_kink(a, b) for a, b in zip(x[keep], y[keep], strict=True)])
        order = np.argsort(kinks)
        kinks, jumps = kinks[order], (2 * np.abs(x[keep]) * scale)[order]
        exact = kinks * x[keep][order] == y[keep][order]
        at_kink = np.asarray(l1_grad(kinks, x, y, reduction=cfg.reduction))
        w1, w2 = l1_minimiser(x, y), l2_minimiser(x, y)
        # The subdifferential at kink j is [g_j - jump_j / 2, g_j + jump_j / 2]; its minimum-norm
        # element is 0 exactly at the L1 minimiser.
        lo, hi = at_kink - jumps / 2, at_kink + jumps / 2
        datasets[name] = {
            "y": y,
            "l1_minimiser": w1,
            "l2_minimiser": w2,
            "l1_at_minimiser": float(np.sum(np.abs(y - w1 * x)) * scale),
            "l2_at_minimiser": float(np.sum((y - w2 * x) ** 2) * scale),
            "l1_grid_argmin": float(w_grid[np.argmin(curves["l1"][i])]),
            "l2_grid_argmin": float(w_grid[np.argmin(curves["l2"][i])]),
            "kinks": kinks,
            # Whether w * x_j == y_j holds in floating point at the kink (else grad_at_kinks is
            # a one-sided derivative).
            "kink_is_exact": exact,
            "grad_at_kinks": at_kink,
            "subdifferential_at_kinks": np.stack([lo, hi], axis=1),
            "min_norm_subgradient_at_kinks": np.clip(0.0, lo, hi),
            "gd_l1_final": float(traj["l1"][i, -1]),
            "gd_l2_final": float(traj["l2"][i, -1]),
            "gd_l1_last10_range": float(np.ptp(traj["l1"][i, -10:])),
            "gd_l2_last10_range": float(np.ptp(traj["l2"][i, -10:])),
        }
    c, o = datasets["clean"], datasets["outlier"]
    w_clean1, w_clean2 = c["l1_minimiser"], c["l2_minimiser"]
    summary = {
        "x": x,
        "reduction": cfg.reduction,
        "outlier": {"index": cfg.outlier_index, "shift": cfg.outlier_shift},
        "clean": c,
        "outlier_data": o,
        "l1_shift": abs(o["l1_minimiser"] - w_clean1),
        "l2_shift": abs(o["l2_minimiser"] - w_clean2),
        # Closed form of the L2 shift: shift * x_j / sum x^2.
        "l2_shift_predicted": abs(cfg.outlier_shift * x[cfg.outlier_index] / (x @ x)),
        # How much the outlier inflates each loss at the clean fit (the seed's 4x against 48x).
        "l1_loss_ratio_at_clean_fit": float(
            np.sum(np.abs(ys[1] - w_clean1 * x)) / np.sum(np.abs(ys[0] - w_clean1 * x))
        ),
        "l2_loss_ratio_at_clean_fit": float(
            np.sum((ys[1] - w_clean2 * x) ** 2) / np.sum((ys[0] - w_clean2 * x) ** 2)
        ),
    }
    summary["l2_shift_over_l1_shift"] = (
        summary["l2_shift"] / summary["l1_shift"] if summary["l1_shift"] > 0 else None
    )
    for k in range(cfg.num_steps + 1):
        run.log(
            {
                "step": k,
                **{
                    f"w_{loss}_{name}": float(traj[loss][i, k])
                    for loss in ("l1", "l2")
                    for i, name in enumerate(("clean", "outlier"))
                },
            }
        )
    _plot(run, cfg, (w_grid, curves), (zoom_grid, zoom), traj, datasets)
    return jax.tree.map(lambda v: v.tolist() if isinstance(v, np.ndarray) else v, summary)


def _plot(run, cfg, full, zoomed, traj, datasets):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    styles = {
        "clean": ("tab:blue", "-", "clean data"),
        "outlier": (
            "tab:red",
            "--",
            f"with outlier (y[{cfg.outlier_index}] += {cfg.outlier_shift:g})",
        ),
    }
    what = "sum" if cfg.reduction == "sum" else "mean"
    w_grid, curves = full
    fig, axes = plt.subplots(2, 2, figsize=(11, 8.5))

    for ax, loss, title in (
        (axes[0, 0], "l1", f"L1 loss: {what} |y_i - w x_i|"),
        (axes[0, 1], "l2", f"L2 loss: {what} (y_i - w x_i)^2"),
    ):
        for i, name in enumerate(("clean", "outlier")):
            color, ls, label = styles[name]
            ax.plot(w_grid, curves[loss][i], color=color, ls=ls, label=label)
            w_star = datasets[name][f"{loss}_minimiser"]
            ax.axvline(w_star, color=color, ls=":", lw=1)
            ax.plot(
                [w_star],
                [datasets[name][f"{loss}_at_minimiser"]],
                "o",
                color=color,
                label=f"minimiser w = {w_star:.3f}",
            )
        if loss == "l1":
            ax.plot(
                datasets["clean"]["kinks"],
                np.interp(datasets["clean"]["kinks"], w_grid, curves["l1"][0]),
                "k|",
                ms=10,
                label="kinks w = y_i / x_i (clean)",
            )
        ax.set_title(title)
        ax.set_xlabel("weight w")
        ax.set_ylabel("loss")
        ax.legend(fontsize=8)

    ax = axes[1, 0]
    z_grid, z = zoomed
    for i, name in enumerate(("clean", "outlier")):
        color, ls, label = styles[name]
        ax.plot(z_grid, z["dl1"][i], color=color, ls=ls, label=f"dL1/dw, {label}")
        d = datasets[name]
        inside = (d["kinks"] >= z_grid[0]) & (d["kinks"] <= z_grid[-1])
        lo, hi = d["subdifferential_at_kinks"][inside].T
        ax.vlines(d["kinks"][inside], lo, hi, color=color, lw=4, alpha=0.25)
        ax.plot(
            d["kinks"][inside],
            d["grad_at_kinks"][inside],
            "o",
            color=color,
            ms=4,
            label="jax.grad at a kink: middle of the jump" if name == "clean" else None,
        )
        ax.axvline(d["l1_minimiser"], color=color, ls=":", lw=1)
    ax.axhline(0, color="k", lw=0.8)
    ax.set_title(
        "dL1/dw = sum_i -x_i sign(y_i - w x_i): a step function (zoom)\n"
        "shaded: subdifferential at each kink; it contains 0 at the minimiser"
    )
    ax.set_xlabel("weight w")
    ax.set_ylabel("dL1/dw")
    ax.legend(fontsize=8, loc="upper left")
    twin = ax.twinx()
    twin.plot(z_grid, z["dl2"][0], color="tab:gray", lw=1, label="dL2/dw, clean (right axis)")
    twin.set_ylabel("dL2/dw (a straight line)", color="tab:gray")
    twin.legend(fontsize=8, loc="lower right")

    ax = axes[1, 1]
    steps = np.arange(cfg.num_steps + 1)
    for i, name in enumerate(("clean", "outlier")):
        color, ls, label = styles[name]
        ax.plot(
            steps, traj["l1"][i], color=color, ls=ls, marker=".", ms=3, label=f"GD on L1, {label}"
        )
        ax.plot(
            steps, traj["l2"][i], color=color, ls=ls, lw=2.5, alpha=0.45, label=f"GD on L2, {label}"
        )
    ax.set_title(
        f"Gradient descent from w0 = {cfg.w0:g} (lr: L1 {cfg.lr_l1:g}, "
        f"L2 {cfg.lr_l2:g})\nL1 steps keep their size and zig-zag; L2 steps shrink"
    )
    ax.set_xlabel("step k")
    ax.set_ylabel("w_k")
    ax.legend(fontsize=8)
    fig.suptitle(f"One weight, y_hat = w x, x = {list(cfg.x)}: L1 against L2", fontsize=12)
    fig.tight_layout()
    run.save_figure(fig, "walkthrough.png", dpi=80)


def headline(summary: dict[str, Any]) -> list[str]:
    """How far the outlier moves each minimiser (the results page's lead)."""
    ratio = summary["l2_shift_over_l1_shift"]
    times = f" ({ratio:.1f} times the L1 shift)" if ratio is not None else ""
    return [
        f"minimiser shift by the outlier: L1 {summary['l1_shift']:.4g}, "
        f"L2 {summary['l2_shift']:.4g}{times}",
        f"the outlier multiplies the loss at the clean fit: "
        f"L1 x{summary['l1_loss_ratio_at_clean_fit']:.3g}, "
        f"L2 x{summary['l2_loss_ratio_at_clean_fit']:.4g}",
    ]


STUDY = runner.Study(
    name="walkthrough",
    schema=WalkthroughConfig,
    run=run,
    smoke=SMOKE,
    validate=validate,
    headline=headline,
)

if __name__ == "__main__":
    raise SystemExit(runner.main(STUDY))
