"""Streaming from a chosen device of a pmapped training (2 forced CPU
devices in one process), switched at run time without recompiling."""

import json
import os
import pathlib
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow
HERE = pathlib.Path(__file__).parents[1]  # the tests' helpers


def test_chunks_come_from_the_chosen_device_and_follow_switches_without_recompiling():
  env = dict(os.environ)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  env["PYTHONPATH"] = f"{HERE}{os.pathsep}{env.get('PYTHONPATH', '')}"
  proc = subprocess.run(
    [sys.executable, str(HERE / "multihost_child.py"), "local"],
    capture_output=True,
    text=True,
    env=env,
    timeout=900,
  )
  assert proc.returncode == 0, proc.stderr[-3000:]
  out = json.loads(proc.stdout.strip().splitlines()[-1])
  assert out["local_devices"] == 2 and out["axes_recorded"] == [0, 1]
  assert out["info_layout"] == [1, 2]
  # Device 1, then device 0 after the switch at step 3, then device 1 after
  # the one at step 5: one ordered stream, each chunk entirely the envs that
  # device stepped (and no frame of the other device's).
  assert out["seq"] == list(range(6))
  assert out["env_steps"] == [160, 320, 480, 640, 800, 960]
  assert out["whose"] == [[1], [1], [1], [0], [0], [1]]
  assert out["shapes"] == [[20, 2, 2]]
  assert out["sources_told"] == [[0, 1], [0, 0], [0, 1]]
  # Eval rollouts (not pmapped) stream whatever the device.
  assert out["eval_steps"] == [0, 320, 640, 960]
  # Nothing compiled from before the first switch to the end.
  compiles = out["compiles_at"]
  assert compiles["480"] == compiles["960"], compiles
  assert out["ended"]
