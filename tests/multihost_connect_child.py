"""One of 2 processes of a ``jax.distributed`` job on CPU that connect to a
viewer server under one run name without being given a run key (run by
test_multihost.py): ``multihost_connect_child.py PROCESS COORD_PORT
SERVER_PORT``. Prints one JSON object on the last line: the run's name on
the server."""

from __future__ import annotations

import json
import sys
import time

import jax

jax.distributed.initialize(
  coordinator_address=f"127.0.0.1:{sys.argv[2]}",
  num_processes=2,
  process_id=int(sys.argv[1]),
  initialization_timeout=120,
)

import braxviewer  # noqa: E402
from braxviewer.testing.factories import stream_info  # noqa: E402
from braxviewer.testing.synthetic import PUCK_XML  # noqa: E402

viewer = braxviewer.connect(f"127.0.0.1:{sys.argv[3]}", run="job")
viewer.init(PUCK_XML)
assert viewer.wait_connected(60), "no server"
viewer.on_stream_start(
  stream_info(2, num_train_envs=4, envs_per_device=2, process_count=2)
)
time.sleep(3.0)  # both processes connected at once
print(json.dumps({"run": viewer.run_name, "process": jax.process_index()}))
viewer.close()
