"""The runner's execution modes: ``train.loop`` (compiled device loop or one compiled step per
host iteration) and ``train.sweep_mode`` (vmapped or unrolled grid points), and their "auto"
choice, which avoids XLA:CPU's slow convolution paths (gradient convolutions inside a loop body,
grouped convolutions from vmapped weights)."""

from __future__ import annotations

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from _runner_tasks import B_TRUE, TASK, config

from l1jax.runner import (
    ConfigError,
    NonFiniteLossError,
    Problem,
    Task,
    checkpoint,
    parallel,
    program,
    train,
)

# --- a tiny convolutional task ---------------------------------------------------------------

_DN = ("NHWC", "HWIO", "NHWC")
_W_TRUE = np.linspace(-1.0, 1.0, 3 * 3 * 2).astype(np.float32).reshape(3, 3, 2, 1)


def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=_DN)


class _ConvModel(eqx.Module):
    w: jax.Array


def _normal(key, shape):
    """``jax.random.normal(key, shape)``, bit for bit, drawn flat: XLA:CPU takes seconds to
    compile the generator for a 4-D (5-D when vmapped over seeds) shape, well under one for 1-D."""
    return jax.random.normal(key, (math.prod(shape),)).reshape(shape)


def _conv_init(cfg, key):
    k_x, k_w = jax.random.split(key)
    x = _normal(k_x, (8, 6, 6, 2))
    return Problem(
        params=_ConvModel(0.1 * _normal(k_w, (3, 3, 2, 1))),
        data={"x": x, "y": _conv(x, jnp.asarray(_W_TRUE))},
    )


def _conv_loss(cfg, model, batch, consts, key):
    return jnp.mean((_conv(batch["x"], model.w) - batch["y"]) ** 2)


CONV_TASK = Task(init=_conv_init, loss=_conv_loss)


def conv_config(**changes):
    return config(
        **{
            "optimizer": {"name": "adam", "learning_rate": 0.05},
            "schedule": {"name": "constant"},
            "train.steps": 12,
            "train.steps_per_call": 5,
            "train.eval_every": 0,
            **changes,
        }
    )


# --- tests -----------------------------------------------------------------------------------


def test_auto_picks_host_loop_and_unrolled_sweep_only_for_convolutions_on_cpu():
    # On an accelerator (scripts/accelerator_check.sh runs this file there) "auto" is the
    # compiled loop and vmap for every task.
    on_cpu = jax.default_backend() == "cpu"
    conv = train(CONV_TASK, conv_config(sweep={"seed": [0, 1]}))
    assert (conv.loop, conv.sweep_mode) == (("host", "unroll") if on_cpu else ("device", "vmap"))
    dense = train(TASK, config(sweep={"seed": [0, 1]}, **{"train.steps": 4}))
    assert (dense.loop, dense.sweep_mode) == ("device", "vmap")
    # An explicit mode is kept as given.
    forced = train(CONV_TASK, conv_config(**{"train.loop": "device", "train.sweep_mode": "vmap"}))
    assert (forced.loop, forced.sweep_mode) == ("device", "vmap")


def test_every_mode_trains_the_same_model():
    runs = {
        (loop, mode): train(
            CONV_TASK,
            conv_config(sweep={"seed": [0, 1]}, **{"train.loop": loop, "train.sweep_mode": mode}),
        )
        for loop in ("device", "host")
        for mode in ("vmap", "unroll")
    }
    ref = runs["device", "vmap"]
    w = np.asarray(ref.params.w)
    assert w.shape == (2, 3, 3, 2, 1) and not np.allclose(w[0], w[1])  # two seeds, two fits
    for key, result in runs.items():
        assert (result.loop, result.sweep_mode) == key
        np.testing.assert_allclose(
            np.asarray(result.params.w), w, rtol=1e-5, atol=1e-6, err_msg=str(key)
        )
        assert int(result.state.step[0]) == 12
    # Each point of the sweep equals its run alone.
    alone = train(CONV_TASK, conv_config(seed=1))
    np.testing.assert_allclose(np.asarray(alone.params.w), w[1], rtol=1e-5, atol=1e-6)


def test_host_loop_compiles_once_and_resumes_bitwise(tmp_path):
    cfg = config(**{"train.loop": "host"})
    reference = train(TASK, cfg)
    assert reference.loop == "host"
    prog = program.program(TASK, cfg, parallel.make_mesh(None), None)
    assert prog.chunk_traces == 1  # one compiled step for every chunk length

    def crash_at_45(step, state):
        if step >= 45:
            raise RuntimeError("crash")

    with pytest.raises(RuntimeError):
        train(TASK, cfg, workdir=tmp_path, hooks=[crash_at_45])
    resumed = train(TASK, cfg, workdir=tmp_path)
    assert resumed.resumed_from == 40
    for a, b in zip(jax.tree.leaves(resumed.state), jax.tree.leaves(reference.state), strict=True):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    lines = [json.loads(s) for s in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [10, 20, 30, 40, 50, 60]
    # The same metrics as the device loop, to float tolerance.
    device = train(TASK, config(**{"train.loop": "device"}))
    np.testing.assert_allclose(
        np.asarray(reference.params.weight), np.asarray(device.params.weight), rtol=1e-5, atol=1e-6
    )


def test_host_loop_stops_at_the_same_non_finite_step(tmp_path):
    steps = {}
    for loop in ("device", "host"):
        cfg = config(nan_above=0.5, **{"optimizer.learning_rate": 0.02, "train.loop": loop})
        with pytest.raises(NonFiniteLossError) as info:
            train(TASK, cfg, workdir=tmp_path / loop)
        ckpts = checkpoint.all_checkpoints(tmp_path / loop / "checkpoints" / "main")
        assert info.value.checkpoint_step == ckpts[-1].step < info.value.step
        steps[loop] = info.value.step
    assert B_TRUE > 0.5 and steps["host"] == steps["device"]


@pytest.mark.parametrize("key, value", [("train.loop", "fast"), ("train.sweep_mode", "pmap")])
def test_bad_modes_name_the_key(key, value):
    with pytest.raises(ConfigError) as info:
        train(TASK, config(**{key: value}))
    assert info.value.key == key and value in str(info.value)


def test_primitive_names_look_inside_nested_jaxprs():
    @jax.custom_vjp
    def f(x, w):
        return _conv(x, w)

    f.defvjp(lambda x, w: (_conv(x, w), (x, w)), lambda res, g: (g, jnp.zeros_like(res[1])))

    def nested(x, w):
        def body(c, _):
            return c + jax.jit(f)(x, w).sum(), None

        return jax.lax.scan(body, 0.0, None, length=2)[0]

    x, w = jnp.ones((1, 4, 4, 2)), jnp.ones((3, 3, 2, 1))
    assert "conv_general_dilated" in program._primitive_names(jax.make_jaxpr(nested)(x, w))
    assert "conv_general_dilated" not in program._primitive_names(
        jax.make_jaxpr(lambda x: jnp.sin(x).sum())(x)
    )
