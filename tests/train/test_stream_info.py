"""Per-env ``state.info`` entries: which are streamed, and how they arrive."""

from __future__ import annotations

from typing import Any, Dict
import warnings

from flax import struct
from goal_env import TURN, GoalEnv
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_training import TINY, flat_params

from braxviewer import HeadlessViewer, WebViewer, WebViewerBatched
from braxviewer.brax.training.agents.ppo import train as ppo
from braxviewer.core import info_keys as info_choice
from braxviewer.core.fanout import FanOut
from braxviewer.core.protocol import check_info_keys
from braxviewer.core.streamer import Streamer
from braxviewer.record import Recorder, open_recording
from braxviewer.testing.factories import stream_info
from braxviewer.train import tap

B = 6  # envs in the batched state


@struct.dataclass
class _Data:
  qpos: Any


@struct.dataclass
class _State:
  """The parts of a MuJoCo Playground state the tap reads."""

  data: _Data
  reward: Any
  done: Any
  metrics: Dict[str, Any]
  info: Dict[str, Any]


def _playground_like_state():
  """A batched state whose info holds what a MuJoCo Playground joystick env
  and the brax training wrappers keep there."""
  f = lambda *s: jnp.arange(np.prod((B,) + s), dtype=jnp.float32).reshape(  # noqa: E731
    (B,) + s
  )
  info = {
    "rng": jnp.zeros((B, 2), jnp.uint32),
    "last_act": f(12),  # too wide
    "feet_air_time": f(4),
    "last_contact": jnp.zeros((B, 4), bool),
    "swing_peak": f(4),
    "steps_until_next_cmd": jnp.arange(B, dtype=jnp.int32),
    "pert_dir": f(3),
    "command": f(3) / 10,
    "gains": f(2, 2),  # 4 numbers: (N, 4) when streamed
    "nested": {"level": f(), "key": jnp.zeros((B, 2), jnp.uint32)},
    "global_scale": jnp.ones(()),  # not per env
    "other_batch": jnp.ones((B + 1,)),  # leading axis is not the batch
    # the training wrappers' bookkeeping
    "steps": f(),
    "truncation": f(),
    "episode_done": f(),
    "episode_metrics": {"sum_reward": f(), "length": f()},
    "first_obs": f(3),
    "AutoResetWrapper_done_count": jnp.zeros(B, jnp.int32),
    "AutoResetWrapper_rng": jnp.zeros((B, 2), jnp.uint32),
  }
  return _State(
    data=_Data(qpos=jnp.zeros((B, 3))),
    reward=jnp.zeros(B),
    done=jnp.zeros(B),
    metrics={},
    info=info,
  )


def test_automatic_choice_puts_command_first_and_keeps_the_budget():
  state = _playground_like_state()
  keys = tap.choose_info_keys(state)
  # command, then by name while the 16 numbers per env last (pert_dir,
  # steps_until_next_cmd and swing_peak no longer fit); PRNG keys, the
  # wrappers' bookkeeping, wide, global and foreign-batch entries never
  assert keys == (
    "command",
    "feet_air_time",
    "gains",
    "last_contact",
    "nested/level",
  )
  assert 3 + 4 + 4 + 4 + 1 == info_choice.INFO_BUDGET
  # without the command and the gains, entries further on fit (13 numbers;
  # swing_peak's 4 more would not)
  del state.info["command"], state.info["gains"]
  assert tap.choose_info_keys(state) == (
    "feet_air_time",
    "last_contact",
    "nested/level",
    "pert_dir",
    "steps_until_next_cmd",
  )


