"""LAPACK calls that ``vmap`` runs one problem at a time on a CPU: a guard against a deadlock.

jaxlib 0.10 (``ParallelBatchMap`` in ``jaxlib/cpu/lapack_kernels.cc``, from 0.10.0 until
upstream compiled it out of open-source builds in July 2026) splits a batched LAPACK call (QR,
LU, Cholesky, ``eigh``, SVD, triangular solve, ...) whose batch its cost model puts at 2e5 flops
or more into chunks, schedules them on XLA:CPU's intra-op thread pool and waits for them in
``BlockingCounter::Wait``. A pool thread waiting like that cannot run the chunks queued on it:
another pool thread has to steal them. When as many such calls as the pool has threads (one per
core) wait at once, nobody is left to run a chunk and the process hangs for good. That happens
when independent LAPACK calls of one program run concurrently (XLA's thunk executor runs
independent operations in parallel): two QRs of ``vmap``-ed problems, two ``vmap``-ed solver
loops in one ``jit``. ``--xla_cpu_multi_thread_eigen=false`` and ``OPENBLAS_NUM_THREADS=1`` do not
help; a one-thread pool (``PJRT_NPROC=1`` before JAX starts, or a CPU affinity of one core) does,
at the price of all of XLA:CPU's intra-op parallelism.

A LAPACK call on a single matrix never uses the pool, so it cannot wait on it. :func:`unbatched`
keeps it that way under ``vmap``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

import jax
import jax.numpy as jnp

F = TypeVar("F", bound=Callable)
T = TypeVar("T")


def when(pred: jax.Array, fn: Callable[..., T], otherwise: T, *operands) -> T:
    """``jax.lax.cond(pred, lambda: fn(*operands), lambda: otherwise)`` as a ``while_loop`` that
    runs zero times or once. Under ``vmap`` a ``cond`` on a batched ``pred`` becomes a select
    that runs ``fn`` for every problem; the loop runs ``fn`` only when some problem of the batch
    takes it, so a rare fallback costs a batch nothing. ``fn``'s expensive work must depend on
    ``operands``: they pass an optimisation barrier with the loop's flag, so that XLA does not
    hoist that work out of the loop (work on closed-over values alone it may hoist, and then
    run it for every problem again)."""

    def body(st):
        _, ops = jax.lax.optimization_barrier((st[0], operands))
        return jnp.array(False), fn(*ops)

    return jax.lax.while_loop(lambda st: st[0], body, (pred, otherwise))[1]


def unbatched(fn: F) -> F:
    """``fn`` itself, except that ``vmap`` on a CPU runs it once per problem (``lax.map``).

    Wrap code whose LAPACK calls a ``vmap`` would batch (see the module docstring). With another
    default backend (no such deadlock) ``vmap`` batches as usual; the backend is read when the
    ``vmap`` is traced, so code placed on a CPU device while an accelerator is the default is
    batched. Nested ``vmap``s loop over every batch axis; ``jit`` and forward-mode autodiff work.
    Reverse-mode autodiff does not (``custom_vmap`` has no transpose), so wrap code that is not
    differentiated: problem generators, ``while_loop`` solvers. Work on unbatched arguments is
    repeated for every problem. Arguments are positional arrays or pytrees of arrays; bind static
    options with a closure.
    """
    wrapped = jax.custom_batching.custom_vmap(fn)

    @wrapped.def_vmap
    def rule(axis_size, in_batched, *args):
        del axis_size
        if jax.default_backend() != "cpu":
            in_axes = tuple(jax.tree.map(lambda b: 0 if b else None, b) for b in in_batched)
            out = jax.vmap(fn, in_axes=in_axes)(*args)
            return out, jax.tree.map(lambda _: True, out)
        leaves, tree = jax.tree.flatten(list(args))
        flags = jax.tree.leaves(list(in_batched))

        def one(mapped):
            it = iter(mapped)
            full = [next(it) if b else x for x, b in zip(leaves, flags, strict=True)]
            # ``wrapped``, not ``fn``: an outer vmap of this loop comes back to this rule.
            return wrapped(*jax.tree.unflatten(tree, full))

        out = jax.lax.map(one, [x for x, b in zip(leaves, flags, strict=True) if b])
        return out, jax.tree.map(lambda _: True, out)

    # A custom_vmap is called as fn is (same arguments, same results).
    return cast(F, wrapped)
