"""Where a trainer's arrays live: brax's pmap layout, placed to compile once.

brax trains under ``pmap`` over every device of every process (axis
:data:`AXIS`). Upstream feeds its programs arrays from
``device_put_replicated`` first and the programs' own outputs later; under
jax 0.9 ``pmap`` is built on ``shard_map`` and its compile cache keys on the
inputs' placement and weak types, so the second call compiles again.
:class:`Placement` puts every input with the sharding the programs return and
:func:`strong` drops weak types, so call 1 and call n hit the same
executable. :func:`first`, :func:`assert_replicated` and
:func:`synchronize_hosts` also work under ``jax.distributed``, where a pmap's
outputs span devices of other processes.
"""

from __future__ import annotations

import functools
from typing import Any, Optional

from brax.training import pmap
import jax
from jax.experimental import multihost_utils
import jax.numpy as jnp
import numpy as np

AXIS = "i"  # the pmap axis name (brax's)


def strong(tree: Any) -> Any:
  """``tree`` without weak types: a re-fed output never recompiles."""
  return jax.tree.map(
    lambda x: jnp.asarray(x).astype(jnp.asarray(x).dtype), tree
  )


def first(tree: Any) -> Any:
  """The copy on this process's first device, without a gather."""
  return jax.tree.map(lambda x: x.addressable_shards[0].data.squeeze(0), tree)


def assert_replicated(tree: Any) -> None:
  """brax's ``pmap.assert_is_replicated``, with the answer read off this
  process's first device (under ``jax.distributed`` a pmap's output spans
  devices of other processes, which brax's ``[0]`` cannot read)."""
  check = functools.partial(pmap.is_replicated, axis_name=AXIS)
  assert bool(first(jax.pmap(check, axis_name=AXIS)(tree)))


def synchronize_hosts(name: str) -> None:
  """brax's ``pmap.synchronize_hosts`` (every process stays up until all
  are done), as a barrier ``name`` that runs under ``jax.distributed``."""
  if jax.process_count() > 1:
    multihost_utils.sync_global_devices(name)


class Placement:
  """brax's pmap layout and the placement of host values on it.

  Every process trains on its first ``local_devices`` devices (at most
  ``max_devices_per_host``); a device's pmap axis index is ``process *
  local_devices + device``. Inputs are put with the ``NamedSharding``
  (mesh axis :data:`AXIS`) that a pmapped program returns, so the first
  call and every later one hit the same executable. Nothing compiles or
  raises here.
  """

  def __init__(self, max_devices_per_host: Optional[int] = None):
    self.process_id = jax.process_index()
    self.process_count = jax.process_count()
    local = jax.local_device_count()
    if max_devices_per_host is not None:
      local = min(local, max_devices_per_host)
    self.local_devices = local
    self.device_count = local * self.process_count

  @functools.cached_property
  def devices(self) -> list:
    """This process's devices, in pmap order."""
    return jax.local_devices()[: self.local_devices]

  @functools.cached_property
  def sharding(self) -> jax.sharding.NamedSharding:
    """The sharding of a pmapped program's outputs (leading axis)."""
    mesh = jax.sharding.Mesh(np.array(self.devices), (AXIS,))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(AXIS))

  def envs_per_device(self, num_envs: int) -> int:
    """``num_envs`` split over every device of every process."""
    if num_envs % self.device_count != 0:
      raise ValueError(
        f"num_envs ({num_envs}) must be divisible by the number of devices"
        f" ({self.device_count})."
      )
    return num_envs // self.device_count

  def shard(self, tree: Any) -> Any:
    """Leading axis = this process's devices."""
    return jax.device_put(tree, self.sharding)

  def replicate(self, tree: Any) -> Any:
    """The same copy on each of this process's devices."""
    n = len(self.devices)
    stacked = jax.tree.map(
      lambda x: np.broadcast_to(np.asarray(x), (n,) + np.shape(x)), tree
    )
    return self.shard(stacked)

  def split_key(self, key: jax.Array) -> Any:
    """One key per device, sharded."""
    return self.shard(jax.random.split(key, self.local_devices))

  def env_keys(self, key: jax.Array, num_envs: int) -> jax.Array:
    """Reset keys of this process's envs, ``(local devices, envs per
    device, ...)``, on the host's default device."""
    keys = jax.random.split(key, num_envs // self.process_count)
    return jnp.reshape(keys, (self.local_devices, -1) + keys.shape[1:])
