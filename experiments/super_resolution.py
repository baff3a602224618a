"""Loss functions for super-resolution: L2, L1, SSIM, MS-SSIM, their mix and L2 -> L1.

A replication, at small scale, of the super-resolution experiment of Zhao, Gallo, Frosio and
Kautz (2017): one network (SRCNN predicting the residual over bicubic by default) is trained
on random (LR, HR) patches of the bundled natural images (:func:`l1jax.sr.load_split`, LR made
by MATLAB bicubic downsampling) with each training loss in turn, all seeds of a loss together
as one vmapped program (``sweep: {seed: [...]}``). Every model and the bicubic baseline are
then evaluated on the full test images:

* RGB: PSNR, SSIM and MS-SSIM of the clipped output against the ground truth;
* Y, the way SR papers report it: both images rounded to 8 bits, BT.601 luma, ``scale`` pixels
  cropped from each border, then PSNR, SSIM and MS-SSIM.

MS-SSIM (five scales, 11-tap windows) needs images of at least 161 px per side after the
border crop; smaller test images get no MS-SSIM (the summary says which).

The "L2 -> L1" loss (``switch_from``/``switch_at`` in a loss entry) continues the L2 run from
its checkpoint at ``switch_at * train.steps`` steps (parameters, Adam state, step and PRNG key)
with the L1 loss, as the paper does, so it costs only the second half of a training: it is a
run with ``train.init_from`` naming that checkpoint.

Run: ``python experiments/super_resolution.py --config configs/super_resolution/study.yaml``.

References:
  Zhao, H., Gallo, O., Frosio, I. and Kautz, J. (2017). Loss functions for image restoration
  with neural networks. IEEE Transactions on Computational Imaging 3(1), 47-57.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from l1jax import runner, sr
from l1jax.runner import ConfigError, InitFrom, Problem, RunConfig, Task, TrainConfig
from l1jax.runner.config import check_name
from l1jax.runner.registry import LOSSES, MODELS

METRICS = sr.METRICS
# Keys of a loss entry that the study reads; the others are the loss function's keywords.
_ENTRY_KEYS = ("label", "switch_from", "switch_at")


@dataclasses.dataclass
class SuperResolutionConfig(RunConfig):
    # Bundled image names (or file paths) for training and test, the scale, LR patch side and
    # patches per step. train_crop / test_crop: centre-crop each image to at most this side
    # (null: whole images), to keep CPU runs small.
    data: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {
            "train": list(sr.TRAIN_IMAGES),
            "test": list(sr.TEST_IMAGES),
            "scale": 2,
            "patch_size": 24,
            "batch_size": 16,
            "train_crop": None,
            "test_crop": None,
        }
    )
    # {name: srcnn | espcn | edsr, <keywords>}; scale and channels come from data.
    model: dict[str, Any] = dataclasses.field(
        default_factory=lambda: {"name": "srcnn", "width": 64, "depth": 3}
    )
    # Each entry is trained in turn: {name: <loss>, <its keywords>, label: <row name>}, or a
    # switched loss {name: l1, label: l2_to_l1, switch_from: {name: mse}, switch_at: 0.5}.
    losses: list[dict[str, Any]] = dataclasses.field(
        default_factory=lambda: [{"name": "mse", "label": "l2"}]
    )
    # Side (HR pixels) of the crops shown in the figure.
    figure_crop: int = 64
    # SRCNN only: start the residual branch's last convolution at zero, so that every loss
    # starts from bicubic; false keeps the model's own initialisation.
    zero_last_layer: bool = True
    train: TrainConfig = dataclasses.field(
        default_factory=lambda: TrainConfig(
            steps=2000, steps_per_call=250, log_every=50, checkpoint_every=1000
        )
    )


# --- the task --------------------------------------------------------------------------------

_DATASETS: dict[str, sr.PatchDataset] = {}


def _centre_crop(img: jax.Array, side: int | None) -> jax.Array:
    if side is None:
        return img
    h, w = img.shape[0], img.shape[1]
    th, tw = min(h, side), min(w, side)
    y, x = (h - th) // 2, (w - tw) // 2
    return img[y : y + th, x : x + tw]


def _split(data: dict[str, Any]) -> tuple[list[jax.Array], list[jax.Array]]:
    train, test = sr.load_split(train=data["train"], test=data["test"])
    return (
        [_centre_crop(im, data.get("train_crop")) for im in train],
        [_centre_crop(im, data.get("test_crop")) for im in test],
    )


def _dataset(data: dict[str, Any]) -> sr.PatchDataset:
    """The training patch sampler of ``data`` (built once per process and data config)."""
    key = json.dumps(data, sort_keys=True)
    if key not in _DATASETS:
        # Concrete arrays even when first called while tracing init: the cache outlives it.
        with jax.ensure_compile_time_eval():
            train, _ = _split(data)
            _DATASETS[key] = sr.PatchDataset(
                train, scale=int(data["scale"]), patch_size=int(data["patch_size"])
            )
    return _DATASETS[key]


def _build_model(cfg: SuperResolutionConfig, key: jax.Array):
    model = MODELS.build(cfg.model, scale=int(cfg.data["scale"]), channels=3, key=key)
    if cfg.model["name"] == "srcnn" and cfg.zero_last_layer:
        # SRCNN predicts the residual over bicubic: a zero last layer starts at bicubic, so
        # every loss starts from the same, sensible image (as VDSR-style training does).
        last = model.layers[-1]
        model = eqx.tree_at(
            lambda m: (m.layers[-1].weight, m.layers[-1].bias),
            model,
            (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
        )
    return model


def _init(cfg: SuperResolutionConfig, key: jax.Array) -> Problem:
    # Patches are sampled on the device inside the loss, from the whole training images kept
    # in consts, so every step sees fresh patches (no fixed pool).
    return Problem(params=_build_model(cfg, key), data=None, consts=_dataset(cfg.data))


@functools.cache
def _task(loss: str) -> Task:
    """The task training with ``loss`` (a loss spec as sorted JSON), built once per loss so that
    reruns reuse its compiled program; the loss is the task's argument, not a config key."""
    spec = json.loads(loss)
    fn = LOSSES.partial(spec)

    def loss_fn(cfg: SuperResolutionConfig, model, batch, consts, key):
        del batch
        lr, hr = consts.sample_batch(key, int(cfg.data["batch_size"]))
        out = model(lr)
        return fn(out, hr), {"mse": jnp.mean((out - hr) ** 2)}

    return Task(init=_init, loss=loss_fn, args={"loss": spec})


