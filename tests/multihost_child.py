"""A tiny PPO training that streams from a chosen process and device, run in
a subprocess by test_stream_source_devices.py and test_multihost.py (XLA_FLAGS
must force the CPU device count before JAX starts).

Six training steps (one chunk each, one step per device call); the stream
source switches after steps 3 and 5 (at the heartbeats of env steps 480 and
800, which every process gets).

``multihost_child.py local``: one process, 2 devices; streams device 1,
then device 0, then device 1.

``multihost_child.py PROCESS PORT``: one of 2 processes of a
``jax.distributed`` run on CPU (coordinator on 127.0.0.1:PORT), 2 devices
each; streams ``(0, 0)``, then ``(1, 1)``, then ``(0, 1)``, then trains
again without viewer for the parity check.

Every env step of the training is recorded with its device's pmap axis index
(a wrapper outside the training's vmap), so the test can tell whose envs a
chunk shows. Prints one JSON object on the last line.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Dict, List, Optional, Set, Tuple

import jax

if __name__ == "__main__" and sys.argv[1:2] != ["local"]:
  jax.distributed.initialize(
    coordinator_address=f"127.0.0.1:{sys.argv[2]}",
    num_processes=2,
    process_id=int(sys.argv[1]),
    initialization_timeout=120,
  )

from brax import envs  # noqa: E402
from brax.envs.base import Wrapper  # noqa: E402
from mujoco import mjx  # noqa: E402
import numpy as np  # noqa: E402
from tiny_training import TINY, count_compiles, flat_params  # noqa: E402

from braxviewer import HeadlessViewer  # noqa: E402
from braxviewer.brax.training.agents.ppo import train as ppo  # noqa: E402
from braxviewer.scene.lookup import physics_state  # noqa: E402
from braxviewer.train import epoch_calls

# MJX puts a model on jax.devices()[0] (brax's mjcf.load calls put_model
# without a device): in every process but the first that device is another
# process's, so the env's arrays hold no data there. Each process puts its
# model on its own first device.
_put_model = mjx.put_model
mjx.put_model = lambda m, *a, **kw: _put_model(
  m, *a, **{"device": jax.local_devices()[0], **kw}
)

VIEW = 2  # envs streamed (and recorded) per device
# 3 epochs of 2 training steps (160 env steps each, one chunk each).
CONFIG = {**TINY, "num_timesteps": 960, "num_evals": 4, "num_envs": 8}

# Axis index -> the recorded first VIEW envs' q of each of its env steps.
_steps: Dict[int, Set[bytes]] = {}


def _record(axis, q) -> None:
  _steps.setdefault(int(axis), set()).add(np.asarray(q, np.float32).tobytes())


class StepRecorder(Wrapper):
  """Records what the first envs of each device step to (the training's
  pmapped steps only; eval, outside pmap, is not recorded)."""

  def step(self, state: Any, action: jax.Array) -> Any:
    state = self.env.step(state, action)
    try:
      axis = jax.lax.axis_index("i")
    except NameError:  # not under the trainer's pmap
      return state
    q = physics_state(state).q[:VIEW]
    jax.debug.callback(_record, axis, q)
    return state


def recording_wrap(env: Any, **kw: Any) -> Any:
  return StepRecorder(envs.training.wrap(env, **kw))


class SwitchingViewer(HeadlessViewer):
  """Switches ``stream_source`` at given env steps (read off the trainer's
  heartbeat, which every process gets after each device call), and notes
  the compiles done when each heartbeat arrives."""

  def __init__(self, schedule: List[Tuple[int, Tuple[int, int]]], counter):
    super().__init__(num_envs=VIEW, mode="live", stream_source=schedule[0][1])
    self._schedule = schedule
    self._counter = counter
    self.compiles_at: Dict[int, int] = {}

  def on_progress(self, env_steps: int, metrics) -> None:
    super().on_progress(env_steps, metrics)
    self.compiles_at.setdefault(int(env_steps), self._counter.count)
    for at, source in self._schedule:
      if env_steps >= at:
        self.stream_source = source


def _whose(chunk) -> List[int]:
  """The axis indices whose recorded env steps hold every frame of
  ``chunk``."""
  assert chunk.qpos is not None
  frames = [np.asarray(f, np.float32).tobytes() for f in chunk.qpos]
  return sorted(
    a for a, seen in _steps.items() if all(f in seen for f in frames)
  )


def run(
  schedule: List[Tuple[int, Tuple[int, int]]], process: Optional[int]
) -> Dict[str, Any]:
  # One training step per device call, so each switch lands exactly.
  epoch_calls.CALL_SECONDS = 0.0
  env = envs.get_environment("inverted_pendulum", backend="generalized")
  with count_compiles() as counter:
    viewer = SwitchingViewer(schedule, counter)
    _, params, _ = ppo.train(
      environment=env, viewer=viewer, wrap_env_fn=recording_wrap, **CONFIG
    )
  train = [c for c in viewer.chunks if c.source == "train"]
  out: Dict[str, Any] = {
    "process": jax.process_index(),
    "processes": jax.process_count(),
    "local_devices": jax.local_device_count(),
    "axes_recorded": sorted(_steps),
    "seq": [c.seq for c in train],
    "env_steps": [c.env_steps for c in train],
    "whose": [_whose(c) for c in train],
    "shapes": sorted({c.qpos.shape for c in train if c.qpos is not None}),
    "eval_steps": [c.env_steps for c in viewer.chunks if c.source == "eval"],
    "sources_told": viewer.stream_sources,
    "compiles_at": viewer.compiles_at,
    "info_layout": [
      viewer.stream_info.process_count,
      viewer.stream_info.local_devices,
    ]
    if viewer.stream_info
    else None,
    "ended": viewer.ended,
    "params": flat_params(params).tolist(),
  }
  if process is not None:
    _, plain, _ = ppo.train(environment=env, **CONFIG)
    out["params_without_viewer"] = flat_params(plain).tolist()
  return out


def main() -> None:
  if sys.argv[1] == "local":
    out = run([(0, (0, 1)), (480, (0, 0)), (800, (0, 1))], None)
  else:
    schedule = [(0, (0, 0)), (480, (1, 1)), (800, (0, 1))]
    out = run(schedule, int(sys.argv[1]))
  print(json.dumps(out))


if __name__ == "__main__":
  main()
