"""Packaging: the wheel and sdist build, and the wheel works in a fresh environment outside the
checkout (every public module imports; a loss, a solver and a training step run)."""

import subprocess
import sys
import sysconfig
import tarfile
import textwrap
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SMOKE = textwrap.dedent(
    """
    import importlib, importlib.metadata, pathlib, sys
    import l1jax
    here = pathlib.Path(l1jax.__file__).resolve()
    assert pathlib.Path(sys.prefix).resolve() in here.parents, here  # the installed copy
    assert l1jax.__version__ == importlib.metadata.version("l1jax"), l1jax.__version__
    for name in ["losses", "subgrad", "penalties", "prox", "optim", "solvers", "image", "sr",
                 "datasets", "models", "runner"]:
        assert getattr(l1jax, name).__name__ == "l1jax." + name  # reachable from the package
    importlib.import_module("l1jax.solvers.reference")
    assert l1jax.solvers.reference.lad_lp
    import jax, jax.numpy as jnp, optax
    p, t = jnp.array([2.5, 0.0, 2.1, 7.8]), jnp.array([3.0, -0.5, 2.0, 7.5])
    assert abs(float(l1jax.losses.l1(p, t)) - 0.35) < 1e-6
    X = jnp.stack([jnp.ones(40), jnp.linspace(-1.0, 1.0, 40)], axis=1)
    fit = l1jax.solvers.lad(X, (X @ jnp.array([1.0, 2.0])).at[::8].add(50.0))
    assert bool(fit.converged) and jnp.allclose(fit.coef, jnp.array([1.0, 2.0]), atol=1e-4)
    model = l1jax.models.Linear(2, key=jax.random.key(0))
    opt = optax.sgd(0.1)
    state = opt.init(model)
    loss = lambda m: l1jax.losses.l1(m(X), X @ jnp.array([1.0, 2.0]))
    grads = jax.grad(loss)(model)
    updates, state = opt.update(grads, state, model)
    trained = optax.apply_updates(model, updates)
    assert float(loss(trained)) < float(loss(model))
    print("ok", l1jax.__version__, here)
    """
)


def _run(cmd, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, **kw)
    assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc.stdout


def test_the_wheel_works_in_a_fresh_environment(tmp_path):
    dist = tmp_path / "dist"
    # No build isolation: setuptools and wheel come from the test extra, so no download.
    _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(dist), str(ROOT)])
    (wheel,) = dist.glob("l1jax-*.whl")
    (sdist,) = dist.glob("l1jax-*.tar.gz")
    names = zipfile.ZipFile(wheel).namelist()
    assert "l1jax/py.typed" in names and "l1jax/solvers/reference.py" in names
    assert not any(n.startswith(("tests/", "experiments/", "scripts/")) for n in names)
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    assert {"pyproject.toml", "README.md", "l1jax/__init__.py"} <= members

    # A fresh venv whose only l1jax is the wheel; the dependencies (jax, optax, ...) are this
    # environment's, made visible by a .pth (its editable l1jax is a .pth there, not read).
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    purelib = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"])
    (Path(purelib.strip()) / "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    _run([*pip, "--no-deps", "--no-index", str(wheel)])
    out = _run([str(python), "-c", SMOKE], cwd=tmp_path)  # outside the checkout
    assert out.startswith("ok "), out
