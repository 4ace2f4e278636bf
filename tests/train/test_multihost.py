"""A jax.distributed training (2 processes of 2 CPU devices on this
machine) streams from the chosen process and device, switched at run time
without recompiling; the other process never calls back."""

import json
import os
import pathlib
import socket
import subprocess
import sys
import time
from typing import List, Sequence

import pytest

pytestmark = pytest.mark.slow
HERE = pathlib.Path(__file__).parents[1]  # the tests' helpers
TIMEOUT_S = 900  # a hung pair is killed (a dead peer can hang the other)


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _run_pair(
  tmp_path: pathlib.Path,
  script: str = "multihost_child.py",
  extra: Sequence[str] = (),
  timeout_s: float = TIMEOUT_S,
) -> List[dict]:
  """Both children's JSON; if one fails or the pair hangs, both are
  killed and the test fails with their output."""
  env = dict(os.environ)
  env["XLA_FLAGS"] = "--xla_force_host_platform_device_count=2"
  env["PYTHONPATH"] = f"{HERE}{os.pathsep}{env.get('PYTHONPATH', '')}"
  port = str(_free_port())
  procs, logs = [], []
  try:
    for i in range(2):
      out = open(tmp_path / f"child{i}.out", "w")
      err = open(tmp_path / f"child{i}.err", "w")
      logs += [out, err]
      procs.append(
        subprocess.Popen(
          [sys.executable, str(HERE / script), str(i), port, *extra],
          stdout=out,
          stderr=err,
          env=env,
        )
      )
    deadline = time.monotonic() + timeout_s
    while any(p.poll() is None for p in procs):
      failed = any(p.poll() not in (None, 0) for p in procs)
      if failed or time.monotonic() > deadline:
        break
      time.sleep(0.5)
  finally:
    for p in procs:
      if p.poll() is None:
        p.kill()
        p.wait()
    for f in logs:
      f.close()
  codes = [p.returncode for p in procs]
  if codes != [0, 0]:
    tails = "\n".join(
      f"--- child {i} (exit {c}):\n"
      + (tmp_path / f"child{i}.err").read_text()[-2000:]
      for i, c in enumerate(codes)
    )
    pytest.fail(f"children failed or hung:\n{tails}")
  return [
    json.loads((tmp_path / f"child{i}.out").read_text().splitlines()[-1])
    for i in range(2)
  ]


def test_two_processes_stream_from_the_chosen_process_and_device_and_switch_without_recompiling(
  tmp_path,
):
  p0, p1 = _run_pair(tmp_path)
  assert [p0["process"], p1["process"]] == [0, 1]
  for p in (p0, p1):
    assert p["processes"] == 2 and p["local_devices"] == 2
    assert p["info_layout"] == [2, 2]
    # every process is told the same sources, at the same steps
    assert p["sources_told"] == [[0, 0], [1, 1], [0, 1]]
    assert p["shapes"] == [[20, 2, 2]] and p["ended"]
    # the switches compiled nothing
    assert p["compiles_at"]["480"] == p["compiles_at"]["960"], p
  # brax's layout: pmap axis index = process * local devices + local device
  assert p0["axes_recorded"] == [0, 1] and p1["axes_recorded"] == [2, 3]
  # (0, 0) for steps 1-3, (1, 1) for steps 4-5, (0, 1) for step 6: each
  # process's viewer gets its chunks in order, each of the chosen device.
  assert p0["seq"] == [0, 1, 2, 3]
  assert p0["env_steps"] == [160, 320, 480, 960]
  assert p0["whose"] == [[0], [0], [0], [1]]
  assert p1["seq"] == [0, 1]
  assert p1["env_steps"] == [640, 800]
  assert p1["whose"] == [[3], [3]]
  # Evals run on process 0: streamed while process 0 is chosen.
  assert p0["eval_steps"] == [0, 320, 960] and p1["eval_steps"] == []
  # Same params in both processes, and as without a viewer.
  assert p0["params"] == p1["params"]
  assert p0["params"] == p0["params_without_viewer"]
  assert p1["params"] == p1["params_without_viewer"]


def test_processes_of_one_job_join_one_run_on_a_viewer_server(tmp_path):
  """Every process calls connect with the same run name and no key: they
  agree on the run's key through JAX's coordinator, so they form one run
  (a stranger with that name would not: see test_remote_trust.py)."""
  from braxviewer.remote.server import ViewerServer

  server = ViewerServer(port=0).run()
  try:
    results = _run_pair(
      tmp_path,
      script="multihost_connect_child.py",
      extra=[str(server.port)],
      timeout_s=300,
    )
    run = server.runs.get("job")
    assert run is not None and run.processes == 2
  finally:
    server.close()
  assert [r["run"] for r in results] == ["job", "job"]
  assert sorted(server.stats()["runs"]) == ["job"]
