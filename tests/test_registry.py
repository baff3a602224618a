"""Registries: lookup, unknown names listing the known ones, keyword checks, optax by name,
plugins, and the learning-rate schedules against their closed forms."""

from __future__ import annotations

import math

import numpy as np
import optax
import pytest

from l1jax import losses
from l1jax.registry import (
    DATASETS,
    LOSSES,
    MODELS,
    OPTIMIZERS,
    SCHEDULES,
    Registry,
    UnknownNameError,
)
from l1jax.train import make_schedule


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


def test_register_and_plugins():
    reg = Registry("widget", plugins=("l1jax._no_such_plugin",))
    assert reg.names() == []  # a missing plugin module is skipped

    @reg.register("a")
    def make_a(*, size: int = 1):
        return ("a", size)

    assert reg.build({"name": "a", "size": 3}) == ("a", 3)
    assert "a" in reg and "b" not in reg
    with pytest.raises(ValueError, match="already registered"):
        reg.register("a", lambda: None)
    reg.register("a", lambda: "new", overwrite=True)
    assert reg.build("a") == "new"


def test_a_broken_plugin_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "l1jax_test_plugin.py").write_text("import l1jax_no_such_dependency\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    reg = Registry("widget", plugins=("l1jax_test_plugin",))
    # The plugin exists but fails inside: that must surface, unlike a missing plugin.
    with pytest.raises(ModuleNotFoundError, match="l1jax_no_such_dependency"):
        reg.names()


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
    lr = make_schedule(spec, total_steps=10, learning_rate=0.3)
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


def test_sr_models_are_registered_on_first_lookup():
    # A fresh interpreter that never imports l1jax.sr itself: the registry's plugin does.
    import subprocess
    import sys

    code = (
        "import sys; from l1jax.registry import MODELS; names = MODELS.names(); "
        "assert 'l1jax.sr' in sys.modules; print(' '.join(names))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert {"srcnn", "espcn", "edsr", "linear"} <= set(out)
    from l1jax import sr

    for name, cls in sr.MODELS.items():
        assert MODELS.get(name) is cls
