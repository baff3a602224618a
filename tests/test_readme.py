"""The ten lines of the README and of the documentation site's first page run as written and
say what they claim."""

import pathlib
import re

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_readme_example_runs_and_its_comments_hold(page):
    path = ROOT / page
    code = re.search(r"```python\n(.*?)```", path.read_text(), re.S).group(1)
    ns: dict = {}
    exec(compile(code, str(path), "exec"), ns)  # noqa: S102 - the page is ours
    np.testing.assert_allclose(np.asarray(ns["fit"].coef), [1.0, -2.0, 0.5], atol=1e-4)
    l1, jax = ns["l1jax"], ns["jax"]
    np.testing.assert_allclose(float(l1.losses.l1(ns["p"], ns["t"])), 0.35, rtol=1e-6)
    np.testing.assert_array_equal(np.asarray(jax.grad(l1.losses.l1)(ns["t"], ns["t"])), 0.0)
    assert float(jax.grad(lambda x: l1.subgrad.abs(x, kink=1.0))(0.0)) == 1.0
