"""No deadlock on the CPU backend: LAPACK-backed study and solver code, each in a fresh process.

jaxlib 0.10 can hang for good when batched LAPACK calls run at the same time (the mechanism is in
``l1jax/_lapack.py``). Each check runs in its own interpreter under a hard timeout, so a hang
fails the test with a message instead of stalling pytest. The child processes get an intra-op
pool of two threads (``PJRT_NPROC=2``, the pool of a 2-core machine and the smallest one where
the hang shows), so a check is as sensitive on a many-core runner as on a 2-core one.

Before ``experiments/convergence.py`` generated its problems one seed at a time, its generator
hung on the first 64-seed call in 4 of 4 processes (8 of 8 within three calls at 32-64 seeds) and
after about 100 smoke-sized (4-seed) calls on average on the 2-core development machine.
"""

import inspect
import os
import queue
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from l1jax._lapack import unbatched

ROOT = Path(__file__).resolve().parents[1]
# Import and compilation: 10-20 s on the loaded 2-core development machine.
COMPILE_TIMEOUT_S = 150
# The compiled calls after "compiled": 1-3 s there; a hung call never finishes.
RUN_TIMEOUT_S = 30


def batched_lapack_calls(compiled) -> list[str]:
    """The LAPACK custom calls of a compiled program that work on a batch of matrices."""
    calls = []
    for line in compiled.as_text().splitlines():
        target = re.search(r'custom_call_target="(lapack_\w+)"', line)
        # The first result (the factored matrix) has a leading batch axis when batched.
        shape = re.search(r"= \(?(\w+\[([\d,]*)\])", line)
        if target and shape and shape.group(2).count(",") >= 2:
            calls.append(f"{target.group(1)}: {shape.group(1)}")
    return calls


PRELUDE = f"""
import re
import sys
sys.path[:0] = [{str(ROOT)!r}, {str(ROOT / "experiments")!r}]
import dataclasses
import jax
import jax.numpy as jnp
import convergence as c

lad_cfg = dataclasses.astuple(c.LadProblemConfig())
lasso_cfg = dataclasses.astuple(c.LassoProblemConfig())

def done(what):
    print(what, flush=True)

{inspect.getsource(batched_lapack_calls)}
"""


