"""l1jax.sr models: pixel_shuffle and Conv2d against PyTorch, shapes, residual path, training."""

import importlib.util
import json
import pathlib
import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
import torch

from l1jax import losses, sr

KEY = jax.random.key(0)
TINY = {"width": 8, "depth": 2}  # EDSR: 2 residual blocks; SRCNN/ESPCN: 2 convolutions
MODELS = {"srcnn": sr.SRCNN, "espcn": sr.ESPCN, "edsr": sr.EDSR}


def _rand(shape, seed=0):
    return np.random.default_rng(seed).random(shape, dtype=np.float32)


def _to_torch_conv(conv: sr.Conv2d) -> torch.nn.Conv2d:
    k, _, cin, cout = conv.weight.shape
    t = torch.nn.Conv2d(cin, cout, k, padding=k // 2)
    with torch.no_grad():
        t.weight.copy_(torch.from_numpy(np.asarray(conv.weight).transpose(3, 2, 0, 1).copy()))
        t.bias.copy_(torch.from_numpy(np.array(conv.bias)))
    return t


def _nchw(x):
    return torch.from_numpy(np.ascontiguousarray(np.asarray(x).transpose(0, 3, 1, 2)))


def _nhwc(t):
    return t.detach().numpy().transpose(0, 2, 3, 1)


@pytest.mark.parametrize("r, lead", [(2, (2,)), (3, (1,)), (4, ())])
def test_pixel_shuffle_matches_torch(r, lead):
    x = _rand((*lead, 3, 5, 2 * r * r))
    xb = x if lead else x[None]
    expect = _nhwc(torch.nn.functional.pixel_shuffle(_nchw(xb), r))
    got = np.asarray(jax.jit(sr.pixel_shuffle, static_argnums=1)(x, r))
    np.testing.assert_array_equal(got, expect if lead else expect[0])


def test_pixel_shuffle_vmap_and_error():
    x = _rand((4, 3, 5, 8))
    np.testing.assert_array_equal(jax.vmap(lambda v: sr.pixel_shuffle(v, 2))(x),
                                  sr.pixel_shuffle(x, 2))  # fmt: skip
    with pytest.raises(ValueError, match="C \\* scale\\^2"):
        sr.pixel_shuffle(np.zeros((2, 2, 6)), 2)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_conv2d_matches_torch(k):
    conv = sr.Conv2d(4, 6, k, key=KEY)
    x = _rand((2, 7, 9, 4))
    expect = _nhwc(_to_torch_conv(conv)(_nchw(x)))
    np.testing.assert_allclose(conv(jnp.asarray(x)), expect, atol=1e-5)
    lim = 1 / np.sqrt(4 * k * k)  # PyTorch's default init range
    assert float(jnp.abs(conv.weight).max()) <= lim and float(jnp.abs(conv.bias).max()) <= lim


def _numpy_filled(model, seed=0):
    """Gives an abstract model (from eqx.filter_eval_shape) concrete PyTorch-style random weights.

    Eager initialisation with jax.random compiles once per weight shape, which costs seconds on
    a busy 2-core machine; the tests below need some weights, not those particular ones.
    Conv2d's own initialisation is tested in test_conv2d_matches_torch.
    """
    rng = np.random.default_rng(seed)

    def fill(leaf):
        lim = 1 / np.sqrt(np.prod(leaf.shape[:-1])) if len(leaf.shape) > 1 else 0.05
        return jnp.asarray(rng.uniform(-lim, lim, leaf.shape).astype(np.float32))

    is_abstract = lambda v: isinstance(v, jax.ShapeDtypeStruct)  # noqa: E731
    return jax.tree_util.tree_map(fill, model, is_leaf=is_abstract)


@pytest.fixture(scope="module")
def models():
    """One tiny x2 model per name, shared by the tests that run them."""
    return {
        name: _numpy_filled(eqx.filter_eval_shape(MODELS[name], scale=2, key=KEY, **TINY))
        for name in MODELS
    }


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("s", [2, 3, 4])
def test_output_shapes(name, s):
    # Built and run abstractly: shapes without compiling anything per (model, scale).
    model = eqx.filter_eval_shape(MODELS[name], scale=s, channels=3, key=KEY, **TINY)
    for shape in ((2, 5, 7, 3), (5, 7, 3)):
        y = eqx.filter_eval_shape(model, jax.ShapeDtypeStruct(shape, jnp.float32))
        assert y.shape == (*shape[:-3], 5 * s, 7 * s, 3) and y.dtype == jnp.float32


@pytest.mark.parametrize("name", sorted(MODELS))
def test_single_image_equals_its_batch_row(models, name):
    # Evaluation runs on one full image (h, w, C); training on batches (B, h, w, C).
    x = _rand((2, 5, 7, 3))
    out = models[name](x)
    assert out.shape == (2, 10, 14, 3)
    np.testing.assert_allclose(models[name](x[1]), out[1], atol=1e-5)


def test_models_under_jit_and_vmap(models):
    model = models["edsr"]
    x = _rand((3, 6, 4, 3))
    out = eqx.filter_jit(lambda m, v: m(v))(model, x)
    np.testing.assert_allclose(jax.vmap(model)(x), out, atol=1e-5)
    np.testing.assert_allclose(model(x), out, atol=1e-5)


def test_one_channel_edsr():
    model = eqx.filter_eval_shape(sr.EDSR, 2, channels=1, key=KEY, **TINY)
    assert model.mean == (0.5,) and model.tail.weight.shape == (3, 3, 8, 1)
    y = eqx.filter_eval_shape(model, jax.ShapeDtypeStruct((6, 4, 1), jnp.float32))
    assert y.shape == (12, 8, 1)


def test_srcnn_zero_last_layer_is_bicubic(models):
    default = eqx.filter_eval_shape(sr.SRCNN, 3, key=KEY)
    assert [layer.weight.shape[0] for layer in default.layers] == [9, 5, 5]
    assert [layer.weight.shape[-1] for layer in default.layers] == [64, 32, 3]
    model = models["srcnn"]
    last = model.layers[-1]
    model = eqx.tree_at(
        lambda m: (m.layers[-1].weight, m.layers[-1].bias),
        model,
        (jnp.zeros_like(last.weight), jnp.zeros_like(last.bias)),
    )
    x = _rand((1, 6, 5, 3))
    np.testing.assert_allclose(model(x), sr.upsample(x, 2), atol=0)
    assert float(jnp.abs(models["srcnn"](x) - sr.upsample(x, 2)).max()) > 1e-3


def test_edsr_matches_the_benchmarks_pytorch_twin(models, monkeypatch):
    path = pathlib.Path(__file__).parents[1] / "scripts" / "bench_sr.py"
    spec = importlib.util.spec_from_file_location("bench_sr", path)
    bench = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "bench_sr", bench)  # dataclasses look the module up
    spec.loader.exec_module(bench)
    for s, n_up in ((2, 1), (4, 2)):
        if s == 2:
            model = models["edsr"]
        else:
            model = _numpy_filled(eqx.filter_eval_shape(sr.EDSR, s, key=KEY, **TINY))
        assert len(model.upsampler) == n_up
        net = bench.torch_edsr(s, 3, 8, 2)
        convs = [model.head]
        for b in model.blocks:
            convs += [b.conv1, b.conv2]
        convs += [model.body_tail, *model.upsampler, model.tail]
        tconvs = [m for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
        assert len(convs) == len(tconvs)
        for c, t in zip(convs, tconvs, strict=True):
            with torch.no_grad():
                t.weight.copy_(_to_torch_conv(c).weight)
                t.bias.copy_(_to_torch_conv(c).bias)
        x = _rand((2, 5, 6, 3))
        np.testing.assert_allclose(model(x), _nhwc(net(_nchw(x))), atol=1e-5)
        n_jax = sum(v.size for v in jax.tree_util.tree_leaves(eqx.filter(model, eqx.is_array)))
        assert n_jax == sum(p.numel() for p in net.parameters())


def test_constructor_errors(models):
    with pytest.raises(ValueError, match="depth must be an int >= 2"):
        sr.SRCNN(2, depth=1, key=KEY)
    with pytest.raises(ValueError, match="kernel_sizes must have depth=3"):
        sr.SRCNN(2, kernel_sizes=(9, 5), key=KEY)
    with pytest.raises(ValueError, match="scale must be 2, 3 or a power of two"):
        sr.EDSR(5, key=KEY, **TINY)
    with pytest.raises(ValueError, match="width must be an int >= 1"):
        sr.ESPCN(2, width=0, key=KEY)
    with pytest.raises(ValueError, match="x must have 3 channels"):
        eqx.filter_eval_shape(models["espcn"], jax.ShapeDtypeStruct((4, 4, 1), jnp.float32))


_OPT = optax.adam(1e-4)


@eqx.filter_jit
def _train_step(model, opt_state, lr, hr):
    loss, grads = eqx.filter_value_and_grad(lambda m: losses.l1(m(lr), hr))(model)
    updates, opt_state = _OPT.update(grads, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, updates), opt_state, loss


@pytest.mark.parametrize("name", sorted(MODELS))
def test_one_training_step_decreases_l1(models, name):
    model = models[name]
    ds = sr.PatchDataset([_rand((40, 40, 3), seed=1)], scale=2, patch_size=6)
    lr, hr = ds.sample_batch(jax.random.key(1), 4)
    opt_state = _OPT.init(eqx.filter(model, eqx.is_array))
    new_model, _, loss0 = _train_step(model, opt_state, lr, hr)
    loss1 = losses.l1(new_model(lr), hr)
    assert np.isfinite(float(loss0)) and float(loss1) < float(loss0) - 1e-5, (loss0, loss1)


def test_profile_sr_times_every_phase_and_its_convolutions_agree(monkeypatch, tmp_path):
    """scripts/profile_sr.py at a toy size: every phase timed for both frameworks, and XLA's
    convolution, input gradient and weight gradient equal PyTorch's (torch.nn.grad)."""
    scripts = pathlib.Path(__file__).parents[1] / "scripts"
    monkeypatch.syspath_prepend(str(scripts))
    spec = importlib.util.spec_from_file_location("profile_sr", scripts / "profile_sr.py")
    prof = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(prof)
    out = tmp_path / "profile.json"
    args = ["--width", "8", "--depth", "1", "--batch", "2", "--patch", "8", "--repeats", "1"]
    prof.main(prof.parse_args([*args, "--out", str(out)]))
    res = json.loads(out.read_text())
    for impl in ("l1jax NHWC", "PyTorch channels_last", "PyTorch NCHW"):
        assert set(res["phases_s"][impl]) == {"forward", "forward + backward", "step"}
        assert all(t > 0 for t in res["phases_s"][impl].values())
    assert set(res["conv_s"]) == {"xla", "torch"}
    assert all(a < 1e-5 for a in res["conv_agreement"].values()), res["conv_agreement"]
    assert res["conv_gflop"] == 2 * 2 * 8 * 8 * 8 * 8 * 9 / 1e9
