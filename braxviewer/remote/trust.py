"""The viewer server's trust boundary: what a training connection may make
the server do.

Everything a run sends is data. Before the server uses a message, it goes
through :func:`check` here, in one place: names are bounded text, never
paths (asset names are plain file names, written only inside the run's
recording folder); every number is bounded (envs, frames, widths, indices,
counts), every array's shape is checked against the run's model and
stream; and a message that would cost the server more than its budget
(:data:`MAX_DRAWN_BODIES` bodies to draw) is refused, not worked through.
A refused message raises :class:`Refused`: the server drops it, warns once
per client and kind, tells the run why, and the run's own stream goes on.

Who may send to a run at all is decided before this (the server's token on
the training socket, the run's key in :class:`~braxviewer.remote.wire.Hello`;
see :mod:`braxviewer.remote.runs`). No JAX, no web.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import re
from typing import Any, Mapping, Optional, Tuple

import mujoco
import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo
from braxviewer.record.model_store import ModelFiles, check_asset_name, model_of
from braxviewer.remote import wire

MAX_NAME = 80  # a run's name
MAX_HOST = 64  # the host name a run reports
MAX_KEY = 128  # a run key
MAX_PID = 1 << 31
MAX_ENVS = 1024  # envs a run may stream
MAX_DRAWN_BODIES = 8192  # envs x bodies the page builds (~4 s of one core)
MAX_MODEL_BODIES = MAX_DRAWN_BODIES
MAX_MODEL_GEOMS = 65_536
MAX_ASSETS = 4096
MAX_FRAMES = 100_000  # frames in one chunk
MAX_TERMS = 64  # reward terms, state.info entries
MAX_INFO_WIDTH = 64
MAX_METRICS = 512  # values in one progress report
MAX_TEXT = 200  # a metric's or a term's name, a phase
MAX_STEPS = 1 << 62  # env steps, sequence numbers
MAX_PROCESSES = 4096
MAX_DEVICES = 64
REPORT_WINDOW = 10_000  # a report index may run this far ahead
_NUMBER_KINDS = "fiub"  # float, int, unsigned, bool arrays
_SOURCES = ("train", "eval")
_PLAIN = re.compile(r"[^\x20-\x7e]")


class Refused(ValueError):
  """A message the server will not apply.

  Attributes:
    what: the message's kind (``"start"``, ``"chunk"``, ...).
    why: one sentence for the warning and for the run.
  """

  def __init__(self, what: str, why: str):
    super().__init__(f"{what}: {why}")
    self.what = what
    self.why = why


def _int(what: str, name: str, value: Any, low: int, high: int) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    raise Refused(what, f"{name} must be an int, got {type(value).__name__}.")
  if not low <= int(value) <= high:
    raise Refused(what, f"{name} {value} is outside {low:,}..{high:,}.")
  return int(value)


def _text(what: str, name: str, value: Any, limit: int) -> str:
  if not isinstance(value, str):
    raise Refused(what, f"{name} must be text, got {type(value).__name__}.")
  if len(value) > limit:
    raise Refused(
      what, f"{name} is {len(value):,} characters (at most {limit})."
    )
  return value


def plain(text: str, limit: int = MAX_TEXT) -> str:
  """``text`` as printable ASCII, at most ``limit`` characters (for the page
  and for warnings: no control characters, no markup surprises)."""
  return _PLAIN.sub("?", str(text))[:limit]


# -- messages ------------------------------------------------------------------


def check_hello(hello: wire.Hello) -> wire.Hello:
  """A hello with bounded text: the run's name, host, key and pid."""
  what = "hello"
  name = _text(what, "the run's name", hello.run, 10 * MAX_NAME).strip()
  host = _text(what, "the host name", hello.host, 10 * MAX_HOST)
  key = _text(what, "the run key", hello.key, MAX_KEY)
  pid = _int(what, "the pid", hello.pid, 0, MAX_PID)
  return dataclasses.replace(
    hello,
    run=plain(name, MAX_NAME).strip() or "run",
    named=bool(hello.named),
    host=plain(host, MAX_HOST),
    key=key,
    pid=pid,
  )


