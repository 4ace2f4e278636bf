"""The tap's host hand-off: what the sink receives is what the device had."""

import jax
import jax.numpy as jnp
import numpy as np

from braxviewer.train import tap


def test_emit_hands_the_sink_exact_arrays_of_every_dtype_in_one_callback():
  got = []
  chunk = {
    "qpos": jnp.arange(24, dtype=jnp.float32).reshape(2, 3, 4) / 7.0,
    "metrics": {"a": jnp.full((2, 3), -1.5, jnp.float32)},
    "half": jnp.array([0.5, 2.0], jnp.float16),  # not 4 bytes: sent apart
    "empty": jnp.zeros((0, 3), jnp.float32),
  }
  hi = jnp.uint32(0xFFFFFFFF)  # a bit-cast NaN pattern must survive
  lo = jnp.int32(-7)

  @jax.jit
  def run(flag):
    tap.emit(flag, chunk, lambda c, h, lo_: got.append((c, h, lo_)), hi, lo)
    return flag

  run(jnp.int32(0)).block_until_ready()
  jax.effects_barrier()
  assert not got  # off: the sink is never called
  run(jnp.int32(1)).block_until_ready()
  jax.effects_barrier()
  assert len(got) == 1
  c, h, lo_ = got[0]
  np.testing.assert_array_equal(c["qpos"], np.asarray(chunk["qpos"]))
  assert c["qpos"].dtype == np.float32 and c["qpos"].shape == (2, 3, 4)
  np.testing.assert_array_equal(c["metrics"]["a"], np.full((2, 3), -1.5))
  assert c["half"].dtype == np.float16
  np.testing.assert_array_equal(c["half"], [0.5, 2.0])
  assert c["empty"].shape == (0, 3)
  assert int(h) == 0xFFFFFFFF and h.dtype == np.uint32
  assert int(lo_) == -7 and lo_.dtype == np.int32
