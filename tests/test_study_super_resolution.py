"""End-to-end smoke run of experiments/super_resolution.py (the Zhao et al. 2017 loss study)."""

import json
import math

import _studies
import pytest

from l1jax import runner
from l1jax.runner import ConfigError
from l1jax.runner.registry import LOSSES

SMOKE = "configs/super_resolution/smoke.yaml"
EXPECTED = ["l2", "l1", "mix", "l2_to_l1"]


@pytest.fixture(scope="module")
def study():
    return _studies.load("super_resolution")


@pytest.fixture(scope="module")
def smoke_run(study, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("sr_smoke")
    summary, _ = _studies.run(study, SMOKE, workdir)
    return workdir, summary


def test_image_losses_are_registered(study):
    del study
    for name in ("ssim", "ms_ssim", "mix"):
        assert name in LOSSES
    LOSSES.partial({"name": "ssim", "sigma": 5.0})
    with pytest.raises(TypeError, match="alpah"):
        LOSSES.partial({"name": "mix", "alpah": 0.84})


def test_table_has_every_loss_and_bicubic(smoke_run):
    _, summary = smoke_run
    table = summary["table"]
    assert list(table) == [*EXPECTED, "bicubic"]
    for tag, row in table.items():
        for metric in summary["metrics"]:
            s = row[metric]
            # The 168 px test crops are large enough for MS-SSIM: nothing is skipped.
            assert s["mean"] is not None and math.isfinite(s["mean"]), (tag, metric)
            if metric.startswith("psnr"):
                assert 15.0 < s["mean"] < 60.0, (tag, metric, s)
            else:
                assert 0.0 < s["mean"] <= 1.0, (tag, metric, s)
            assert s["min"] <= s["mean"] <= s["max"]
    assert summary["ms_ssim_skipped"] == []
    assert summary["seeds"] == [0]


def test_trained_models_beat_or_match_bicubic(smoke_run):
    _, summary = smoke_run
    table = summary["table"]
    bicubic = table["bicubic"]["psnr_y"]["mean"]
    # L2 training starts at bicubic (zero last layer) and minimises the MSE: it must gain.
    assert table["l2"]["psnr_y"]["mean"] > bicubic + 0.1
    for tag in EXPECTED:
        assert table[tag]["psnr_y"]["mean"] > bicubic - 2.0, tag
        # Y metrics (8-bit, luma, border cropped) are higher than RGB ones on these images.
        assert table[tag]["psnr_y"]["mean"] > table[tag]["psnr"]["mean"], tag


def test_findings_are_consistent_with_the_table(smoke_run):
    _, summary = smoke_run
    table, found = summary["table"], summary["findings"]
    for metric, tag in found["winner"].items():
        best = max(table[t][metric]["mean"] for t in EXPECTED)
        assert table[tag][metric]["mean"] == best
    d = table["l1"]["psnr_y"]["mean"] - table["l2"]["psnr_y"]["mean"]
    assert found["l1_beats_l2_psnr_y"] == (d > 0)
    assert found["l1_beats_l2_psnr_y_margin_db"] == pytest.approx(d)
    assert "l2_to_l1_beats_l2_psnr_y" in found


def test_switched_loss_continues_the_l2_run(smoke_run):
    workdir, _ = smoke_run
    sidecars = sorted((workdir / "checkpoints" / "l2_to_l1").glob("step_*.json"))
    meta = [json.loads(p.read_text()) for p in sidecars]
    # A warm start from the L2 run's checkpoint at the switch (train.init_from): its own
    # checkpoints start after it, and each names where it started.
    assert [m["step"] for m in meta] == [40]
    assert meta[0]["initialized_from"].endswith("checkpoints/l2/step_000000020.json")
    lines = [json.loads(s) for s in (workdir / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in lines if r.get("tag") == "l2_to_l1" and "loss" in r]
    assert steps and min(steps) > 20


def test_files_are_written(smoke_run):
    workdir, _ = smoke_run
    figure = workdir / "sr_crops.png"
    assert figure.stat().st_size > 1000
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (workdir / "results.md").read_text()
    for tag in [*EXPECTED, "bicubic"]:
        assert f"| {tag} |" in table


def test_bad_loss_is_a_config_error(study):
    with pytest.raises(ConfigError, match="losses"):
        runner.load_study_config(study, SMOKE, ["losses=[{name: ssimm}]"])
    with pytest.raises(ConfigError, match="switch_at"):
        runner.load_study_config(
            study, SMOKE, ["losses=[{name: l1, switch_from: {name: mse}, switch_at: 1.5}]"]
        )
    with pytest.raises(ConfigError, match="sweep"):
        runner.load_study_config(study, SMOKE, ["sweep={data.patch_size: [8, 12]}"])


def test_switch_step_is_always_checkpointed_and_kept(study):
    module = _studies.module(study)
    cfg = runner.load_study_config(
        study, "configs/super_resolution/study.yaml", ["train.checkpoint_every=3000"]
    )
    run_cfg = module._run_cfg(cfg, module._switch_step(cfg, cfg.losses[-1]))
    # Switch at 10000 of 20000 steps: checkpoints every gcd(3000, 10000) = 1000, all 20 kept.
    assert run_cfg.train.checkpoint_every == 1000
    assert run_cfg.train.keep_checkpoints == 20
    assert run_cfg.losses == [] and run_cfg.train.init_from is None
    # The loss is the task's argument (one compiled task per loss), not a config key.
    assert not hasattr(run_cfg, "loss")
    assert module.task({"name": "mse"}) is module.task({"name": "mse"})
    assert module.task({"name": "mse"}).args == {"loss": {"name": "mse"}}


def _host_initialised(shapes, seed: int):
    """A model built by ``eqx.filter_eval_shape`` with its arrays drawn by NumPy: weights
    ``(..., k, k, in, out)`` uniform in +-1/sqrt(k k in) as ``sr.Conv2d`` draws them, biases in
    +-0.1. (The device RNG's init of 4-D convolution weights takes seconds to compile on XLA:CPU;
    the test needs real SRCNN / ESPCN models, not those particular numbers.)"""
    import jax
    import jax.numpy as jnp
    import numpy as np

    rng = np.random.default_rng(seed)

    def draw(s):
        lim = 1.0 / math.sqrt(math.prod(s.shape[-4:-1])) if len(s.shape) >= 4 else 0.1
        return jnp.asarray(rng.uniform(-lim, lim, s.shape), s.dtype)

    return jax.tree.map(draw, shapes)


def test_dead_hidden_layers_are_detected_and_reported(study):
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import numpy as np

    from l1jax import sr

    module = _studies.module(study)
    key = jax.random.key(0)
    # Two seeds of SRCNN, stacked as a vmapped init makes them.
    models = _host_initialised(
        eqx.filter_eval_shape(
            eqx.filter_vmap(lambda k: sr.SRCNN(2, 3, 8, 3, key=k)), jax.random.split(key, 2)
        ),
        seed=0,
    )
    # Seed 1: a bias of -1e3 on the second hidden layer keeps every unit below zero.
    bias = models.layers[1].bias.at[1].set(-1e3)
    models = eqx.tree_at(lambda m: m.layers[1].bias, models, bias)
    lr = jnp.asarray(np.random.default_rng(1).uniform(size=(12, 12, 3)), jnp.float32)
    activity = module.dead_layers(models, lr)
    assert len(activity) == 2 and len(activity[0]) == 2
    assert min(activity[0]) > 0 and activity[1][1] == 0.0
    # Fractions are of channels: layer 1 has 8, layer 2 has 4.
    assert all(f * 8 == round(f * 8) for f in (activity[0][0], activity[1][0]))
    rows = {t: {k: {"mean": 30.0, "std": 0.0} for k in module.METRICS} for t in ("l1", "l2")}
    out = module.findings(rows, {"l1": activity, "l2": [[1.0, 1.0], [0.5, 0.25]]})
    assert out["dead_layer_seeds"] == {"l1": [1]}
    assert any("l1: seed index(es) [1]" in line for line in out["statements"])
    espcn = _host_initialised(eqx.filter_eval_shape(sr.ESPCN, 2, 3, 8, key=key), seed=1)
    assert isinstance(espcn, sr.ESPCN) and module.dead_layers(espcn, lr) is None


def test_the_accelerator_modes_give_the_cpu_modes_results(study):
    # What `auto` picks on a GPU (the compiled device loop, vmapped seeds) against what it
    # picks on a CPU for this convolutional model (a step per host iteration, seeds unrolled).
    import dataclasses

    import chex

    module = _studies.module(study)
    cfg = runner.load_study_config(
        study, SMOKE, ["train.steps=3", "train.steps_per_call=3", "sweep={seed: [0, 1]}"]
    )
    cfg = module._run_cfg(cfg, None)
    results = {}
    for loop, mode in (("host", "unroll"), ("device", "vmap")):
        train = dataclasses.replace(cfg.train, loop=loop, sweep_mode=mode)
        result = runner.train(module.task({"name": "l1"}), dataclasses.replace(cfg, train=train))
        assert (result.loop, result.sweep_mode) == (loop, mode)
        results[loop] = result
    chex.assert_trees_all_close(
        results["host"].params, results["device"].params, rtol=1e-4, atol=1e-6
    )
    chex.assert_trees_all_equal(results["host"].state.step, results["device"].state.step)


def test_the_study_runs_with_x64_on(study, tmp_path):
    # x64 on (a float64 session): the models train and are evaluated in float64.
    import jax
    import numpy as np

    argv = ["--config", SMOKE, "--workdir", str(tmp_path / "w"), "--set", "train.steps=2"]
    argv += ["--set", "train.steps_per_call=2", "--set", "losses=[{name: l1}]"]
    with jax.enable_x64(True):
        assert runner.main(study, argv) == 0
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    l1, bicubic = summary["table"]["l1"], summary["table"]["bicubic"]
    assert (
        np.isfinite(l1["psnr_y"]["mean"])
        and abs(l1["psnr_y"]["mean"] - bicubic["psnr_y"]["mean"]) < 1.0
    )