def check_model(message: wire.Model) -> Tuple[ModelFiles, mujoco.MjModel]:
  """The model files (asset names checked) and the compiled model, within
  the drawing budget."""
  what = "model"
  if not isinstance(message.mjb, (bytes, bytearray)) or not message.mjb:
    raise Refused(what, "no model bytes.")
  if message.xml is not None and not isinstance(message.xml, str):
    raise Refused(what, "the XML must be text.")
  if not isinstance(message.assets, Mapping):
    raise Refused(what, "the assets must be a name -> bytes map.")
  if len(message.assets) > MAX_ASSETS:
    raise Refused(
      what, f"{len(message.assets):,} asset files (at most {MAX_ASSETS:,})."
    )
  assets = {}
  for name, data in message.assets.items():
    try:
      name = check_asset_name(name)
    except ValueError as err:
      raise Refused(what, str(err)) from None
    if not isinstance(data, (bytes, bytearray)):
      raise Refused(what, f"asset {name!r} is not bytes.")
    assets[name] = bytes(data)
  note = plain(_text(what, "the note", message.note, 10 * MAX_TEXT), 400)
  files = ModelFiles(bytes(message.mjb), message.xml, assets, note)
  try:
    model = model_of(files)
  except ValueError as err:
    raise Refused(what, str(err)) from None
  if model.nbody > MAX_MODEL_BODIES or model.ngeom > MAX_MODEL_GEOMS:
    raise Refused(
      what,
      f"the model has {model.nbody:,} bodies and {model.ngeom:,} geoms; this"
      f" server draws at most {MAX_MODEL_BODIES:,} bodies and"
      f" {MAX_MODEL_GEOMS:,} geoms.",
    )
  return files, model


def check_start(
  start: wire.Start, model: Optional[mujoco.MjModel]
) -> wire.Start:
  """A stream's start that fits the run's model and the drawing budget."""
  what = "start"
  if model is None:
    raise Refused(what, "no model yet: the run must send its model first.")
  if not isinstance(start.info, StreamInfo):
    raise Refused(what, "no stream info.")
  info = start.info
  process = _int(what, "process", start.process, 0, MAX_PROCESSES - 1)
  processes = _int(what, "processes", start.processes, 1, MAX_PROCESSES)
  if process >= processes:
    raise Refused(what, f"process {process} of {processes} processes.")
  n = _int(what, "num_envs", info.num_envs, 1, MAX_ENVS)
  if n * model.nbody > MAX_DRAWN_BODIES:
    raise Refused(
      what,
      f"{n:,} envs x {model.nbody} bodies is more than this server draws"
      f" ({MAX_DRAWN_BODIES:,} bodies); stream at most"
      f" {max(1, MAX_DRAWN_BODIES // model.nbody)} envs"
      " (braxviewer.connect(..., num_envs=...)).",
    )
  _int(what, "num_train_envs", info.num_train_envs, n, 1 << 40)
  _int(what, "envs_per_device", info.envs_per_device, 1, 1 << 40)
  _int(what, "chunk_length", info.chunk_length, 1, MAX_FRAMES)
  _int(what, "process_count", info.process_count, 1, MAX_PROCESSES)
  _int(what, "local_devices", info.local_devices, 1, MAX_DEVICES)
  _positive(what, "dt", info.dt)
  if info.kind == "qpos":
    nq = _int(what, "nq", info.nq, 0, 1 << 20)
    if nq != model.nq:
      raise Refused(
        what, f"nq {nq} does not match the run's model ({model.nq})."
      )
  elif info.kind == "links":
    links = _int(what, "num_links", info.num_links, 0, 1 << 20)
    if links != model.nbody - 1:
      raise Refused(
        what,
        f"{links} links do not match the run's model ({model.nbody - 1}).",
      )
  else:
    raise Refused(what, f"kind {plain(str(info.kind), 20)!r} (qpos or links).")
  _int(what, "nmocap", info.nmocap, 0, model.nmocap)
  _names(what, "reward terms", info.reward_terms)
  _names(what, "info keys", info.info_keys)
  if len(info.info_shapes) != len(info.info_keys) or not all(
    len(s) == 0 or (len(s) == 1 and 1 <= _as_int(s[0]) <= MAX_INFO_WIDTH)
    for s in info.info_shapes
  ):
    raise Refused(
      what,
      f"info shapes must be () or (k,) with k <= {MAX_INFO_WIDTH}, one per key.",
    )
  if info.backend is not None:
    _text(what, "backend", info.backend, MAX_TEXT)
  return dataclasses.replace(start, process=process, processes=processes)


def _as_int(value: Any) -> int:
  if isinstance(value, bool) or not isinstance(value, numbers.Integral):
    return -1
  return int(value)


def _positive(what: str, name: str, value: Any) -> float:
  if isinstance(value, bool) or not isinstance(value, numbers.Real):
    raise Refused(what, f"{name} must be a number.")
  if not (math.isfinite(float(value)) and 0 < float(value) <= 1e4):
    raise Refused(what, f"{name} {value} is not in (0, 1e4].")
  return float(value)