def task(spec: dict[str, Any]) -> Task:
    """The :class:`~l1jax.runner.Task` training with the loss ``spec`` (``{name: l1}``)."""
    return _task(json.dumps(dict(spec), sort_keys=True))


# --- evaluation ------------------------------------------------------------------------------


def _per_seed(models) -> list:
    """The models of a stack (leading axis: seeds), one by one."""
    n = jax.tree.leaves(eqx.filter(models, eqx.is_array))[0].shape[0]
    return [
        jax.tree.map(lambda x: x[i] if eqx.is_array(x) else x, models)  # noqa: B023
        for i in range(n)
    ]


@eqx.filter_jit
def _eval_model(model, lr: jax.Array, hr: jax.Array):
    """Metrics and clipped output of one model on one image."""
    scale = hr.shape[0] // lr.shape[0]
    out = model(lr)
    return sr.image_metrics(out, hr, scale=scale), jnp.clip(out, 0.0, 1.0)


def _eval_models(models, lr: jax.Array, hr: jax.Array):
    """Metrics ``{name: (seeds,)}`` and outputs ``(seeds, H, W, C)`` of a stack of models.

    One seed at a time (one compiled function for all): vmapping over the weights would make
    every convolution a grouped one, which XLA:CPU runs several times slower.
    """
    runs = [_eval_model(model, lr, hr) for model in _per_seed(models)]
    metrics = {k: np.stack([np.asarray(m[k]) for m, _ in runs]) for k in runs[0][0]}
    return metrics, np.stack([np.asarray(o) for _, o in runs])