def test_select_frame_streams_the_chosen_entries_as_float32():
  state = _playground_like_state()
  frame = tap.select_frame(state, 4, "qpos")
  info = frame["info"]
  assert tuple(info) == tap.choose_info_keys(state)
  assert (
    info["command"].shape == (4, 3) and info["command"].dtype == jnp.float32
  )
  np.testing.assert_array_equal(info["command"], state.info["command"][:4])
  assert info["nested/level"].shape == (4,)
  assert info["last_contact"].dtype == jnp.float32  # bools as 0 / 1
  ints = tap.select_frame(state, 4, "qpos", ["steps_until_next_cmd"])["info"]
  assert ints["steps_until_next_cmd"].tolist() == [0.0, 1.0, 2.0, 3.0]
  # explicit: multi-axis entries flattened per env, a dict's name takes its
  # numeric entries (not its PRNG key)
  frame = tap.select_frame(state, 2, "qpos", info_keys=("gains", "nested"))
  assert list(frame["info"]) == ["gains", "nested/level"]
  assert frame["info"]["gains"].shape == (2, 4)
  # explicit names may go beyond the automatic budget and bookkeeping
  keys = tap.choose_info_keys(state, ["last_act", "steps", "episode_metrics"])
  assert keys == (
    "last_act",
    "steps",
    "episode_metrics/length",
    "episode_metrics/sum_reward",
  )
  assert tap.choose_info_keys(state, ()) == ()
  spec = tap.describe(state, "qpos", info_keys=("command", "gains", "steps"))
  assert spec.info_keys == ("command", "gains", "steps")
  assert spec.info_shapes == ((3,), (4,), ())
  assert spec.nmocap == 0
  assert tap.select_frame(state, 2, "qpos", info_keys=())["info"] == {}


def test_a_name_the_env_does_not_have_is_a_clear_error():
  state = _playground_like_state()
  with pytest.raises(ValueError) as err:
    tap.choose_info_keys(state, ["command", "comand"])
  msg = str(err.value)
  assert "'comand' is not in the env state's info" in msg
  assert "command" in msg and "feet_air_time" in msg and "nested/level" in msg
  with pytest.raises(ValueError, match="one entry per env.*shape \\(\\)"):
    tap.choose_info_keys(state, ["global_scale"])
  # the eval side leaves out what its env does not have
  assert tap.choose_info_keys(state, ["comand", "command"], strict=False) == (
    "command",
  )


def test_info_keys_option_is_checked_where_it_is_given():
  assert check_info_keys(None) is None
  assert check_info_keys("command") == ("command",)
  assert check_info_keys(["command", "level", "command"]) == (
    "command",
    "level",
  )
  with pytest.raises(ValueError, match="info_keys"):
    check_info_keys(3)  # type: ignore[arg-type]
  with pytest.raises(ValueError, match="non-empty names"):
    check_info_keys(["command", ""])
  assert HeadlessViewer(info_keys=["command"]).info_keys == ("command",)
  assert HeadlessViewer().info_keys is None
  v = WebViewerBatched(num_envs=2, port=0, info_keys=("command", "level"))
  w = WebViewer(port=0, info_keys="command")
  try:
    assert v.info_keys == ("command", "level") and w.info_keys == ("command",)
  finally:
    v.close()
    w.close()
  # one stream, one choice: a FanOut passes on its viewers' choice
  fan = FanOut(HeadlessViewer(), HeadlessViewer(info_keys=["level"]))
  assert fan.info_keys == ("level",)
  assert FanOut(HeadlessViewer()).info_keys is None
  with pytest.raises(ValueError, match="same info_keys"):
    FanOut(HeadlessViewer(info_keys=["a"]), HeadlessViewer(info_keys=["b"]))


def test_the_streamer_keeps_the_chosen_order_and_the_mocap_arrays():
  info = stream_info(
    2,
    nq=1,
    dt=0.1,
    chunk_length=3,
    nmocap=1,
    info_keys=("command", "b_level"),
    info_shapes=((3,), ()),
  )
  viewer = HeadlessViewer()
  streamer = Streamer(viewer, info, steps_per_chunk=6)
  z = np.zeros((3, 2), np.float32)
  arrays = {
    "qpos": np.zeros((3, 2, 1), np.float32),
    "mocap_pos": np.ones((3, 2, 1, 3), np.float32),
    "mocap_quat": np.ones((3, 2, 1, 4), np.float32),
    "reward": z,
    "done": z,
    "truncation": z,
    "metrics": {},
    # a pytree hands them over sorted by name
    "info": {"b_level": z + 1, "command": np.ones((3, 2, 3), np.float32)},
  }
  streamer.train_sink(arrays, np.uint32(0), np.uint32(0))
  chunk = viewer.chunks[0]
  assert list(chunk.info) == ["command", "b_level"]
  assert chunk.nmocap == 1 and chunk.mocap_quat.shape == (3, 2, 1, 4)


