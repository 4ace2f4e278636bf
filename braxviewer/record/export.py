"""Export a recording as MP4 (``braxviewer export``): one env followed by
the camera, or the grid of all N envs, rendered offscreen with MuJoCo and
encoded with PyAV (H.264).

Every frame of the chosen chunks is drawn (at most 60 per video second:
higher rates keep every k-th frame), from the recorded compiled model (the
MJB): from ``qpos`` (and mocap poses) by MuJoCo's kinematics, so sites,
tendons and mocap bodies show where the env had them. The live page's
quick clips (:mod:`braxviewer.web.clip`) use the same code with a lower
frame rate cap and a draft look. No JAX.
"""

from __future__ import annotations

import dataclasses
import fractions
import math
import os
import tempfile
from typing import Callable, Iterable, Optional, Tuple, Union

import numpy as np

from braxviewer.core.timeline import ChunkSequence
from braxviewer.record.offscreen import (
  PRESETS,
  GridRenderer,
  configure_gl,
  frame_distance,
  look,
)
from braxviewer.record.reader import Recording
from braxviewer.scene.batched import BatchedScene
from braxviewer.scene.grid import has_terrain, model_extent, robot_extent

MAX_FPS = 60.0
StepRange = Tuple[Optional[int], Optional[int]]


class ExportError(ValueError):
  """Bad export request (env, step range, size) for this recording."""


class ClipCancelled(Exception):
  """The clip was cancelled (``stopped()`` said so); nothing was written."""


@dataclasses.dataclass(frozen=True)
class ExportResult:
  """What was written."""

  path: str
  frames: int
  fps: float
  width: int
  height: int
  chunks: int
  env_steps: Tuple[int, int]


def parse_steps(text: Optional[str]) -> StepRange:
  """``"A:B"``, ``"A:"``, ``":B"`` or ``"A"`` -> (lo, hi) training env steps.

  Raises:
    ExportError: when it is not of that form or A > B.
  """
  if text is None or text.strip() in ("", ":"):
    return None, None
  parts = text.split(":")
  try:
    if len(parts) == 1:
      lo = hi = int(parts[0].replace("_", ""))
    elif len(parts) == 2:
      lo = int(parts[0].replace("_", "")) if parts[0].strip() else None
      hi = int(parts[1].replace("_", "")) if parts[1].strip() else None
    else:
      raise ValueError
  except ValueError:
    raise ExportError(
      f"--steps must look like A:B (training env steps, either side may be"
      f" left out), got {text!r}."
    ) from None
  if lo is not None and hi is not None and lo > hi:
    raise ExportError(f"--steps {text}: the start is after the end.")
  return lo, hi


def select_chunks(
  rec: Recording, source: str, steps: StepRange, env: Optional[int]
) -> np.ndarray:
  """Indices of the chunks to export; checks env and step range.

  Raises:
    ExportError: no chunks, env out of range, or no chunk in ``steps``.
  """
  chunks = rec.chunks(source)
  if not len(chunks):
    damage = (
      f" ({rec.unreadable_bytes} bytes of its segments are unreadable:"
      " corrupt or cut short)"
      if rec.unreadable_bytes
      else ""
    )
    raise ExportError(
      f"the recording at {rec.path} holds no readable {source} chunks{damage}."
    )
  lo, hi = steps
  picked = chunks.in_range(lo, hi)
  first, last = int(chunks.env_steps.min()), int(chunks.env_steps.max())
  if not len(picked):
    raise ExportError(
      f"no {source} chunk was recorded between env steps"
      f" {'start' if lo is None else lo} and {'end' if hi is None else hi};"
      f" the recording covers env steps {first}..{last} ({len(chunks)}"
      " chunks)."
    )
  num_envs = int(chunks.num_envs[picked].min())
  if env is not None and not 0 <= env < num_envs:
    raise ExportError(
      f"env {env} is out of range: the recording streamed {num_envs} envs"
      f" (0..{num_envs - 1})."
    )
  return picked


def _open_encoder(path: str, width: int, height: int, fps: float):
  try:
    import av
  except ImportError:
    raise RuntimeError("video export needs PyAV: pip install av") from None
  container = av.open(path, mode="w", format="mp4")
  rate = fractions.Fraction(fps).limit_denominator(1000)
  stream = container.add_stream("libx264", rate=rate)
  stream.width, stream.height = width, height
  stream.pix_fmt = "yuv420p"
  stream.options = {"crf": "20", "preset": "veryfast"}
  return av, container, stream


