"""l1jax.sr data: bundled images, folder loader, MATLAB bicubic, on-device patch sampling."""

import os
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from PIL import Image

from l1jax import sr

# One compiled sampler shared by every test (the dataset is an argument, so no recompiles for
# datasets with the same static fields and buffer shapes).
_sample = jax.jit(sr.PatchDataset.sample_batch, static_argnums=2)


def _rand_images(seed, shapes):
    rng = np.random.default_rng(seed)
    return [rng.random(s, dtype=np.float32) for s in shapes]


# --------------------------------------------------------------------------- bundled images
def test_available_images_are_the_natural_colour_photos():
    assert set(sr.available_images()) == {
        "astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "retina",
        "hubble_deep_field", "motorcycle", "china", "flower",
    }  # fmt: skip
    assert set(sr.TRAIN_IMAGES).isdisjoint(sr.TEST_IMAGES)
    assert set(sr.TRAIN_IMAGES) | set(sr.TEST_IMAGES) <= set(sr.available_images())


def test_bundled_skimage_files_ship_in_the_wheel():
    # The loaders must not need pooch (a download): every file is inside the package.
    import skimage.data

    data_dir = os.path.dirname(skimage.data.__file__)
    for f in ("astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "ihc.png",
              "retina.jpg", "hubble_deep_field.jpg", "motorcycle_left.png"):  # fmt: skip
        assert os.path.isfile(os.path.join(data_dir, f)), f


@pytest.mark.parametrize("name", ["astronaut", "chelsea", "coffee", "china", "flower"])
def test_load_image_float_hwc_unit_range(name):
    im = sr.load_image(name)
    assert isinstance(im, jax.Array)
    assert im.dtype == jnp.float32 and im.ndim == 3 and im.shape[-1] == 3
    assert float(im.min()) >= 0.0 and float(im.max()) <= 1.0
    assert float(im.std()) > 0.05  # a real photograph, not a blank


def test_load_image_luma_is_studio_range_bt601(tmp_path):
    # channels=1 is l1jax.image.rgb_to_y: Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255.
    rgb = np.asarray(sr.load_image("chelsea"))
    y = np.asarray(sr.load_image("chelsea", channels=1))
    assert y.shape == rgb.shape[:-1] + (1,)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    closed = (16.0 + 65.481 * r + 128.553 * g + 24.966 * b) / 255.0
    np.testing.assert_allclose(y[..., 0], closed, atol=1e-6)
    # Black, white and the primaries of an 8-bit file, against the closed form.
    pixels = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [0, 255, 0], [0, 0, 255]]],
                      np.uint8)  # fmt: skip
    Image.fromarray(pixels).save(tmp_path / "primaries.png")
    y = np.asarray(sr.load_image(tmp_path / "primaries.png", channels=1))[0, :, 0]
    np.testing.assert_allclose(y, np.array([16.0, 235.0, 81.481, 144.553, 40.966]) / 255.0,
                               atol=1e-6)  # fmt: skip
    # A grey file is its own luma: returned as stored, not mapped to the studio range.
    grey = np.array([[0, 128, 255]], np.uint8)
    Image.fromarray(grey).save(tmp_path / "grey.png")
    y = np.asarray(sr.load_image(tmp_path / "grey.png", channels=1))[..., 0]
    np.testing.assert_allclose(y, grey / 255.0, atol=1e-7)


def test_load_image_bad_name_and_channels():
    with pytest.raises(ValueError, match="name must be one of"):
        sr.load_image("lena")
    with pytest.raises(ValueError, match="channels must be 1 or 3"):
        sr.load_image("chelsea", channels=4)


def test_missing_studies_extra_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(ImportError, match=r"l1jax\[studies\]"):
        sr.load_image("astronaut")