@eqx.filter_jit
def _eval_bicubic(lr: jax.Array, hr: jax.Array):
    scale = hr.shape[0] // lr.shape[0]
    out = sr.upsample(lr, scale)
    return sr.image_metrics(out, hr, scale=scale), jnp.clip(out, 0.0, 1.0)


# --- the study -------------------------------------------------------------------------------


def label(entry: dict[str, Any]) -> str:
    """The row name of a loss entry: its ``label``, else ``name`` and keywords."""
    if "label" in entry:
        return str(entry["label"])
    extra = "".join(f"-{k}{v}" for k, v in entry.items() if k not in ("name", *_ENTRY_KEYS))
    return f"{entry['name']}{extra}"


def loss_spec(entry: dict[str, Any]) -> dict[str, Any]:
    """The loss registry spec of an entry (without the study's own keys)."""
    return {k: v for k, v in entry.items() if k not in _ENTRY_KEYS}


def _source(entry: dict[str, Any]) -> dict[str, Any]:
    src = dict(entry["switch_from"])
    src.setdefault("label", f"{label(entry)}.phase1")
    return src


def _switch_step(cfg: SuperResolutionConfig, entry: dict[str, Any]) -> int:
    return int(round(float(entry.get("switch_at", 0.5)) * cfg.train.steps))


def validate(cfg: SuperResolutionConfig) -> None:
    if not cfg.losses:
        raise ConfigError(key="losses", expected="at least one loss", given="[]")
    labels = [label(e) for e in cfg.losses]
    if len(set(labels)) != len(labels):
        raise ConfigError(key="losses", expected="distinct labels", given=repr(labels))
    switches = set()
    for i, entry in enumerate(cfg.losses):
        # Labels name checkpoint folders (checkpoints/<label>/): they must stay inside the workdir.
        check_name(label(entry), f"losses[{i}].label")
        specs = [loss_spec(entry)]
        if "switch_from" in entry:
            if not isinstance(entry["switch_from"], dict):
                raise ConfigError(
                    key=f"losses[{i}].switch_from",
                    expected="a loss mapping",
                    given=repr(entry["switch_from"]),
                )
            check_name(label(_source(entry)), f"losses[{i}].switch_from.label")
            specs.append(loss_spec(_source(entry)))
            at = _switch_step(cfg, entry)
            if not 0 < at < cfg.train.steps:
                raise ConfigError(
                    key=f"losses[{i}].switch_at",
                    expected="in (0, 1), a step inside the training",
                    given=repr(entry.get("switch_at")),
                )
            switches.add(at)
        for spec in specs:
            try:
                LOSSES.partial(spec)
            except (LookupError, TypeError) as e:
                raise ConfigError(str(e), key=f"losses[{i}]") from None
    if len(switches) > 1:
        raise ConfigError(
            key="losses",
            expected="one switch_at for all switched losses",
            given=repr(sorted(switches)),
        )
    for key in ("scale", "patch_size", "batch_size"):
        v = cfg.data.get(key)
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ConfigError(key=f"data.{key}", expected="an int >= 1", given=repr(v))
    if set(cfg.sweep) - {"seed"}:
        # The table treats the grid axis as seeds; losses are a loop, not a sweep.
        raise ConfigError(
            key="sweep", expected="at most {seed: [...]}", given=repr(list(cfg.sweep))
        )
    try:
        MODELS.validate(cfg.model, provided=["scale", "channels", "key"])
    except (LookupError, TypeError) as e:
        raise ConfigError(str(e), key="model") from None