def export_video(
  recording: Union[str, os.PathLike, Recording],
  out: Union[str, os.PathLike],
  *,
  env: int = 0,
  grid: bool = False,
  steps: Union[StepRange, str, None] = None,
  source: str = "train",
  camera: Optional[str] = None,
  width: int = 640,
  height: int = 480,
  speed: float = 1.0,
  on_frame: Optional[Callable[[int, int], None]] = None,
  stopped: Optional[Callable[[], bool]] = None,
) -> ExportResult:
  """Render recorded chunks to an MP4 file.

  Args:
    recording: a recording directory or an open :class:`Recording`.
    out: the ``.mp4`` to write (written whole, then moved into place).
    env: the env to show (ignored with ``grid``).
    grid: show all recorded envs on their grid instead of one env.
    steps: training env-step range ``(lo, hi)`` or ``"lo:hi"``: chunks
      recorded in it are exported, in recorded order. None: all.
    source: ``"train"`` or ``"eval"`` chunks.
    camera: ``follow`` (default for one env), ``overview`` (default for
      the grid), ``side``, ``front`` or ``top``.
    width, height: video size (even numbers, >= 16).
    speed: playback speed; 1 is real time (1 / dt frames per second).
    on_frame: called with (frames done, frames in all) after each frame.
    stopped: asked before each frame; True cancels (:class:`ClipCancelled`).

  Raises:
    ExportError: bad env, step range, size or camera for this recording.
    RecordingError: the recording cannot be read.
    RuntimeError: no offscreen OpenGL, or no video encoder.
  """
  if width < 16 or height < 16 or width % 2 or height % 2:
    raise ExportError(
      f"video size must be even and at least 16x16, got {width}x{height}."
    )
  if not speed > 0:
    raise ExportError(f"speed must be > 0, got {speed}.")
  camera = camera or ("overview" if grid else "follow")
  if camera not in PRESETS:
    raise ExportError(
      f"unknown camera {camera!r}; use one of {', '.join(PRESETS)}."
    )
  if isinstance(steps, str) or steps is None:
    steps = parse_steps(steps)
  own = not isinstance(recording, Recording)
  rec = Recording(recording) if own else recording
  try:
    picked = select_chunks(rec, source, steps, None if grid else env)
    return render_clip(
      rec.chunks(source),
      rec.model(),
      picked,
      os.fspath(out),
      env=env,
      grid=grid,
      camera=camera,
      width=width,
      height=height,
      speed=speed,
      on_frame=on_frame,
      stopped=stopped,
      dt=float(rec.stream_info.dt) if rec.stream_info else 0.0,
    )
  finally:
    if own:
      rec.close()


@dataclasses.dataclass(frozen=True)
class FramePlan:
  """Which frames a clip draws: every ``stride``-th of the chunks' frames
  (counted across chunks), ``total`` of them, shown at ``fps``."""

  stride: int
  fps: float
  total: int


def plan_frames(
  num_steps: Iterable[int],
  dt: float,
  speed: float = 1.0,
  max_fps: float = MAX_FPS,
) -> FramePlan:
  """The frames of chunks of ``num_steps`` frames each, ``dt`` seconds
  apart, played at ``speed`` (1: real time) and at most ``max_fps`` frames
  per video second."""
  rate = speed / dt
  stride = max(1, math.ceil(rate / max_fps - 1e-9))
  total = int(math.ceil(sum(int(n) for n in num_steps) / stride))
  return FramePlan(stride, rate / stride, total)