def _names(what: str, name: str, values: Any) -> None:
  if not isinstance(values, tuple) or len(values) > MAX_TERMS:
    raise Refused(what, f"at most {MAX_TERMS} {name}.")
  for value in values:
    _text(what, f"one of the {name}", value, MAX_TEXT)


def check_chunk(chunk: FrameChunk, info: Optional[StreamInfo]) -> FrameChunk:
  """A chunk of the run's stream: its shapes and numbers checked against
  the stream's info (which matched the run's model)."""
  what = "chunk"
  if info is None:
    raise Refused(what, "no stream started: the run must send its start first.")
  if chunk.source not in _SOURCES:
    raise Refused(what, "source must be train or eval.")
  _int(what, "seq", chunk.seq, 0, MAX_STEPS)
  _int(what, "env_steps", chunk.env_steps, 0, MAX_STEPS)
  _positive(what, "dt", chunk.dt)
  t, n = chunk.reward.shape
  _int(what, "frames", t, 1, MAX_FRAMES)
  if n != info.num_envs:
    raise Refused(what, f"{n} envs; the stream has {info.num_envs}.")
  if chunk.kind != info.kind:
    raise Refused(what, f"{chunk.kind} poses; the stream sends {info.kind}.")
  arrays = {"reward": chunk.reward, "done": chunk.done}
  arrays["truncation"] = chunk.truncation
  if chunk.qpos is not None:
    _shape(what, "qpos", chunk.qpos, (t, n, info.nq))
    arrays["qpos"] = chunk.qpos
  else:
    links = int(info.num_links or 0)
    _shape(what, "link_pos", chunk.link_pos, (t, n, links, 3))
    _shape(what, "link_rot", chunk.link_rot, (t, n, links, 4))
  _shape(what, "done", chunk.done, (t, n))
  _shape(what, "truncation", chunk.truncation, (t, n))
  if chunk.mocap_pos is not None:
    m = chunk.nmocap
    if m != info.nmocap:
      raise Refused(what, f"{m} mocap bodies; the stream has {info.nmocap}.")
  if len(chunk.metrics) > MAX_TERMS:
    raise Refused(
      what, f"{len(chunk.metrics)} reward terms (at most {MAX_TERMS})."
    )
  for name, value in chunk.metrics.items():
    _text(what, "a reward term's name", name, MAX_TEXT)
    _shape(what, f"term {plain(name, 40)!r}", value, (t, n))
    arrays[name] = value
  shapes = dict(zip(info.info_keys, info.info_shapes))
  for name, value in chunk.info.items():
    if name not in shapes:
      raise Refused(what, f"info {plain(name, 40)!r} is not in the stream.")
    _shape(
      what, f"info {plain(name, 40)!r}", value, (t, n) + tuple(shapes[name])
    )
  for name, value in arrays.items():
    if np.asarray(value).dtype.kind not in _NUMBER_KINDS:
      raise Refused(what, f"{plain(name, 40)!r} is not a real number array.")
  return chunk


def _shape(what: str, name: str, value: Any, want: Tuple[Any, ...]) -> None:
  shape = tuple(np.shape(value)) if value is not None else None
  if shape != tuple(want):
    raise Refused(
      what, f"{name} has shape {shape}; the stream needs {tuple(want)}."
    )


def check_progress(progress: wire.Progress, reports: int) -> wire.Progress:
  """A progress report with bounded numbers; its index within
  :data:`REPORT_WINDOW` of the reports kept (``reports``)."""
  what = "progress"
  steps = _int(what, "env_steps", progress.env_steps, 0, MAX_STEPS)
  # a new server hears a run's recent reports first: any index starts it
  high = MAX_STEPS if reports <= 0 else reports + REPORT_WINDOW
  index = _int(what, "index", progress.index, -1, high)
  if len(progress.metrics) > MAX_METRICS:
    raise Refused(
      what, f"{len(progress.metrics):,} values (at most {MAX_METRICS})."
    )
  for name in progress.metrics:
    _text(what, "a metric's name", name, MAX_TEXT)
  return dataclasses.replace(progress, env_steps=steps, index=index)


def check_phase(phase: wire.Phase) -> wire.Phase:
  return wire.Phase(plain(_text("phase", "the phase", phase.name, MAX_TEXT)))


def check_trainer_mode(message: wire.TrainerMode) -> Mode:
  try:
    return Mode.parse(_text("trainer mode", "the mode", message.mode, 16))
  except ValueError as err:
    raise Refused("trainer mode", str(err)) from None
