"""A type check with mypy: of the public API (the calls a user writes pass, and a wrong
enumerated argument is an error: the Literal annotations are what a checker sees), and of the
package itself (no error in any module)."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAD = """
import jax.numpy as jnp
from l1jax import losses, solvers

losses.l1(jnp.ones(2), jnp.zeros(2), reduction="average")
solvers.lasso(jnp.ones((4, 2)), jnp.zeros(4), 0.1, method="cd")
solvers.lad([[1.0], [2.0]], jnp.zeros(2))
"""


# The whole package, every module, checked by mypy with no error.
CHECKED = ["-p", "l1jax"]


def _mypy(targets, cache):
    cmd = [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports"]
    cmd += ["--cache-dir", str(cache), "--no-error-summary", *targets]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=ROOT)


def test_public_api_type_checks(tmp_path):
    good = _mypy([str(ROOT / "tests" / "typing" / "api_usage.py")], tmp_path / "cache")
    assert good.returncode == 0, good.stdout + good.stderr
    (tmp_path / "bad.py").write_text(BAD)
    bad = _mypy([str(tmp_path / "bad.py")], tmp_path / "cache")
    assert bad.returncode == 1, bad.stdout + bad.stderr
    errors = [line for line in bad.stdout.splitlines() if ": error:" in line]
    assert len(errors) == 3, bad.stdout
    assert '"reduction" to "l1"' in errors[0] and "Literal['none', 'mean', 'sum']" in errors[0]
    assert '"method" to "lasso"' in errors[1] and "'ws'" in errors[1]
    # Real[ArrayLike, "n d"] is an ArrayLike to a checker: a nested list is not one.
    assert 'Argument 1 to "lad"' in errors[2] and "list[list[float]]" in errors[2]


def test_the_package_type_checks(tmp_path):
    proc = _mypy(CHECKED, tmp_path / "cache")
    assert proc.returncode == 0, proc.stdout + proc.stderr