# -- a tiny training -----------------------------------------------------------

GOAL = dict(TINY, episode_length=12)


@pytest.mark.slow
def test_training_streams_info_and_mocap_and_learns_the_same(tmp_path):
  env = GoalEnv()
  headless = HeadlessViewer(num_envs=3, mode="live")
  recorder = Recorder(str(tmp_path / "run"), env=env.mj_model, mode="sync")
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    _, params, _ = ppo.train(
      environment=env, viewer=FanOut(headless, recorder), **GOAL
    )
    recorder.close()
    _, ref_params, _ = ppo.train(environment=env, **GOAL)
  # reading info and mocap changes nothing that is learned
  ours, ref = flat_params(params), flat_params(ref_params)
  assert np.max(np.abs(ours - ref)) <= 1e-5 * np.max(np.abs(ref))

  info = headless.stream_info
  assert info.nmocap == 2
  assert info.info_keys == ("command", "counts/near", "level")
  assert info.info_shapes == ((3,), (), ())
  chunks = list(headless.chunks)
  train = [c for c in chunks if c.source == "train"]
  evals = [c for c in chunks if c.source == "eval"]
  assert train and evals
  for c in chunks:
    t = c.num_steps
    assert list(c.info) == ["command", "counts/near", "level"]
    assert c.info["command"].shape == (t, 3, 3)
    assert c.info["level"].shape == (t, 3)
    assert c.mocap_pos.shape == (t, 3, 2, 3)
    assert c.mocap_quat.shape == (t, 3, 2, 4)
    # level counts env steps (brax's auto-reset keeps info): +1 a frame
    np.testing.assert_allclose(np.diff(c.info["level"], axis=0), 1.0)
    # the goal turns by TURN a step, except where an episode restarted
    goal = c.mocap_pos[:, :, 0, :2].astype(np.float64)
    turned = np.arctan2(goal[1:, :, 1], goal[1:, :, 0]) - np.arctan2(
      goal[:-1, :, 1], goal[:-1, :, 0]
    )
    turned = (turned + np.pi) % (2 * np.pi) - np.pi
    kept = c.done[1:] == 0
    assert kept.any()
    np.testing.assert_allclose(turned[kept], TURN, atol=1e-4)
  # evals start from reset: the first frame is one step in
  assert (evals[0].info["level"][0] == 1).all()

  # the recording keeps them, bit for bit
  with open_recording(recorder.path) as rec:
    assert rec.stream_info == info
    for source, mine in (("train", train), ("eval", evals)):
      got = list(rec.chunks(source))
      assert len(got) == len(mine)
      for a, b in zip(mine, got):
        assert list(a.info) == list(b.info)
        for k in a.info:
          assert a.info[k].tobytes() == b.info[k].tobytes()
        assert a.mocap_pos.tobytes() == b.mocap_pos.tobytes()
        assert a.mocap_quat.tobytes() == b.mocap_quat.tobytes()


@pytest.mark.slow
def test_a_viewers_info_keys_are_streamed_and_a_bad_one_is_refused():
  env = GoalEnv()
  bad = HeadlessViewer(num_envs=2, info_keys=["level", "speed"])
  with pytest.raises(
    ValueError, match="'speed' is not in the env state's info"
  ):
    ppo.train(environment=env, viewer=bad, **GOAL)
  assert not bad.chunks and bad.stream_info is None
  chosen = HeadlessViewer(num_envs=2, info_keys=["level", "counts"])
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    ppo.train(
      environment=env,
      viewer=chosen,
      **dict(GOAL, num_timesteps=320, num_evals=2),
    )
  assert chosen.stream_info.info_keys == ("level", "counts/near")
  assert all(list(c.info) == ["level", "counts/near"] for c in chosen.chunks)
