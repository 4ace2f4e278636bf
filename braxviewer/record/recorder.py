"""``Recorder``: a :class:`~braxviewer.core.protocol.TrainingViewer` that writes
what is streamed to disk.

The trainer's threads only put chunks on a bounded queue; one background
thread writes them (:class:`~braxviewer.record.writer.SegmentWriter`). In
live mode a full queue drops the chunk and counts it, so recording never
slows training; in sync mode the trainer waits for room, so nothing is lost.
Any error while recording turns the recorder off with one warning; it never
raises into training. No JAX.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import queue
import shutil
import threading
import time
from typing import Any, Mapping, Optional
import warnings
import weakref

import numpy as np

from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo, check_num_envs
from braxviewer.record import format as fmt
from braxviewer.record import model_store
from braxviewer.record.writer import SegmentWriter


class RecordingWarning(RuntimeWarning):
  """Emitted once when recording failed and was switched off."""


_STOP = object()
_LIVE_RECORDERS: "weakref.WeakSet[Recorder]" = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
  for rec in list(_LIVE_RECORDERS):
    try:
      rec.close()
    except Exception:
      pass


def _write_json_atomic(path: str, data: Mapping[str, Any]) -> None:
  tmp = path + ".tmp"
  with open(tmp, "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1, sort_keys=True)
    f.flush()
    os.fsync(f.fileno())
  os.replace(tmp, path)


def _is_recording(path: str) -> bool:
  return os.path.isfile(os.path.join(path, fmt.HEADER_FILE))


@dataclasses.dataclass
class RecorderStats:
  """What the recorder wrote and dropped so far."""

  chunks_written: int = 0
  chunks_dropped: int = 0
  progress_written: int = 0
  bytes_written: int = 0
  env_steps_written: int = 0  # frames x envs of written chunks
  chunks_thinned: int = 0
  queue_depth: int = 0
  failed: Optional[str] = None


class Recorder:
  """Records a training stream to ``path`` (a directory).

  Use it as the viewer (``ppo.train(..., viewer=Recorder("runs/x",
  env=env))``), beside one (:class:`braxviewer.core.fanout.FanOut`), or
  through ``WebViewerBatched(record_dir=...)``.

  Args:
    path: directory to create (or empty) for the recording.
    env: what the stream shows (brax env, Playground env, MjModel, MJCF text
      or path), kept for replay; or call :meth:`init` later.
    num_envs: envs to stream when the recorder is the only viewer.
    mode: ``"live"`` (never wait; drops counted) or ``"sync"`` (training
      waits for the disk; nothing dropped). ``"off"`` records nothing.
    max_bytes: bound on the recording's segments; the oldest training
      chunks are thinned first. None: unbounded.
    queue_chunks: chunks waiting to be written before live mode drops.
    fsync_s: fsync at most this often (seconds).
    segment_bytes: start a new segment file past this size (None: from
      ``max_bytes``, at most 64 MiB).
    overwrite: replace an existing recording at ``path`` (else refuse).

  Raises:
    FileExistsError: ``path`` holds a recording and ``overwrite`` is False,
      or is a non-empty directory that is no recording.
  """

  def __init__(
    self,
    path: "str | os.PathLike",
    env: Any = None,
    *,
    num_envs: Optional[int] = None,
    mode: "Mode | str" = Mode.LIVE,
    max_bytes: Optional[int] = None,
    queue_chunks: int = 64,
    fsync_s: float = 5.0,
    segment_bytes: Optional[int] = None,
    overwrite: bool = False,
  ):
    self.path = os.fspath(path)
    if max_bytes is not None and max_bytes <= 0:
      raise ValueError(f"max_bytes must be positive or None, got {max_bytes}.")
    self._prepare_dir(overwrite)
    self._num_envs = check_num_envs(num_envs)
    self._mode = Mode.parse(mode)
    if segment_bytes is None:
      segment_bytes = (
        64 << 20
        if max_bytes is None
        else int(min(64 << 20, max(64 << 10, max_bytes // 16)))
      )
    self._writer = SegmentWriter(
      self.path,
      segment_bytes=segment_bytes,
      max_bytes=max_bytes,
      fsync_s=fsync_s,
    )
    self._header = {
      "format": fmt.FORMAT_NAME,
      "version": fmt.FORMAT_VERSION,
      "created": time.time(),
      "stream_info": None,
      "model": None,
      "runs": 0,
      "max_bytes": max_bytes,
    }
    self._write_header()
    self._queue: "queue.Queue[Any]" = queue.Queue(maxsize=max(1, queue_chunks))
    self.stats = RecorderStats()
    self._lock = threading.Lock()
    self._failed: Optional[str] = None
    self._closed = False
    self._thread = threading.Thread(
      target=self._run, name="braxviewer-record", daemon=True
    )
    self._thread.start()
    _LIVE_RECORDERS.add(self)
    if env is not None:
      self.init(env)

  # -- set-up ------------------------------------------------------------------

  def _prepare_dir(self, overwrite: bool) -> None:
    path = self.path
    if os.path.exists(path) and not os.path.isdir(path):
      raise FileExistsError(f"cannot record to {path}: it is a file.")
    if os.path.isdir(path) and os.listdir(path):
      if not _is_recording(path):
        raise FileExistsError(
          f"cannot record to {path}: the directory is not empty and holds no"
          " braxviewer recording. Pick a new path."
        )
      if not overwrite:
        raise FileExistsError(
          f"{path} already holds a recording. Pick a new path, or pass"
          " overwrite=True to replace it."
        )
      shutil.rmtree(path)
    os.makedirs(os.path.join(path, fmt.MODEL_DIR), exist_ok=True)

  def _write_header(self) -> None:
    _write_json_atomic(os.path.join(self.path, fmt.HEADER_FILE), self._header)

  def init(
    self, env: Any, assets: Optional[Mapping[str, Any]] = None
  ) -> "Recorder":
    """Keep the model of ``env`` (a brax or Playground env, MjModel, MJCF
    text or path) for replay and export.

    Raises:
      TypeError: when ``env`` holds no MuJoCo model.
    """
    files = model_store.capture(env, assets)
    try:
      entry = model_store.write(os.path.join(self.path, fmt.MODEL_DIR), files)
      with self._lock:
        self._header["model"] = entry
        self._write_header()
    except OSError as err:  # a disk error never reaches training
      self._fail(err)
    return self

  # -- TrainingViewer ------------------------------------------------------

  def requested_envs(self) -> Optional[int]:
    return self._num_envs

  @property
  def mode(self) -> Mode:
    return Mode.OFF if (self._failed or self._closed) else self._mode

  def set_mode(self, mode: "Mode | str") -> None:
    self._mode = Mode.parse(mode)

  def on_trainer_mode(self, mode: Mode) -> None:
    del mode

  def on_stream_start(self, info: StreamInfo) -> None:
    self._put(("start", dataclasses.asdict(info)), block=True)

  def on_chunk(self, chunk: FrameChunk) -> None:
    if not self._put(("chunk", chunk), block=self._mode == Mode.SYNC):
      with self._lock:
        self.stats.chunks_dropped += 1

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    self._put(
      ("progress", (int(env_steps), dict(metrics), time.time())), block=False
    )

  def on_stream_end(self) -> None:
    self._put(("end", None), block=True)
    self.flush()

  # -- control ---------------------------------------------------------------

  @property
  def failed(self) -> Optional[str]:
    """Why recording stopped, or None."""
    return self._failed

  def flush(self, timeout: float = 30.0) -> bool:
    """Wait until everything queued was written and synced."""
    if self._failed or self._closed:
      return False
    done = threading.Event()
    if not self._put(("flush", done), block=True, timeout=timeout):
      return False
    return done.wait(timeout)

  def close(self) -> None:
    """Write what is queued, sync and stop the writer thread."""
    if self._closed:
      return
    self._closed = True
    try:
      self._queue.put(_STOP, timeout=30.0)
    except queue.Full:
      pass
    self._thread.join(timeout=60.0)
    _LIVE_RECORDERS.discard(self)

  def __enter__(self) -> "Recorder":
    return self

  def __exit__(self, *exc) -> None:
    self.close()

  # -- internals -------------------------------------------------------------

  def _put(self, item, block: bool, timeout: float = 30.0) -> bool:
    if self._failed or self._closed:
      return False
    try:
      self._queue.put(item, block=block, timeout=timeout if block else None)
      return True
    except queue.Full:
      return False
    except Exception as err:
      self._fail(err)
      return False

  def _fail(self, err: BaseException) -> None:
    if self._failed:
      return
    self._failed = f"{type(err).__name__}: {err}"
    with self._lock:
      self.stats.failed = self._failed
    warnings.warn(
      f"braxviewer: recording to {self.path} failed ({self._failed});"
      " recording is off for the rest of this run, training goes on. What"
      " was written so far stays readable.",
      RecordingWarning,
      stacklevel=2,
    )

  def _run(self) -> None:
    while True:
      item = self._queue.get()
      if item is _STOP:
        break
      if self._failed:
        if item[0] == "flush":
          item[1].set()
        continue
      try:
        self._handle(*item)
      except Exception as err:
        self._fail(err)
    try:
      self._writer.close()
    except Exception as err:
      self._fail(err)

  def _handle(self, what: str, value: Any) -> None:
    w = self._writer
    if what == "chunk":
      chunk: FrameChunk = value
      meta, arrays = fmt.chunk_record(chunk)
      n = w.append(
        fmt.KIND_CHUNK,
        meta,
        arrays,
        source=fmt.SOURCE_CODES[chunk.source],
        seq=chunk.seq,
        env_steps=chunk.env_steps,
        num_steps=chunk.num_steps,
        num_envs=chunk.num_envs,
        wall_time=chunk.wall_time,
      )
      with self._lock:
        self.stats.chunks_written += 1
        self.stats.bytes_written = w.bytes_written
        self.stats.env_steps_written += chunk.num_steps * chunk.num_envs
        self.stats.chunks_thinned = w.chunks_thinned
        self.stats.queue_depth = self._queue.qsize()
      del n
    elif what == "progress":
      steps, metrics, wall = value
      clean = {}
      for k, v in metrics.items():
        try:
          f = float(v)
        except (TypeError, ValueError):
          continue
        if np.isfinite(f):
          clean[str(k)] = f
      w.append(
        fmt.KIND_PROGRESS,
        {"env_steps": steps, "metrics": clean, "wall_time": wall},
        env_steps=steps,
        wall_time=wall,
      )
      with self._lock:
        self.stats.progress_written += 1
    elif what == "start":
      w.append(
        fmt.KIND_START,
        {"stream_info": value, "wall_time": time.time()},
        wall_time=time.time(),
      )
      with self._lock:
        self._header["stream_info"] = value
        self._header["runs"] += 1
        self._write_header()
    elif what == "end":
      w.append(fmt.KIND_END, {"wall_time": time.time()}, wall_time=time.time())
      w.flush()
    elif what == "flush":
      w.flush()
      value.set()
