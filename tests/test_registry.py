"""Registries: lookup, unknown names listing the known ones, keyword checks, optax by name,
explicit entries (no import side effects), and the schedules against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import optax
import pytest

from l1jax import losses
from l1jax.runner.optimizer import as_function, make_schedule
from l1jax.runner.registry import (
    DATASETS,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    SCHEDULES,
    Registry,
    UnknownNameError,
)


@pytest.mark.parametrize(
    "registry, name, known",
    [
        (LOSSES, "l2", "mse"),
        (OPTIMIZERS, "adamm", "adamw"),
        (SCHEDULES, "cosin", "cosine"),
        (MODELS, "liner", "linear"),
        (DATASETS, "contaminated", "contaminated_linear"),
    ],
)
def test_unknown_name_lists_known_names(registry, name, known):
    with pytest.raises(UnknownNameError) as info:
        registry.get(name)
    msg = str(info.value)
    assert f"unknown {registry.kind} {name!r}" in msg
    assert known in info.value.known and known in msg


def test_did_you_mean():
    with pytest.raises(UnknownNameError, match="did you mean 'adamw'"):
        OPTIMIZERS.get("adamww")


def test_every_l1jax_loss_is_registered():
    assert set(losses.LOSSES) <= set(LOSSES.names())
    for name, fn in losses.LOSSES.items():
        assert LOSSES.get(name) is fn


def test_loss_partial_binds_hyperparameters():
    huber = LOSSES.partial({"name": "huber", "delta": 0.5})
    p, t = np.array([0.0, 0.0]), np.array([0.2, 3.0])
    # 0.5 * 0.2^2 and 0.5 * (3 - 0.25), averaged.
    np.testing.assert_allclose(huber(p, t), (0.02 + 1.375) / 2, rtol=1e-6)
    with pytest.raises(TypeError, match="unexpected keyword 'delt'.*did you mean 'delta'"):
        LOSSES.partial({"name": "huber", "delt": 0.5})


def test_any_optax_optimizer_by_name_with_keywords():
    opt = OPTIMIZERS.build({"name": "adamw", "learning_rate": 1e-2, "weight_decay": 0.1})
    ref = optax.adamw(learning_rate=1e-2, weight_decay=0.1)
    params = {"w": np.array([1.0, -2.0], np.float32)}
    grads = {"w": np.array([0.5, 0.25], np.float32)}
    got, _ = opt.update(grads, opt.init(params), params)
    want, _ = ref.update(grads, ref.init(params), params)
    np.testing.assert_array_equal(np.asarray(got["w"]), np.asarray(want["w"]))
    for name in ("sgd", "adam", "lion", "rmsprop", "adagrad"):
        assert name in OPTIMIZERS.names()
    assert "lbfgs" not in OPTIMIZERS.names()  # needs a line search's extra arguments


@pytest.mark.parametrize(
    "spec, match",
    [
        (
            {"name": "adamw", "learning_rate": 1e-3, "weight_decy": 1e-4},
            "unexpected keyword 'weight_decy'.*accepts: learning_rate, b1",
        ),
        (
            {"name": "sgd", "learning_rate": 1e-3, "momentum": "high"},
            "momentum expected number or bool or null, got 'high'",
        ),
        ({"name": "sgd"}, "missing required keyword.*learning_rate"),
        ({"learning_rate": 1e-3}, "a mapping with a 'name' key"),
    ],
)
def test_bad_keywords(spec, match):
    with pytest.raises(TypeError, match=match):
        OPTIMIZERS.build(spec)


def test_register_and_overwrite():
    reg = Registry("widget")
    assert reg.names() == []

    @reg.register("a")
    def make_a(*, size: int = 1):
        return ("a", size)

    assert reg.build({"name": "a", "size": 3}) == ("a", 3)
    assert "a" in reg and "b" not in reg
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda: None)
    reg.register("a", lambda: "new", overwrite=True)
    assert reg.build("a") == "new"


T = np.arange(0, 12)


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"name": "constant"}, np.ones(12)),
        ({"name": "inv_sqrt"}, 1 / np.sqrt(T + 1)),
        ({"name": "inv"}, 1 / (T + 1)),
        ({"name": "cosine"}, 0.5 * (1 + np.cos(np.pi * np.minimum(T, 10) / 10))),
        (
            {"name": "cosine", "decay_steps": 4, "alpha": 0.1},
            0.1 + 0.9 * 0.5 * (1 + np.cos(np.pi * np.minimum(T, 4) / 4)),
        ),
        (
            {"name": "step", "boundaries": [3, 7], "factor": 0.5},
            np.where(T >= 7, 0.25, np.where(T >= 3, 0.5, 1.0)),
        ),
        (
            {"name": "inv_sqrt", "warmup_steps": 4},
            np.where(T < 4, (T + 1) / 4, 1 / np.sqrt(np.maximum(T - 4, 0) + 1)),
        ),
        (
            {"name": "cosine", "warmup_steps": 2},
            np.minimum(1, (T + 1) / 2)
            * 0.5
            * (1 + np.cos(np.pi * np.minimum(np.maximum(T - 2, 0), 8) / 8)),
        ),
    ],
)
def test_schedules_match_closed_forms(spec, expected):
    lr = as_function(make_schedule(spec, total_steps=10, learning_rate=0.3))
    got = np.array([float(lr(t)) for t in T])
    np.testing.assert_allclose(got, 0.3 * expected, rtol=1e-6, atol=1e-8)


def test_schedule_errors():
    with pytest.raises(UnknownNameError, match="known schedules: constant, cosine"):
        make_schedule({"name": "linear"}, total_steps=5)
    with pytest.raises(ValueError, match="warmup_steps"):
        make_schedule({"name": "constant", "warmup_steps": -1}, total_steps=5)
    with pytest.raises(ValueError, match="alpha"):
        make_schedule({"name": "cosine", "alpha": 2.0}, total_steps=5)
    assert math.isclose(float(make_schedule("inv", total_steps=1)(3)), 0.25)


def test_l1jax_optimizers_and_image_losses_are_registered():
    # ISTA on the lasso: one step from w with zero gradient is soft-thresholding by lr * lam.
    opt = OPTIMIZERS.build({"name": "ista_l1", "learning_rate": 0.1, "lam": 0.5})
    params = {"w": np.array([1.0, 0.02, -0.3], np.float32)}
    updates, _ = opt.update({"w": np.zeros(3, np.float32)}, opt.init(params), params)
    np.testing.assert_allclose(params["w"] + updates["w"], [0.95, 0.0, -0.25], rtol=1e-6)
    sub = OPTIMIZERS.build({"name": "subgradient", "learning_rate": 0.5})
    updates, _ = sub.update({"w": np.ones(3, np.float32)}, sub.init(params), params)
    np.testing.assert_allclose(updates["w"], -0.5 * np.ones(3))
    from l1jax import image

    for name, fn in image.LOSSES.items():
        assert LOSSES.get(name) is fn


def test_a_constant_rate_is_the_number_itself():
    # Optimizers that need a fixed step (ISTA, FISTA) get a float, not a schedule.
    assert make_schedule({"name": "constant"}, total_steps=5, learning_rate=0.3) == 0.3
    assert callable(make_schedule({"name": "constant", "warmup_steps": 2}, total_steps=5))
    with pytest.raises(ValueError, match="boundaries must be distinct"):
        make_schedule({"name": "step", "boundaries": [3, 3]}, total_steps=5)


def test_models_are_listed_from_their_modules():
    from l1jax import models, sr

    expected = {"linear": models.Linear, "srcnn": sr.SRCNN, "espcn": sr.ESPCN, "edsr": sr.EDSR}
    assert {name: MODELS.get(name) for name in MODELS.names()} == expected
    assert not set(losses.LOSSES) & set(__import__("l1jax").image.LOSSES)


def test_the_numerics_never_import_the_runner():
    # A fresh interpreter: importing every numerics module loads no runner module, no YAML.
    import subprocess
    import sys

    code = (
        "import sys, l1jax; "
        "from l1jax import datasets, image, losses, models, optim, penalties, prox, solvers, sr, "
        "subgrad; "
        "print(' '.join(m for m in sys.modules if m.startswith('l1jax.runner') "
        "or m in ('omegaconf', 'yaml')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    ).stdout.split()
    assert out == []
