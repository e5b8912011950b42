"""Data parallelism over a ``jax.sharding.Mesh``: batches split over the devices of one
mesh axis, parameters and vectors replicated.

Each batch is placed with its leading (sample) dimension split over the mesh's data axis;
the parameters, the operator's vectors and its results are replicated on every device of
the mesh. The per-batch product is the same ``jax.jit``-compiled function as on one device:
given sharded inputs, XLA's SPMD partitioner runs each device on its slice of the batch
and inserts the all-reduce that sums the slices' contributions inside the compiled
function, so the result is exactly the single-device operator's (up to rounding) for any
loss, also one that is not a plain mean over samples.
"""

from __future__ import annotations

from typing import Any

import jax
from jax.sharding import Mesh, NamedSharding, PartitionSpec


class DataSharding:
    """Where the data, parameters and vectors of a data-parallel operator live.

    Parameters
    ----------
    mesh
        The device mesh.
    axis
        The name of the mesh axis the samples are split over; the other axes (if any)
        replicate.
    """

    def __init__(self, mesh: Mesh, axis: str) -> None:
        self.mesh = mesh
        self.axis = axis
        self.replicated = NamedSharding(mesh, PartitionSpec())
        self.split = NamedSharding(mesh, PartitionSpec(axis))

    @property
    def size(self) -> int:
        """The number of devices the samples are split over (the data axis's length)."""
        return int(self.mesh.shape[self.axis])

    def divides(self, num_samples: int) -> bool:
        """Whether a batch of ``num_samples`` can be split evenly over the data axis (else it
        is replicated: every device computes the whole batch)."""
        return num_samples % self.size == 0

    def placement(self, leaf: Any, num_samples: int) -> NamedSharding:
        """The sharding of one leaf of a batch of ``num_samples`` samples: split along its
        leading axis when that is the batch axis and the batch divides evenly, else replicated."""
        ndim = getattr(leaf, "ndim", 0)
        if self.divides(num_samples) and ndim >= 1 and leaf.shape[0] == num_samples:
            return self.split
        return self.replicated


def resolve_mesh(mesh: Mesh | None, data_axis: str | None) -> DataSharding | None:
    """Check ``mesh=`` and ``data_axis=`` and return the data sharding (``None`` without a mesh).

    ``data_axis=None`` takes the mesh's only axis, or the axis named ``"data"``.
    """
    if mesh is None:
        if data_axis is not None:
            raise ValueError("data_axis needs mesh=: pass the jax.sharding.Mesh the data is split over")
        return None
    if not isinstance(mesh, Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh or None, got {type(mesh).__name__}")
    names = tuple(mesh.axis_names)
    if data_axis is None:
        if len(names) == 1:
            data_axis = names[0]
        elif "data" in names:
            data_axis = "data"
        else:
            raise ValueError(f"the mesh has axes {names}; name the one the samples are split over with data_axis=")
    if data_axis not in names:
        raise ValueError(f"data_axis {data_axis!r} is not an axis of the mesh, whose axes are {names}")
    if jax.process_count() > 1:
        raise NotImplementedError(
            "mesh= covers the devices of one process; with several JAX processes, the algorithms' host "
            "transfers of replicated vectors are not supported yet"
        )
    return DataSharding(mesh, data_axis)
