"""The documentation: every public name has a docstring, the numerics' have examples that run,
and the site builds with warnings as errors."""

import doctest
import importlib
import inspect
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Every module the API reference documents (docs/api/*.md).
PUBLIC_MODULES = [
    "l1jax.losses",
    "l1jax.subgrad",
    "l1jax.penalties",
    "l1jax.prox",
    "l1jax.optim",
    "l1jax.solvers",
    "l1jax.solvers.reference",
    "l1jax.image",
    "l1jax.sr",
    "l1jax.datasets",
    "l1jax.models",
    "l1jax.runner",
]
# Modules whose every public function and class carries an executed ``Examples:`` block: all
# of them.
EXAMPLE_MODULES = PUBLIC_MODULES


def _public(module_name):
    """``(qualified name, object)`` of the functions and classes in ``module.__all__``."""
    module = importlib.import_module(module_name)
    assert hasattr(module, "__all__"), f"{module_name} has no __all__"
    out = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isfunction(obj) or inspect.isclass(obj) or callable(obj):
            if not inspect.ismodule(obj):
                out.append((f"{module_name}.{name}", obj))
    return out


def test_every_public_function_and_class_has_a_docstring():
    missing = [
        name
        for module in PUBLIC_MODULES
        for name, obj in _public(module)
        if not (inspect.getdoc(obj) or "").strip()
    ]
    assert not missing, f"public names without a docstring: {missing}"


def test_every_documented_module_is_in_the_api_reference():
    pages = " ".join(p.read_text() for p in (ROOT / "docs" / "api").glob("*.md"))
    absent = [m for m in PUBLIC_MODULES if f"automodule:: {m}\n" not in pages]
    assert not absent, f"modules without an API page: {absent}"


EXAMPLES = {name: obj for module in EXAMPLE_MODULES for name, obj in _public(module)}


def test_every_public_function_and_class_of_the_numerics_has_an_example():
    without = [
        name
        for name, obj in EXAMPLES.items()
        if "Examples:" not in (obj.__doc__ or "") or ">>>" not in (obj.__doc__ or "")
    ]
    assert not without, f"public names without an Examples: block: {without}"


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_examples_run(name):
    obj = EXAMPLES[name]
    tests = doctest.DocTestFinder(recurse=False).find(obj, name, globs={})
    tests = [t for t in tests if t.examples]
    assert tests, f"{name}: no examples"
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    runner = doctest.DocTestRunner(optionflags=flags)
    report = []
    # The examples show the default float32 results, and clean calls: a warning (an
    # uncertified solve) fails one.
    with jax.enable_x64(False), warnings.catch_warnings():
        warnings.simplefilter("error")
        for test in tests:
            runner.run(test, out=report.append)
    assert runner.failures == 0, "".join(report)


def test_the_site_builds_with_warnings_as_errors(tmp_path):
    """What ./scripts/docs.sh runs: a docstring Sphinx cannot parse fails here."""
    cmd = [sys.executable, "-m", "sphinx", "-E", "-W", "--keep-going", "-q", "-b", "html"]
    proc = subprocess.run(
        [*cmd, str(ROOT / "docs"), str(tmp_path / "site")],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    html = (tmp_path / "site" / "api" / "solvers.html").read_text()
    assert 'id="l1jax.solvers.quantile_regression"' in html
    assert "Examples" in html