def test_missing_pillow_says_how_to_install(tmp_path, monkeypatch):
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(tmp_path / "a.png")
    monkeypatch.setitem(sys.modules, "PIL", None)
    with pytest.raises(ImportError, match=r"needs Pillow.*l1jax\[studies\]"):
        sr.load_image(tmp_path / "a.png")


def test_load_split_disjoint_and_by_name():
    train, test = sr.load_split(train=["chelsea"], test=["flower"])
    assert len(train) == 1 and len(test) == 1
    np.testing.assert_array_equal(np.asarray(test[0]), np.asarray(sr.load_image("flower")))
    with pytest.raises(ValueError, match="disjoint"):
        sr.load_split(train=["chelsea", "coffee"], test=["coffee"])


# ----------------------------------------------------------------------------- folder loader
def test_load_image_folder(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (7, 9, 3), dtype=np.uint8)
    grey = rng.integers(0, 256, (5, 6), dtype=np.uint8)
    rgba = rng.integers(0, 256, (4, 4, 4), dtype=np.uint8)
    deep = rng.integers(0, 65536, (3, 5), dtype=np.uint16)
    Image.fromarray(rgb).save(tmp_path / "a_rgb.png")
    Image.fromarray(grey).save(tmp_path / "b_grey.png")
    Image.fromarray(rgba).save(tmp_path / "c_rgba.PNG")
    Image.fromarray(deep).save(tmp_path / "d_16bit.png")
    Image.fromarray(rgb).save(tmp_path / "e.jpg", quality=100)
    (tmp_path / "notes.txt").write_text("not an image")
    out = sr.load_image_folder(tmp_path)
    assert list(out) == ["a_rgb.png", "b_grey.png", "c_rgba.PNG", "d_16bit.png", "e.jpg"]
    np.testing.assert_allclose(out["a_rgb.png"], rgb / 255.0, atol=1e-7)
    np.testing.assert_allclose(out["b_grey.png"], np.repeat(grey[..., None], 3, -1) / 255.0)
    np.testing.assert_allclose(out["c_rgba.PNG"], rgba[..., :3] / 255.0, atol=1e-7)
    np.testing.assert_allclose(out["d_16bit.png"][..., 0], deep / 65535.0, atol=1e-7)
    assert out["e.jpg"].shape == (7, 9, 3)  # JPEG is lossy: shape and range only
    assert all(im.dtype == jnp.float32 for im in out.values())
    # A path works wherever a bundled name does.
    np.testing.assert_array_equal(sr.load_image(tmp_path / "a_rgb.png"), out["a_rgb.png"])


def test_load_image_folder_errors(tmp_path):
    with pytest.raises(ValueError, match="no files ending in"):
        sr.load_image_folder(tmp_path)
    with pytest.raises(ValueError, match="must be a directory"):
        sr.load_image_folder(tmp_path / "missing")