def render_clip(
  chunks: ChunkSequence,
  model,
  picked: np.ndarray,
  out: str,
  *,
  env: int = 0,
  grid: bool = False,
  camera: str = "follow",
  width: int = 640,
  height: int = 480,
  speed: float = 1.0,
  on_frame: Optional[Callable[[int, int], None]] = None,
  dt: float = 0.0,
  max_fps: float = MAX_FPS,
  draft: bool = False,
  stopped: Optional[Callable[[], bool]] = None,
) -> ExportResult:
  """Render chunks ``picked`` (indices) of any timeline (a recording's, or
  the live page's) of ``model`` to an MP4 at ``out``; see
  :func:`export_video` for the rest. ``dt``: seconds per frame when the
  chunks do not say; ``max_fps``: the video's frame rate cap (see
  :func:`plan_frames`); ``draft``: the quick look of
  :class:`~braxviewer.record.offscreen.GridRenderer`.

  Raises:
    ClipCancelled: ``stopped()`` said so (checked before each frame).
  """
  configure_gl()
  num_envs = int(chunks.num_envs[picked].min())
  scene = BatchedScene(model, num_envs)
  first = chunks[int(picked[0])]
  dt = float(first.dt) if first.dt > 0 else (dt or 1 / 30)
  plan = plan_frames(chunks.num_steps[picked], dt, speed, max_fps)
  stride, fps, total = plan.stride, plan.fps, plan.total
  azimuth, elevation = PRESETS[camera]
  # Frame what is drawn, floors left out (stat.extent counts a big floor);
  # on terrain the robot, not the world it roams.
  box = robot_extent(model) if has_terrain(model) else model_extent(model)
  if box is None:
    center = np.asarray(model.stat.center, float)
    radius = float(model.stat.extent)
  else:
    center, radius = box.mean(0), float(np.linalg.norm(box[1] - box[0]) / 2)
  if grid:
    roots = scene.offsets + center
    if scene.layout == "overlay" and model.nbody > 1:  # where they really are
      roots = scene.poses(first).xpos[0, :, 1]
      roots = (
        roots[np.isfinite(roots).all(-1)]
        if np.isfinite(roots).any()
        else center[None]
      )
    target = (roots.min(0) + roots.max(0)) / 2
    spread = float(np.linalg.norm(roots.max(0) - roots.min(0)) / 2)
    distance = frame_distance(radius + spread)
  else:
    target = center.copy()
    distance = frame_distance(radius)
  out_dir = os.path.dirname(os.path.abspath(out)) or "."
  os.makedirs(out_dir, exist_ok=True)
  fd, tmp = tempfile.mkstemp(suffix=".mp4", dir=out_dir)
  os.close(fd)
  done = 0
  smooth = None
  skip = 0  # frames of this chunk before its first drawn one
  try:
    av, container, stream = _open_encoder(tmp, width, height, fps)
    try:
      with GridRenderer(
        model, num_envs if grid else 1, width, height, draft=draft
      ) as renderer:
        for i in picked:
          chunk = chunks[int(i)]
          poses = scene.poses(chunk)
          steps = range(skip, chunk.num_steps, stride)
          skip = (skip - chunk.num_steps) % stride  # counted across chunks
          for t in steps:
            if stopped is not None and stopped():
              raise ClipCancelled("the clip was cancelled")
            if grid:
              xpos, xquat = poses.xpos[t], poses.xquat[t]
            else:
              xpos = poses.xpos[t, env : env + 1] - scene.offsets[env]
              xquat = poses.xquat[t, env : env + 1]
            if camera == "follow" and not grid:
              root = xpos[0, 1] if model.nbody > 1 else target
              smooth = (
                root if smooth is None else smooth + 0.15 * (root - smooth)
              )
              look(renderer.camera, smooth, distance, azimuth, elevation)
            else:
              look(renderer.camera, target, distance, azimuth, elevation)
            if grid:
              envs, offsets = slice(0, num_envs), scene.offsets
            else:
              envs, offsets = slice(env, env + 1), np.zeros((1, 3))
            image = _render_frame(
              renderer, chunk, t, envs, offsets, xpos, xquat
            )
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            for packet in stream.encode(frame):
              container.mux(packet)
            done += 1
            if on_frame is not None:
              on_frame(done, total)
      for packet in stream.encode(None):
        container.mux(packet)
    finally:
      container.close()
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp made it private
    os.replace(tmp, out)
  except BaseException:
    if os.path.exists(tmp):
      os.unlink(tmp)
    raise
  steps_sel = chunks.env_steps[picked]
  return ExportResult(
    out,
    done,
    fps,
    width,
    height,
    len(picked),
    (int(steps_sel.min()), int(steps_sel.max())),
  )


def _render_frame(
  renderer: GridRenderer,
  chunk,
  t: int,
  envs: slice,
  offsets: np.ndarray,
  xpos: np.ndarray,
  xquat: np.ndarray,
) -> np.ndarray:
  """Frame ``t`` of ``envs``: from qpos (and mocap poses) where the chunk
  has them, else from the body poses ``xpos, xquat``."""
  if chunk.qpos is None:
    return renderer.render(xpos, xquat)

  def part(name: str) -> Optional[np.ndarray]:
    value = getattr(chunk, name, None)
    return None if value is None else np.asarray(value)[t, envs]

  return renderer.render_qpos(
    np.asarray(chunk.qpos)[t, envs],
    offsets,
    part("mocap_pos"),
    part("mocap_quat"),
  )
