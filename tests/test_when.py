"""``l1jax._lapack.when``: a cond that a batching ``vmap`` runs only for the problems taking it."""

import jax
import jax.numpy as jnp
import numpy as np

from l1jax._lapack import when


def _branch(x):
    return jnp.sort(x) * 2, jnp.sum(x)


def _when(pred, x):
    return when(pred, _branch, (x, jnp.zeros((), x.dtype)), x)


def test_when_is_cond_for_one_problem():
    x = jnp.array([3.0, 1.0, 2.0])
    for pred in (True, False):
        got = jax.jit(_when)(jnp.array(pred), x)
        want = jax.lax.cond(pred, lambda: _branch(x), lambda: (x, jnp.zeros(())))
        for g, w in zip(got, want, strict=True):
            np.testing.assert_array_equal(g, w)


def test_when_under_vmap_selects_per_problem():
    x = jnp.array([[3.0, 1.0, 2.0], [5.0, 4.0, 6.0], [0.0, -1.0, 1.0]])
    pred = jnp.array([True, False, True])
    sorted_, total = jax.jit(jax.vmap(_when))(pred, x)
    np.testing.assert_array_equal(sorted_[0], [2.0, 4.0, 6.0])
    np.testing.assert_array_equal(sorted_[1], x[1])
    np.testing.assert_array_equal(sorted_[2], [-2.0, 0.0, 2.0])
    np.testing.assert_array_equal(total, [6.0, 0.0, 0.0])


def test_when_under_vmap_skips_the_branch_when_no_problem_takes_it():
    calls = []

    def branch(x):
        jax.debug.callback(lambda: calls.append(1))
        return x + 1

    f = jax.jit(jax.vmap(lambda p, x: when(p, branch, x, x)))
    x = jnp.arange(4.0)
    np.testing.assert_array_equal(f(jnp.zeros(4, bool), x), x)
    jax.effects_barrier()
    assert calls == []
    np.testing.assert_array_equal(f(jnp.array([False, True, False, False]), x), [0, 2, 2, 3])
    jax.effects_barrier()
    assert len(calls) == 1  # one pass of the loop for the whole batch