def run_child(name: str, body: str, run_timeout_s: float = RUN_TIMEOUT_S) -> None:
    """Runs ``PRELUDE + body`` in a fresh interpreter; fails if it stalls or fails.

    ``body`` compiles everything first and prints ``compiled``; from then on the whole run gets
    ``run_timeout_s``, so a hang is told apart from a slow compilation on a loaded machine.
    """
    env = {k: v for k, v in os.environ.items() if k not in ("XLA_FLAGS", "PJRT_NPROC", "NPROC")}
    env.update(JAX_PLATFORMS="cpu", PJRT_NPROC="2")
    proc = subprocess.Popen(
        [sys.executable, "-c", PRELUDE + textwrap.dedent(body)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: queue.Queue = queue.Queue()

    def read():
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    out: list[str] = []
    deadline = time.monotonic() + COMPILE_TIMEOUT_S
    phase = "import and compilation"
    try:
        while True:
            try:
                line = lines.get(timeout=max(deadline - time.monotonic(), 0))
            except queue.Empty:
                last = next((x for x in reversed(out) if x.strip()), "nothing\n").strip()
                pytest.fail(
                    f"{name}: {phase} did not finish in time (the process was killed); last "
                    f"output: {last}. A hang after 'compiled' is most likely the jaxlib CPU "
                    "LAPACK deadlock (l1jax/_lapack.py): batched LAPACK calls running at once.",
                    pytrace=False,
                )
            if line is None:
                break
            out.append(line)
            if line.strip() == "compiled":
                deadline = time.monotonic() + run_timeout_s
                phase = f"the compiled calls (given {run_timeout_s} s)"
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == 0, f"{name} failed:\n{''.join(out)[-4000:]}"


def test_unbatched_lapack_calls_stay_single_matrix_under_vmap():
    def orthonormal(a):
        return jnp.linalg.qr(a)[0]

    # Drawn flat (the same numbers): a 4-D draw takes seconds to compile on XLA:CPU.
    a = jax.random.normal(jax.random.key(0), (3 * 2 * 30 * 10,)).reshape(3, 2, 30, 10)
    plain = jax.jit(jax.vmap(jax.vmap(orthonormal))).lower(a).compile()
    guarded = jax.jit(jax.vmap(jax.vmap(unbatched(orthonormal)))).lower(a).compile()
    assert batched_lapack_calls(plain) == [
        "lapack_sgeqrf_ffi: f32[3,2,30,10]",
        "lapack_sorgqr_ffi: f32[3,2,30,10]",
    ]
    assert batched_lapack_calls(guarded) == []
    np.testing.assert_array_equal(guarded(a), plain(a))
    # Unbatched arguments and pytrees pass through; outside vmap nothing changes.
    solve = unbatched(lambda m, rhs: {"x": jnp.linalg.solve(m, rhs["b"]), "c": 2 * rhs["c"]})
    m = 3 * jnp.eye(5) + 0.1
    rhs = {"b": jnp.ones((4, 5)), "c": jnp.arange(4.0)}
    out = jax.jit(jax.vmap(solve, in_axes=(None, 0)))(m, rhs)
    np.testing.assert_allclose(out["x"], jnp.linalg.solve(m, rhs["b"].T).T, rtol=1e-6)
    np.testing.assert_array_equal(out["c"], 2 * rhs["c"])
    np.testing.assert_array_equal(unbatched(orthonormal)(a[0, 0]), orthonormal(a[0, 0]))


def test_convergence_problem_generator_does_not_hang():
    run_child(
        "convergence.make_problems",
        """
        with jax.enable_x64(True):
            key = jax.random.key(0)
            gen = c.make_problems.lower(key, lad=lad_cfg, lasso=lasso_cfg, num_seeds=64).compile()
            done("compiled")
            for i in range(3):
                jax.block_until_ready(gen(jax.random.key(i)))
                done(f"make_problems(num_seeds=64) call {i + 1}")
        # Where the hang does not show (more threads than concurrent calls), the cause still does.
        assert not batched_lapack_calls(gen), batched_lapack_calls(gen)
        """,
    )


def test_vmapped_solvers_do_not_hang():
    # Sizes at which jaxlib splits the solvers' batched Cholesky, LU and eigh calls.
    run_child(
        "vmapped lad(method='admm') and lasso",
        """
        from l1jax import solvers

        def data(key):
            kx, ke = jax.random.split(key)
            X = jax.random.normal(kx, (16 * 200 * 50,)).reshape(16, 200, 50)
            return X, X.sum(axis=2) + jax.random.laplace(ke, (16, 200))

        lad = jax.vmap(lambda X, y: solvers.lad(X, y, method="admm", max_steps=100))
        lasso = jax.vmap(lambda X, y: solvers.lasso(X, y, 0.05, max_steps=100))
        with jax.enable_x64(True):
            args = data(jax.random.key(0))
            data = jax.jit(data).lower(jax.random.key(0)).compile()
            lad, lasso = (jax.jit(f).lower(*args).compile() for f in (lad, lasso))
            done("compiled")
            for i in range(10):
                X, y = data(jax.random.key(i))
                jax.block_until_ready(lad(X, y))
                jax.block_until_ready(lasso(X, y))
                done(f"vmapped lad admm and lasso, round {i + 1}")
        """,
    )


def test_two_vmapped_solves_in_one_jit_do_not_hang():
    run_child(
        "two vmapped solves in one jit",
        """
        from l1jax import solvers

        def two(solve):
            def f(key):
                k1, k2, k3 = jax.random.split(key, 3)
                X1, X2 = (jax.random.normal(k, (640_000,)).reshape(64, 200, 50) for k in (k1, k2))
                y = jax.random.laplace(k3, (64, 200))
                return jax.vmap(solve)(X1, y), jax.vmap(solve)(X2, y)
            return jax.jit(f)

        with jax.enable_x64(True):
            fns = [
                two(lambda X, y: solvers.lad(X, y, max_steps=3, polish=False).coef),
                two(lambda X, y: solvers.lad(X, y, method="admm", max_steps=20).coef),
                two(lambda X, y: solvers.lasso(X, y, 0.1, max_steps=20).coef),
            ]
            fns = [f.lower(jax.random.key(0)).compile() for f in fns]
            # Before the solvers were unbatched, these hung in about 1 of 20-40 calls.
            batched = [c for f in fns for c in batched_lapack_calls(f)]
            assert not batched, f"batched LAPACK calls: {batched}"
            done("compiled")
            for i in range(5):
                for f in fns:
                    jax.block_until_ready(f(jax.random.key(i)))
                done(f"round {i + 1}")
        """,
        run_timeout_s=60,  # 5 rounds: about 8 s on the development machine
    )