def _run_cfg(cfg: SuperResolutionConfig, switch: int | None, init_from=None):
    train = cfg.train
    if switch is not None:
        # Every run also checkpoints at the switch step, so that a switched loss can start from
        # its source run's state there (and runs with equal losses share one config): the
        # interval becomes the largest that divides both; all checkpoints are kept, so the one
        # at the switch is still there when a resumed study reaches the switched loss.
        every = math.gcd(train.checkpoint_every, switch) if train.checkpoint_every else switch
        train = dataclasses.replace(
            train,
            checkpoint_every=every,
            keep_checkpoints=max(train.keep_checkpoints, -(-train.steps // every)),
        )
    if init_from is not None:
        train = dataclasses.replace(train, init_from=init_from)
    return dataclasses.replace(cfg, losses=[], train=train)


def _stats(values: np.ndarray) -> dict[str, float]:
    """Mean and spread over seeds of per-seed values (already averaged over images)."""
    v = np.asarray(values, np.float64)
    if np.all(np.isnan(v)):
        return {"mean": None, "std": None, "min": None, "max": None}
    return {
        "mean": float(np.mean(v)),
        "std": float(np.std(v)),
        "min": float(np.min(v)),
        "max": float(np.max(v)),
    }


def _evaluate(models, lrs, hrs) -> tuple[dict[str, np.ndarray], list[np.ndarray]]:
    """Per-seed metrics averaged over test images ``{metric: (seeds,)}`` and outputs."""
    per_image, outs = [], []
    for lr, hr in zip(lrs, hrs, strict=True):
        m, out = _eval_models(models, lr, hr)
        per_image.append({k: np.asarray(v) for k, v in m.items()})
        outs.append(np.asarray(out[0]))
    return {k: np.mean([p[k] for p in per_image], axis=0) for k in METRICS}, outs


@eqx.filter_jit
def _channel_activity(model, lr: jax.Array) -> list[jax.Array]:
    """SRCNN: per hidden layer, the fraction of its ReLU channels that are positive somewhere
    on the image (0 for a layer whose units all died)."""
    h = sr.upsample(lr, model.scale)[None]
    fractions = []
    for layer in model.layers[:-1]:
        h = jax.nn.relu(layer(h))
        fractions.append(jnp.mean(jnp.any(h > 0, axis=(0, 1, 2))))
    return fractions


def dead_layers(models, lr: jax.Array) -> list[list[float]] | None:
    """Per seed, the active-channel fraction of each hidden layer (SRCNN; None otherwise)."""
    if not isinstance(models, sr.SRCNN):
        return None
    return [[float(f) for f in _channel_activity(model, lr)] for model in _per_seed(models)]


def _stacked(params, grid) -> Any:
    """Parameters with a leading seed axis (adds one when the run was not a sweep)."""
    if grid is not None:
        return params
    return jax.tree.map(lambda x: x[None] if eqx.is_array(x) else x, params)


def run(cfg: SuperResolutionConfig, run: runner.Run) -> dict[str, Any]:
    scale = int(cfg.data["scale"])
    _, test = _split(cfg.data)
    lrs, hrs = sr.eval_pairs(test, scale=scale)
    switch = next((_switch_step(cfg, e) for e in cfg.losses if "switch_from" in e), None)

    rows: dict[str, dict[str, Any]] = {}
    outputs: dict[str, list[np.ndarray]] = {}
    speeds: dict[str, float] = {}
    activity: dict[str, Any] = {}
    results: dict[str, Any] = {}

    def train(entry):
        tag = label(entry)
        if tag in results:
            return results[tag]
        init_from = None
        if "switch_from" in entry:
            src = _source(entry)
            # Reuse a listed run with the same loss as the first phase, if there is one.
            same = [
                e for e in cfg.losses if "switch_from" not in e and loss_spec(e) == loss_spec(src)
            ]
            src = same[0] if same else src
            train(src)
            init_from = InitFrom(path=str(run.workdir), tag=label(src), step=switch)
        cfg_i = _run_cfg(cfg, switch, init_from)
        result = run.train(task(loss_spec(entry)), cfg_i, tag=tag)
        results[tag] = result
        speeds[tag] = round(result.steps_per_second, 2)
        return result

    for entry in cfg.losses:
        result = train(entry)
        models = _stacked(result.params, result.grid)
        per_seed, outs = _evaluate(models, lrs, hrs)
        tag = label(entry)
        activity[tag] = dead_layers(models, lrs[0])
        rows[tag] = {k: _stats(per_seed[k]) for k in METRICS}
        rows[tag]["per_seed"] = {k: per_seed[k].tolist() for k in METRICS}
        outputs[tag] = outs
        run.log({"tag": tag, **{f"test/{k}": rows[tag][k]["mean"] for k in METRICS}})

    bic, bic_outs = [], []
    for lr, hr in zip(lrs, hrs, strict=True):
        m, out = _eval_bicubic(lr, hr)
        bic.append({k: float(v) for k, v in m.items()})
        bic_outs.append(np.asarray(out))
    rows["bicubic"] = {k: _stats(np.array([np.mean([b[k] for b in bic])])) for k in METRICS}
    outputs["bicubic"] = bic_outs

    seeds = cfg.sweep.get("seed") if isinstance(cfg.sweep.get("seed"), list) else [cfg.seed]
    summary = {
        "metrics": list(METRICS),
        "table": rows,
        "seeds": list(seeds),
        "test_images": {
            str(name): list(map(int, hr.shape))
            for name, hr in zip(cfg.data["test"], hrs, strict=True)
        },
        "ms_ssim_skipped": [
            str(name)
            for name, hr in zip(cfg.data["test"], hrs, strict=True)
            if min(hr.shape[0], hr.shape[1]) - 2 * scale < sr.MS_SSIM_MIN_SIDE
        ],
        "steps_per_second": speeds,
        "active_channels": activity,
        "findings": findings(rows, activity),
        "note": (
            "metrics are means over the test images, then mean/std/min/max over seeds; "
            "*_y: 8-bit, BT.601 luma, border of `scale` px cropped; RGB: clipped output"
        ),
    }
    if run.is_main:
        run.path("results.md").write_text(markdown_table(rows))
    print(markdown_table(rows))
    for line in summary["findings"]["statements"]:
        print(line)
    _plot(run, cfg, hrs, outputs)
    return summary


def findings(
    rows: dict[str, dict[str, Any]], activity: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Which loss won each metric, L1 vs L2 on PSNR, whether L2 -> L1 helped, and which
    models lost a whole hidden layer (every ReLU channel inactive on the first test image)."""
    trained = [t for t in rows if t != "bicubic"]
    winners = {}
    for k in METRICS:
        scored = [(rows[t][k]["mean"], t) for t in trained if rows[t][k]["mean"] is not None]
        if scored:
            winners[k] = max(scored)[1]
    out: dict[str, Any] = {"winner": winners, "statements": []}
    say = out["statements"]
    for k, v in winners.items():
        say.append(f"best {k}: {v} ({rows[v][k]['mean']:.4f})")

    def cmp(a, b, k):
        if a in rows and b in rows and rows[a][k]["mean"] is not None:
            d = rows[a][k]["mean"] - rows[b][k]["mean"]
            spread = max(rows[a][k]["std"], rows[b][k]["std"])
            return d, spread
        return None

    for a, b, key in (
        ("l1", "l2", "l1_beats_l2"),
        ("l2_to_l1", "l2", "l2_to_l1_beats_l2"),
        ("l2_to_l1", "l1", "l2_to_l1_beats_l1"),
    ):
        for k in ("psnr_y", "psnr"):
            c = cmp(a, b, k)
            if c is None:
                continue
            d, spread = c
            out[f"{key}_{k}"] = bool(d > 0)
            out[f"{key}_{k}_margin_db"] = d
            say.append(
                f"{a} {'beat' if d > 0 else 'did not beat'} {b} on {k}: "
                f"{d:+.3f} dB (largest std over seeds {spread:.3f} dB)"
            )
    dead = {}
    for tag, per_seed in (activity or {}).items():
        seeds = [i for i, layers in enumerate(per_seed or []) if min(layers) == 0.0]
        if seeds:
            dead[tag] = seeds
            say.append(
                f"{tag}: seed index(es) {seeds} have a hidden layer with every ReLU channel "
                f"inactive (the residual branch outputs a constant: bicubic + bias)"
            )
    out["dead_layer_seeds"] = dead
    return out


def markdown_table(rows: dict[str, dict[str, Any]]) -> str:
    head = "| loss | " + " | ".join(METRICS) + " |\n|---|" + "---|" * len(METRICS) + "\n"
    lines = []
    for tag, row in rows.items():
        cells = []
        for k in METRICS:
            s = row[k]
            if s["mean"] is None:
                cells.append("n/a")
            elif tag == "bicubic":
                cells.append(f"{s['mean']:.4f}")
            else:
                cells.append(f"{s['mean']:.4f} ± {s['std']:.4f}")
        lines.append(f"| {tag} | " + " | ".join(cells) + " |")
    return head + "\n".join(lines) + "\n"


def _plot(run: runner.Run, cfg: SuperResolutionConfig, hrs, outputs) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hr = np.asarray(hrs[0])
    c = min(cfg.figure_crop, hr.shape[0], hr.shape[1])
    # The crop with the most detail (largest gradient energy) on a coarse grid of positions.
    gy, gx = np.gradient(hr.mean(-1))
    energy = gy**2 + gx**2
    best, pos = -1.0, (0, 0)
    for y in range(0, hr.shape[0] - c + 1, max(c // 2, 1)):
        for x in range(0, hr.shape[1] - c + 1, max(c // 2, 1)):
            e = energy[y : y + c, x : x + c].sum()
            if e > best:
                best, pos = e, (y, x)
    y, x = pos
    panels = [("HR", hr)] + [(t, o[0]) for t, o in outputs.items()]
    cols = min(5, len(panels))
    nrows = -(-len(panels) // cols)
    fig, axes = plt.subplots(nrows, cols, figsize=(2.0 * cols, 2.2 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, (name, img) in zip(axes.flat, panels, strict=False):
        ax.imshow(np.clip(np.asarray(img)[y : y + c, x : x + c], 0, 1), interpolation="nearest")
        ax.set_title(name, fontsize=9)
    fig.suptitle(
        f"{cfg.data['test'][0]}, x{cfg.data['scale']}, crop at ({y}, {x}), seed 0", fontsize=9
    )
    run.save_figure(fig, "sr_crops.png", dpi=90)


STUDY = runner.Study(
    name="super_resolution",
    schema=SuperResolutionConfig,
    run=run,
    validate=validate,
    smoke={
        "data.train": ["astronaut", "rocket"],
        "data.test": ["chelsea", "coffee"],
        "data.train_crop": 128,
        # MS-SSIM needs 161 px after the border crop.
        "data.test_crop": 168,
        # L2, L1, the switch (which reuses both programs) and the mix (the SSIM family):
        # each loss is one more compilation, the bulk of the smoke time on a CPU.
        "losses": [
            {"name": "mse", "label": "l2"},
            {"name": "l1", "label": "l1"},
            {"name": "mix", "alpha": 0.84, "label": "mix"},
            {
                "name": "l1",
                "label": "l2_to_l1",
                "switch_from": {"name": "mse", "label": "l2"},
                "switch_at": 0.5,
            },
        ],
        "optimizer": {"name": "adam", "learning_rate": 1e-3},
        "data.patch_size": 12,
        "data.batch_size": 8,
        "model": {"name": "srcnn", "width": 8, "depth": 2, "kernel_sizes": [3, 3]},
        "train.steps": 40,
        "train.steps_per_call": 20,
        "train.log_every": 10,
        "train.checkpoint_every": 20,
        "sweep": {"seed": [0]},
        "parallel.num_devices": 1,
        "figure_crop": 32,
    },
)

if __name__ == "__main__":
    raise SystemExit(runner.main(STUDY))
