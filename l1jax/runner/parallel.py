"""Data parallelism through ``jax.sharding``: one code path for one device, many, or many hosts.

The runner builds a 1-D :class:`~jax.sharding.Mesh` whose single axis, ``"batch"``, spans the
devices; examples are split along it (``NamedSharding(mesh, P("batch"))``) and parameters and
optimizer states are replicated (``P()``). Inside the jitted step the loss is a mean over the
global batch, so XLA inserts the all-reduce of the gradients itself: there is no ``pmap`` and no
hand-written collective, and one device is simply a mesh of size 1.

Multi-host: call :func:`initialize_distributed` first (the CLI does when the config has
``distributed.enabled: true``); afterwards ``jax.devices()`` lists every host's devices, the mesh
spans them all, and every process runs the same program on its own shard of each batch.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import AxisType, Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

__all__ = [
    "BATCH_AXIS",
    "make_mesh",
    "batch_sharding",
    "replicated",
    "constrain_batch",
    "constrain_replicated",
    "check_divisible",
    "initialize_distributed",
    "to_host",
    "put_replicated",
    "is_main_process",
]

BATCH_AXIS = "batch"


def make_mesh(num_devices: int | None = None) -> Mesh:
    """A 1-D mesh with axis ``"batch"`` over the first ``num_devices`` devices (default: all).

    The axis is ``AxisType.Auto`` so that XLA propagates shardings and inserts collectives.

    Raises:
      ValueError: ``num_devices`` is not in ``[1, jax.device_count()]``.
    """
    available = jax.device_count()
    n = available if num_devices is None else num_devices
    if not 1 <= n <= available:
        raise ValueError(
            f"parallel.num_devices must lie in [1, {available}] (the visible devices), got "
            f"num_devices={num_devices}"
        )
    return jax.make_mesh(
        (n,), (BATCH_AXIS,), axis_types=(AxisType.Auto,), devices=jax.devices()[:n]
    )


def batch_sharding(mesh: Mesh, ndim: int = 1, *, axis: int = 0) -> NamedSharding:
    """Splits dimension ``axis`` of an ``ndim``-dimensional array over the ``batch`` axis."""
    if not 0 <= axis < ndim:
        raise ValueError(f"axis={axis} is not an axis of a {ndim}-dimensional array")
    return NamedSharding(mesh, P(*([None] * axis), BATCH_AXIS))


def replicated(mesh: Mesh) -> NamedSharding:
    """Every device holds the whole array."""
    return NamedSharding(mesh, P())


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray))


def constrain_batch(tree: Any, mesh: Mesh, *, axis: int = 0) -> Any:
    """Inside jit: shard axis ``axis`` (the example axis) of every array leaf over ``batch``."""
    return jax.tree.map(
        lambda x: (
            jax.lax.with_sharding_constraint(x, batch_sharding(mesh, x.ndim, axis=axis))
            if _is_array(x) and x.ndim > axis
            else x
        ),
        tree,
    )


def constrain_replicated(tree: Any, mesh: Mesh) -> Any:
    """Inside jit: replicate every array leaf."""
    return jax.tree.map(
        lambda x: jax.lax.with_sharding_constraint(x, replicated(mesh)) if _is_array(x) else x,
        tree,
    )


def check_divisible(size: int, mesh: Mesh, what: str) -> None:
    """Raises ``ValueError`` naming ``what`` unless ``size`` splits evenly over the mesh."""
    n = mesh.shape[BATCH_AXIS]
    if size % n:
        raise ValueError(
            f"{what}={size} does not split evenly over the {n} devices of the '{BATCH_AXIS}' "
            f"mesh axis; make it a multiple of {n} or set parallel.num_devices"
        )


def initialize_distributed(
    *,
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
) -> None:
    """``jax.distributed.initialize`` with the config's fields (None: auto-detect).

    Must run before anything touches a JAX device.
    """
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )


def is_main_process() -> bool:
    """True on the process that writes files (process 0)."""
    return jax.process_index() == 0


def to_host(x: Any) -> Any:
    """A NumPy copy of a (possibly multi-host, replicated) array; other leaves unchanged."""
    if isinstance(x, jax.Array):
        if x.is_fully_addressable:
            return np.asarray(x)
        # Replicated across hosts: any local shard is the whole array.
        return np.asarray(x.addressable_data(0))
    return x


def put_replicated(tree: Any, mesh: Mesh) -> Any:
    """Places host arrays on every device of ``mesh`` (works across hosts)."""
    sharding = replicated(mesh)

    def put(x):
        if not _is_array(x):
            return x
        host = np.asarray(x)
        return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

    return jax.tree.map(put, tree)
