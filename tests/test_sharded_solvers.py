"""The solvers on data sharded over an 8-device CPU mesh: one device's solution, X kept sharded.

``tests/conftest.py`` gives the CPU 8 devices. X and y are split by rows (basis pursuit's A by
columns, its data axis); XLA inserts the reductions' collectives itself (GSPMD).
"""

import os
import re
import socket
import subprocess
import sys
import textwrap

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from l1jax import solvers
from l1jax.runner.program import _primitive_names

N, D = 240, 4  # rows divisible by 8; one shape for every test


@pytest.fixture(scope="module")
def mesh():
    # tests/conftest.py gives every test run 8 CPU devices; fewer is a broken set-up, not a skip.
    assert jax.device_count() >= 8, "needs XLA_FLAGS=--xla_force_host_platform_device_count=8"
    return Mesh(np.array(jax.devices()[:8]), ("rows",))


def _data(seed=0):
    rng = np.random.default_rng(seed)
    X = np.concatenate([np.ones((N, 1)), rng.standard_normal((N, D - 1))], axis=1)
    y = X @ rng.standard_normal(D) + rng.laplace(size=N)
    return X, y


def _shard(mesh, X, y):
    return (
        jax.device_put(X, NamedSharding(mesh, P("rows", None))),
        jax.device_put(y, NamedSharding(mesh, P("rows"))),
    )