# ------------------------------------------------------------------------ MATLAB bicubic resize
def _matlab_reference(hr, s):
    """imresize(hr, 1/s) by an independent route: jax.image.resize (Keys a=-0.5, antialiased,
    but renormalising at the border) on a symmetrically padded image, cropped back. Padding by a
    multiple of s keeps the output grid aligned, and the pad is wider than the kernel."""
    p = 4 * s
    padded = np.pad(hr, ((p, p), (p, p), (0, 0)), mode="symmetric")
    out = jax.image.resize(
        padded, (padded.shape[0] // s, padded.shape[1] // s, hr.shape[-1]), "bicubic"
    )
    return np.asarray(out)[p // s : -p // s, p // s : -p // s]


@pytest.mark.parametrize("s", [2, 3, 4])
def test_downsample_matches_matlab_reference(s):
    (hr,) = _rand_images(1, [(12 * s, 10 * s, 3)])
    np.testing.assert_allclose(sr.downsample(hr, s), _matlab_reference(hr, s), atol=2e-6)


@pytest.mark.parametrize("s", [2, 3, 4])
def test_downsample_interior_matches_pillow_bicubic(s):
    # Pillow's BICUBIC reduce is Keys a=-0.5 with the support widened by s; it differs from
    # MATLAB only at the border (it renormalises, MATLAB mirrors).
    (hr,) = _rand_images(2, [(12 * s, 12 * s, 1)])
    pil = Image.fromarray(hr[..., 0]).resize((12, 12), Image.BICUBIC)
    np.testing.assert_allclose(sr.downsample(hr, s)[2:-2, 2:-2, 0], np.asarray(pil)[2:-2, 2:-2],
                               atol=2e-6)  # fmt: skip


@pytest.mark.parametrize("s", [2, 3, 4])
def test_resize_closed_forms(s):
    const = np.full((6 * s, 4 * s, 3), 0.3, np.float32)
    np.testing.assert_allclose(sr.downsample(const, s), 0.3, atol=1e-6)
    np.testing.assert_allclose(sr.upsample(const[:6, :4], s), 0.3, atol=1e-6)
    # A symmetric normalised kernel keeps a linear ramp; output pixel o sits at (o + 1/2) s - 1/2.
    i = np.arange(8 * s, dtype=np.float32)
    ramp = np.broadcast_to((0.01 * i)[:, None, None], (8 * s, 8 * s, 1))
    o = np.arange(8)
    expect = 0.01 * ((o + 0.5) * s - 0.5)
    np.testing.assert_allclose(sr.downsample(ramp, s)[2:-2, 5, 0], expect[2:-2], atol=1e-6)
    # Keys' a = -0.5 cubic reproduces quadratics; input pixel i sits at (i + 1/2) / s - 1/2.
    x = np.arange(10, dtype=np.float32)
    quad = np.broadcast_to((0.01 * x**2)[None, :, None], (3, 10, 1))
    u = (np.arange(10 * s) + 0.5) / s - 0.5
    got = np.asarray(sr.upsample(quad, s))[1, 3 * s : -3 * s, 0]
    np.testing.assert_allclose(got, (0.01 * u**2)[3 * s : -3 * s], atol=1e-5)


def test_resize_jit_vmap_and_errors():
    ims = np.stack(_rand_images(3, [(8, 12, 3)] * 2))
    batched = sr.downsample(ims, 2)
    np.testing.assert_allclose(jax.vmap(lambda x: sr.downsample(x, 2))(ims), batched, atol=1e-6)
    np.testing.assert_allclose(jax.jit(sr.downsample, static_argnums=1)(ims, 2), batched,
                               atol=1e-6)  # fmt: skip
    assert sr.imresize(ims, scale=0.5).shape == (2, 4, 6, 3)
    assert sr.modcrop(np.zeros((13, 14, 3)), 3).shape == (12, 12, 3)
    with pytest.raises(ValueError, match="multiples of factor=3"):
        sr.downsample(np.zeros((13, 12, 3), np.float32), 3)
    with pytest.raises(ValueError, match="factor must be a positive int"):
        sr.upsample(np.zeros((4, 4, 3), np.float32), 1.5)
    with pytest.raises(ValueError, match="scale must be > 0"):
        sr.imresize(np.zeros((4, 4, 3), np.float32), scale=0.0)


# ---------------------------------------------------------------------------- patch sampling
@pytest.fixture(scope="module")
def images():
    return _rand_images(4, [(40, 52, 3), (64, 37, 3), (45, 45, 3)])


@pytest.mark.parametrize("s", [2, 3, 4])
def test_sample_batch_shapes_dtypes_range(images, s):
    ds = sr.PatchDataset(images, scale=s, patch_size=6)
    lr, hr = _sample(ds, jax.random.key(0), 5)
    assert lr.shape == (5, 6, 6, 3) and hr.shape == (5, 6 * s, 6 * s, 3)
    assert lr.dtype == hr.dtype == jnp.float32
    assert 0.0 <= float(hr.min()) and float(hr.max()) <= 1.0
    # LR is a crop of the whole-image bicubic downsample, aligned with the HR crop and augmented
    # alike: away from the patch border (kernel reach ~2 LR pixels) it equals the HR patch's own
    # downsample.
    np.testing.assert_allclose(sr.downsample(hr, s)[:, 2:-2, 2:-2], lr[:, 2:-2, 2:-2], atol=2e-6)


def test_sample_batch_constant_image_gives_constant_lr():
    ds = sr.PatchDataset([np.full((30, 33, 3), 0.7, np.float32)], scale=3, patch_size=5)
    lr, hr = _sample(ds, jax.random.key(1), 4)
    np.testing.assert_allclose(lr, 0.7, atol=1e-6)
    np.testing.assert_allclose(hr, 0.7, atol=0)


def test_sample_batch_deterministic(images):
    ds = sr.PatchDataset(images, scale=2, patch_size=6)
    a = _sample(ds, jax.random.key(7), 8)
    b = _sample(ds, jax.random.key(7), 8)
    c = _sample(ds, jax.random.key(8), 8)
    for x, y in zip(a, b, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.array_equal(a[1], c[1])


def _d4(p):
    """The 8 symmetries of a square patch (H, W, C)."""
    return [np.rot90(q, k) for q in (p, p.transpose(1, 0, 2)) for k in range(4)]


def test_augmentation_is_a_symmetry_of_the_same_patch(images):
    plain = sr.PatchDataset(images, scale=2, patch_size=4, augment=False)
    aug = sr.PatchDataset(images, scale=2, patch_size=4, augment=True)
    key = jax.random.key(3)
    # Same key -> same (image, y, x) draws; only the symmetry differs.
    lr0, hr0 = (np.asarray(a) for a in _sample(plain, key, 256))
    lr1, hr1 = (np.asarray(a) for a in _sample(aug, key, 256))
    seen = set()
    for b in range(256):
        np.testing.assert_array_equal(np.sort(hr0[b], axis=None), np.sort(hr1[b], axis=None))
        matches = [k for k, q in enumerate(_d4(hr0[b])) if np.array_equal(q, hr1[b])]
        assert matches, f"sample {b} is not a flip/rotation of the plain patch"
        assert any(np.array_equal(_d4(lr0[b])[k], lr1[b]) for k in matches)
        seen.add(matches[0])
    assert seen == set(range(8))  # all 8 symmetries occur


def test_patch_dataset_errors():
    with pytest.raises(ValueError, match="smaller than an HR patch"):
        sr.PatchDataset([np.zeros((20, 40, 3), np.float32)], scale=2, patch_size=12)
    with pytest.raises(ValueError, match="scale must be a positive int"):
        sr.PatchDataset([np.zeros((20, 20, 3), np.float32)], scale=0, patch_size=4)
    with pytest.raises(ValueError, match=r"images\[1\] must have shape"):
        sr.PatchDataset([np.zeros((20, 20, 3)), np.zeros((20, 20, 1))], scale=2, patch_size=4)


def test_patch_dataset_on_bundled_images():
    train, _ = sr.load_split(train=["chelsea", "coffee"], test=["flower"])
    ds = sr.PatchDataset(train, scale=4, patch_size=6)
    assert ds.hr.shape == (300 * 448 + 400 * 600, 3)
    lr, hr = _sample(ds, jax.random.key(0), 3)
    assert lr.shape == (3, 6, 6, 3) and hr.shape == (3, 24, 24, 3)


def test_eval_pairs(images):
    lr, hr = sr.eval_pairs(images, scale=3)
    assert [x.shape for x in hr] == [(39, 51, 3), (63, 36, 3), (45, 45, 3)]
    assert [x.shape for x in lr] == [(13, 17, 3), (21, 12, 3), (15, 15, 3)]
    np.testing.assert_allclose(lr[1], sr.downsample(np.asarray(images[1])[:63, :36], 3), atol=0)
