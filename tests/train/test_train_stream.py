"""What leaves the device: one ordered stream of the first N envs."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
HERE = pathlib.Path(__file__).parents[1]  # the tests' helpers


def _stream(backend: str, devices: int) -> dict:
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env["PYTHONPATH"] = f"{HERE}{os.pathsep}{env.get('PYTHONPATH', '')}"
  proc = subprocess.run(
    [sys.executable, str(HERE / "stream_check.py"), backend],
    capture_output=True,
    text=True,
    env=env,
    timeout=900,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  return json.loads(proc.stdout.strip().splitlines()[-1])


def test_two_devices_give_one_ordered_stream_of_the_first_envs_with_exact_poses():
  out = _stream("mjx", devices=2)
  assert out["devices"] == 2
  # 2 epochs x 2 training steps, one chunk each (its 4 unrolls continue
  # each other); one stream, not one per device.
  assert out["train_seq"] == list(range(4))
  assert out["train_steps"] == [160, 320, 480, 640]
  assert out["eval_steps"] == [0, 320, 640]
  assert out["shapes"] == [[20, 4, out["nq"]]]  # (T, N, nq)
  assert out["eval_shapes"] == [[20, 4, out["nq"]]]
  assert out["reward_shape"] == [20, 4]
  assert out["stream_envs"] == 4 and out["dt"] > 0
  assert out["ended"] and out["finite"] and out["distinct_envs"]
  assert out["pose_error"] <= 1e-5