def _same(a, b):
    np.testing.assert_allclose(np.asarray(b.coef), np.asarray(a.coef), rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(np.asarray(b.objective), np.asarray(a.objective), rtol=1e-10)
    np.testing.assert_array_equal(np.asarray(b.converged), np.asarray(a.converged))
    assert np.all(np.asarray(a.converged))


def _big_gathers(compiled, size):
    """All-gathers in a compiled program whose result has at least ``size`` elements."""
    out = []
    for m in re.finditer(r"= [a-z0-9]+\[([0-9,]*)\]\{[0-9,]*\} all-gather\(", compiled.as_text()):
        shape = [int(s) for s in m.group(1).split(",") if s]
        if np.prod(shape) >= size:
            out.append(shape)
    return out


def test_row_sharded_lad_equals_one_device_and_keeps_x_sharded(x64, mesh):
    X, y = _data()
    Xs, ys = _shard(mesh, X, y)
    assert Xs.addressable_shards[0].data.shape == (N // 8, D)
    compiled = jax.jit(solvers.lad).lower(Xs, ys).compile()
    _same(solvers.lad(jnp.asarray(X), jnp.asarray(y)), compiled(Xs, ys))
    # No all-gather of the n x d design (vectors of n, in the rarely taken sorts, may be).
    assert _big_gathers(compiled, N * D) == []
    # Each device receives its n/8 rows of X and y, not all of them.
    args = compiled.memory_analysis().argument_size_in_bytes
    assert args <= (N // 8) * (D + 1) * 8 + 64


@pytest.mark.parametrize("method", ["ipm", "pfn"])
def test_lad_has_no_cumulative_sum_over_rows(x64, method):
    # XLA's cumulative sum of a row-sharded vector costs O(n^2): pfn on n = 1e6 rows over 8
    # CPU devices took 600 s against 3.6 s on one. The prefix sums over rows are scans instead.
    X, y = jnp.ones((30_000, D)), jnp.ones(30_000)
    jaxpr = jax.make_jaxpr(lambda X, y: solvers.lad(X, y, method=method))(X, y)
    assert not {"cumsum", "cumlogsumexp", "cummax", "cummin", "cumprod"} & _primitive_names(jaxpr)


def test_prefix_sum_and_first_true_match_numpy_on_a_sharded_vector(mesh):
    from l1jax.solvers._linalg import first_true, prefix_sum

    a = np.random.default_rng(3).standard_normal(N)
    shard = NamedSharding(mesh, P("rows"))
    for x in (jnp.asarray(a), jax.device_put(a, shard)):
        mask = x > 0.3
        ints = mask.astype(jnp.int32)
        np.testing.assert_array_equal(jax.jit(prefix_sum)(ints), np.cumsum(a > 0.3))
        rev = jax.jit(lambda v: prefix_sum(v, reverse=True))(ints)
        np.testing.assert_array_equal(rev, np.cumsum((a > 0.3)[::-1])[::-1])
        for size in (5, int(np.sum(a > 0.3)) + 7):  # fewer than the true entries, and more
            want = np.nonzero(a > 0.3)[0][:size]
            want = np.concatenate([want, np.zeros(size - want.size, int)])
            np.testing.assert_array_equal(jax.jit(first_true, static_argnums=1)(mask, size), want)


@pytest.mark.parametrize("solver", ["quantile", "lasso"])
def test_row_sharded_equals_one_device(x64, mesh, solver):
    X, y = _data()
    call = {
        "quantile": lambda X, y: solvers.quantile_regression(X, y, jnp.array([0.2, 0.5, 0.8])),
        "lasso": lambda X, y: solvers.lasso(X, y, 0.1),
    }[solver]
    one = call(jnp.asarray(X), jnp.asarray(y))
    _same(one, call(*_shard(mesh, X, y)))


def test_basis_pursuit_column_sharded_equals_one_device(x64, mesh):
    # A is m x n with n >> m: the n columns (one per unknown) are the data axis.
    rng = np.random.default_rng(1)
    m, n = 16, 64
    A = rng.standard_normal((m, n))
    x = np.zeros(n)
    x[[3, 20, 41]] = [1.5, -2.0, 0.7]
    b = A @ x
    one = solvers.basis_pursuit(jnp.asarray(A), jnp.asarray(b))
    As = jax.device_put(A, NamedSharding(mesh, P(None, "rows")))
    _same(one, solvers.basis_pursuit(As, jnp.asarray(b)))


_WORKER = textwrap.dedent(
    """
    import os, sys
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax
    jax.distributed.initialize(
        coordinator_address=sys.argv[1], num_processes=2, process_id=int(sys.argv[2]),
        initialization_timeout=60,
    )
    jax.config.update("jax_enable_x64", True)
    import numpy as np
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P
    from l1jax import solvers
    n, d = int(sys.argv[3]), int(sys.argv[4])
    rng = np.random.default_rng(0)
    X = np.concatenate([np.ones((n, 1)), rng.standard_normal((n, d - 1))], axis=1)
    y = X @ rng.standard_normal(d) + rng.laplace(size=n)
    mesh = Mesh(np.array(jax.devices()), ("rows",))
    sx, sy = NamedSharding(mesh, P("rows", None)), NamedSharding(mesh, P("rows"))
    Xg = jax.make_array_from_callback(X.shape, sx, lambda i: X[i])
    yg = jax.make_array_from_callback(y.shape, sy, lambda i: y[i])
    res = solvers.lad(Xg, yg)
    print("COEF", " ".join(repr(float(c)) for c in np.asarray(res.coef)), bool(res.converged))
    jax.distributed.shutdown()
    """
)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_solve_the_same_lad(x64, tmp_path):
    worker = tmp_path / "worker.py"
    worker.write_text(_WORKER)
    addr = f"127.0.0.1:{_free_port()}"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    cmd = [sys.executable, str(worker), addr]
    procs = [
        subprocess.Popen(
            [*cmd, str(i), str(N), str(D)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    outs = []
    try:
        for p in procs:
            out, err = p.communicate(timeout=120)
            assert p.returncode == 0, err[-3000:]
            outs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()
    lines = [next(ln for ln in o.splitlines() if ln.startswith("COEF")) for o in outs]
    assert lines[0] == lines[1]
    assert lines[0].endswith("True")
    coef = np.array([float(c) for c in lines[0].split()[1:-1]])
    X, y = _data()
    np.testing.assert_allclose(coef, np.asarray(solvers.lad(X, y).coef), rtol=1e-8, atol=1e-10)
