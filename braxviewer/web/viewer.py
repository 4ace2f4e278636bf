"""The web viewer: a :class:`~braxviewer.protocol.TrainingViewer` in the browser.

:class:`WebViewerBase` ties the pieces together: the server (``server``), the
pacing of streamed chunks (``pacing``), the batched MuJoCo scene
(``braxviewer.scene``) drawn by ``render``, and the panels (``panels``). One
viewer thread plays frames; the trainer's threads only hand chunks over (and,
in sync mode, wait). Any fault of the page or the server turns the viewer
off with one warning; training goes on. No JAX here.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
import warnings
from typing import TYPE_CHECKING, Any, Deque, Mapping, Optional, Sequence, Tuple

import mujoco
import numpy as np

from braxviewer.frames import FrameChunk
from braxviewer.protocol import Mode, StreamInfo
from braxviewer.web import camera as camera_presets
from braxviewer.web.meters import Average, RateMeter
from braxviewer.web.model_source import resolve_model
from braxviewer.web.pacing import Entry, Player
from braxviewer.web.errors import ViewerWarning
from braxviewer.web.traces import EnvTraces
from braxviewer.web import tiled

if TYPE_CHECKING:  # viser is imported only once a viewer runs
  from braxviewer.web.panels import Panels
  from braxviewer.web.render import SceneView
  from braxviewer.web.server import WebServer

_PANEL_PERIOD = 0.25  # seconds between status/plot refreshes
_MAX_CONSECUTIVE_ERRORS = 20
_CHART_REBUILD_DELAY = 1.5  # seconds after a page connects


class _StepRate:
  """Training env steps per second, from (time, env_steps) samples."""

  def __init__(self, window: float = 20.0):
    self._window = window
    self._samples: Deque[Tuple[float, int]] = collections.deque()
    self._lock = threading.Lock()
    self.latest = 0

  def add(self, env_steps: int) -> None:
    now = time.monotonic()
    with self._lock:
      if env_steps < self.latest:  # a new run started
        self._samples.clear()
      self.latest = int(env_steps)
      self._samples.append((now, int(env_steps)))
      while len(self._samples) > 2 and self._samples[0][0] < now - self._window:
        self._samples.popleft()

  def rate(self) -> float:
    with self._lock:
      if len(self._samples) < 2:
        return 0.0
      (t0, s0), (t1, s1) = self._samples[0], self._samples[-1]
      return (s1 - s0) / (t1 - t0) if t1 > t0 else 0.0


def fit_envs(chunk: FrameChunk, num_envs: int) -> FrameChunk:
  """``chunk`` with exactly ``num_envs`` envs: extra envs cut, missing ones
  NaN (drawn at their last pose)."""
  def fit(a):
    if a is None:
      return None
    a = np.asarray(a, dtype=np.float64)
    out = np.full(a.shape[:1] + (num_envs,) + a.shape[2:], np.nan)
    k = min(num_envs, a.shape[1])
    out[:, :k] = a[:, :k]
    return out
  return dataclasses.replace(
      chunk, qpos=fit(chunk.qpos), link_pos=fit(chunk.link_pos),
      link_rot=fit(chunk.link_rot), reward=np.nan_to_num(fit(chunk.reward)),
      done=np.nan_to_num(fit(chunk.done)),
      truncation=np.nan_to_num(fit(chunk.truncation)),
      metrics={k: np.nan_to_num(fit(v)) for k, v in chunk.metrics.items()})


class WebViewerBase:
  """Streams the first N training envs to a browser page while PPO trains.

  Args:
    host: interface to serve on. ``"0.0.0.0"`` serves the network (with a
      printed warning: the page has no authentication).
    port: TCP port (0: any free port).
    num_envs: envs to stream and draw (None: the trainer chooses).
    grid_dims: ``(columns, rows, layers)`` of the grid of envs.
    env_offset: spacing between envs in the grid, ``(x, y, z)`` metres.
    mode: initial streaming mode: ``"off"``, ``"live"`` or ``"sync"``.
    port_fallback: take the next free port when ``port`` is busy (otherwise
      a clear error names the busy port).
    history: chunks per source kept in memory for the page's timeline
      (scrub back, replay them, then *Live* to follow training again).
    title: the page's panel title.
    record_dir: also record what this viewer receives to this directory
      (see :meth:`record`); replay it with ``python -m braxviewer replay``.
  """

  _default_title = "braxviewer"

  def __init__(
      self,
      host: str = "127.0.0.1",
      port: int = 8000,
      *,
      num_envs: Optional[int] = None,
      grid_dims: Optional[Sequence[int]] = None,
      env_offset: Optional[Sequence[float]] = None,
      mode: "Mode | str" = Mode.LIVE,
      port_fallback: bool = False,
      history: int = 64,
      title: Optional[str] = None,
      record_dir: Optional[str] = None,
  ):
    if num_envs is not None and (isinstance(num_envs, bool)
                                 or not isinstance(num_envs, (int, np.integer))
                                 or num_envs < 1):
      raise ValueError(f"num_envs must be a positive int or None, got"
                       f" {num_envs!r}.")
    self.host = host
    self.port = int(port)
    self.port_fallback = bool(port_fallback)
    self.num_envs = None if num_envs is None else int(num_envs)
    self.grid_dims = None if grid_dims is None else tuple(int(d) for d in grid_dims)
    self.env_offset = (None if env_offset is None
                       else tuple(float(v) for v in env_offset))
    self.title = title or self._default_title
    self._wanted = Mode.parse(mode)
    self._trainer_mode: Optional[Mode] = None
    if isinstance(history, bool) or not isinstance(
        history, (int, np.integer)) or history < 1:
      raise ValueError(f"history must be a positive int (chunks kept per"
                       f" source), got {history!r}.")
    self._player = Player(history=int(history))
    self._recorder = None  # braxviewer.record.Recorder, see record()
    self._lock = threading.RLock()  # scene, panels, selection
    self._web: Optional["WebServer"] = None
    self._panels: Optional["Panels"] = None
    self._model: Optional[mujoco.MjModel] = None
    self._batched = None  # braxviewer.scene.BatchedScene
    self._view: Optional["SceneView"] = None
    self._traces: Optional[EnvTraces] = None
    self._info: Optional[StreamInfo] = None
    self._want_envs: Optional[int] = None
    self._tiled_copies = 1
    self._rebuild = False
    self._thread: Optional[threading.Thread] = None
    self._stop = threading.Event()
    self._closed = False
    self._failed: Optional[str] = None
    self._warned: set = set()
    self._selected = 0
    self._follow = False
    self._show_only = False
    self._last_pose: Optional[Tuple[np.ndarray, np.ndarray]] = None
    self._sim_t = 0.0
    self._ended = False
    self._rebuild_charts_at = 0.0
    self._received = RateMeter()
    self._shown = RateMeter()
    self._latency = Average()
    self._steps = _StepRate()
    self.update_seconds = Average()  # server-side cost of one drawn frame
    if record_dir is not None:
      self.record(record_dir)

  # -- lifecycle -------------------------------------------------------------

  def record(self, path: str, **options: Any):
    """Also record what this viewer receives to ``path`` (a new directory),
    from now on; returns the :class:`braxviewer.record.Recorder`.
    ``options`` go to the Recorder (``max_bytes=``, ``mode=``, ...)."""
    from braxviewer.record import Recorder  # pylint: disable=import-outside-toplevel
    recorder = Recorder(path, **options)
    if self._model is not None:
      recorder.init(self._model)
    if self._info is not None:
      recorder.on_stream_start(self._info)
    old, self._recorder = self._recorder, recorder
    if old is not None:
      old.close()
    return recorder

  def run(self) -> "WebViewerBase":
    """Start the web server in the background and print the page's URL."""
    if self._closed:
      raise RuntimeError("This viewer was closed; make a new one.")
    if self._web is not None:
      return self
    # pylint: disable=import-outside-toplevel
    from braxviewer.web.panels import Panels
    from braxviewer.web.render import setup_lighting
    from braxviewer.web.server import WebServer
    self._web = WebServer(self.host, self.port, self.port_fallback,
                          label=self.title, on_fault=self._fault)
    self.port = self._web.port
    setup_lighting(self._web.server)
    with self._lock:
      self._panels = Panels(self._web.server, self, num_envs=self._envs_guess(),
                            mode=self._wanted.value, title=self.title,
                            recorded=self._recorded_timeline())
      if self._model is not None:
        self._build_scene(self._envs_guess())
    self._web.server.on_client_connect(self._on_client)
    self._thread = threading.Thread(target=self._loop, name="braxviewer-web",
                                    daemon=True)
    self._thread.start()
    print(f"braxviewer: viewer running at {self.url}", flush=True)
    return self

  def init(self, env: Any) -> "WebViewerBase":
    """Set what to draw: a brax env, a MuJoCo Playground env, MJCF XML or an
    MjModel. Starts the server if :meth:`run` was not called."""
    model = resolve_model(env)
    single, copies = tiled.untile(model)
    if copies > 1:
      if self.num_envs is None and self._is_batched():
        self.num_envs = copies
      self._warn_once(
          "tiled",
          f"braxviewer: viewer.init() got a model of {copies} envs made by"
          " concatenate_envs_xml. braxviewer lays out the grid itself now, so"
          " it draws the single-env XML given to concatenate_envs_xml,"
          f" {self.num_envs or 1} env(s) on the grid. Passing the single-env"
          " env to viewer.init() does the same without this warning.")
      model = single
    prefixed = tiled.prefixed_copies(model) if copies == 1 else 1
    if prefixed > 1:
      self._warn_once(
          "tiled-names",
          f"braxviewer: viewer.init() got a model of {prefixed} envs laid out"
          " in one scene (bodies e0/..e{k}/). braxviewer draws it as it is,"
          " filled with the first streamed envs; env selection and the grid"
          " options are off. Pass the single-env env to viewer.init() for the"
          " full grid features.".replace("{k}", str(prefixed - 1)))
    with self._lock:
      self._model = model
      self._tiled_copies = prefixed
    if self._recorder is not None:
      self._recorder.init(env if copies == 1 else model)
    if self._web is None:
      self.run()
    else:
      with self._lock:
        self._build_scene(self._envs_guess())
    return self

  def close(self) -> None:
    """Stop the viewer thread and the server; training is not affected."""
    if self._closed:
      return
    self._closed = True
    if self._recorder is not None:
      self._recorder.close()
    self._stop.set()
    self._player.release_all()
    thread = self._thread
    if thread is not None and thread is not threading.current_thread():
      thread.join(timeout=5.0)
    if self._web is not None:
      self._web.stop()

  def __enter__(self) -> "WebViewerBase":
    return self.run()

  def __exit__(self, *exc) -> None:
    self.close()

  @property
  def url(self) -> Optional[str]:
    """The page's address once running."""
    return None if self._web is None else self._web.url

  # -- TrainingViewer protocol ---------------------------------------------

  def requested_envs(self) -> Optional[int]:
    return self.num_envs

  @property
  def mode(self) -> Mode:
    if self._closed or self._failed or self._model is None:
      return Mode.OFF
    return self._wanted

  def on_stream_start(self, info: StreamInfo) -> None:
    self._info = info
    if self._recorder is not None:
      self._recorder.on_stream_start(info)
    self._ended = False
    if self._model is None:
      self._warn_once(
          "no-model", "braxviewer: viewer.init(env) was not called before"
          " training, so there is nothing to draw; streaming stays off.")
      return
    copies = tiled.copies_by_width(self._model, info.nq)
    if copies > 1:
      if copies == self._tiled_copies:
        self._want_envs = 1
        return
      self._warn_once(
          "tiled-width", f"braxviewer: the model given to viewer.init() holds"
          f" {copies} envs side by side (nq={self._model.nq}, one env streams"
          f" nq={info.nq}). braxviewer draws it as one scene and fills its"
          f" {copies} copies with the first {min(copies, info.num_envs)}"
          " streamed envs; env selection is off. Pass the single-env model to"
          " viewer.init() to get the full grid features.")
      self._tiled_copies = copies
      self._want_envs = 1
      self._rebuild = True
      return
    if info.nq is not None and info.nq != self._model.nq:
      self._warn_once(
          "nq", f"braxviewer: the trainer streams qpos of width {info.nq} but"
          f" the model given to viewer.init() has nq={self._model.nq}; pass"
          " the env you train to viewer.init(). Streaming stays off.")
      self._failed = "model mismatch"
      return
    self._want_envs = int(info.num_envs)

  def on_chunk(self, chunk: FrameChunk) -> None:
    if self._recorder is not None:  # never blocks, never raises
      self._recorder.on_chunk(chunk)
    if self._closed or self._failed:
      return
    self._received.add(chunk.num_steps)
    if chunk.source == "train":
      self._steps.add(chunk.env_steps)
    ticket = self._player.offer(chunk, sync=self._wanted == Mode.SYNC)
    if ticket is None:
      return
    while not ticket.wait(0.05):
      if (self._wanted != Mode.SYNC or self._closed or self._failed
          or self._thread is None or not self._thread.is_alive()):
        return

  def on_progress(self, env_steps: int, metrics: Mapping[str, float]) -> None:
    if self._recorder is not None:
      self._recorder.on_progress(env_steps, metrics)
    self._steps.add(int(env_steps))
    panels = self._panels
    if panels is not None:
      panels.curves.add(int(env_steps), metrics)

  def on_trainer_mode(self, mode: Mode) -> None:
    self._trainer_mode = Mode.parse(mode)

  def on_stream_end(self) -> None:
    if self._recorder is not None:
      self._recorder.on_stream_end()
    self._ended = True
    self._player.release_all()

  # -- Controls (called from the page) --------------------------------------

  def set_mode(self, mode: "Mode | str") -> None:
    """Switch the streaming mode; the trainer picks it up within ~1 s."""
    self._wanted = Mode.parse(mode)
    if self._wanted != Mode.SYNC:
      self._player.release_all()
    panels = self._panels
    if panels is not None and panels.mode.value != self._wanted.value:
      panels.mode.value = self._wanted.value

  def set_source(self, source: str) -> None:
    self._player.set_source(source)

  def set_paused(self, paused: bool) -> None:
    self._player.set_paused(bool(paused))

  def set_speed(self, speed: float) -> None:
    self._player.set_speed(float(speed))

  # -- timeline (scrubbing back live; the whole recording in replay) --------

  def timeline(self):
    """The chunks of the source on display that the page can scrub through
    (a :class:`~braxviewer.timeline.ChunkSequence` snapshot)."""
    return self._player.timeline

  @property
  def reviewing(self) -> bool:
    """True while the page plays its timeline rather than the trainer's
    newest chunks (see :meth:`jump`, :meth:`go_live`)."""
    return not self._player.following

  def jump(self, index: int) -> None:
    """Show chunk ``index`` of :meth:`timeline` (0: the oldest kept; -1:
    the newest) from its first frame, and play on in stream order from
    there unless paused. Live, this reviews: the trainer's new chunks are
    kept but not shown (in sync mode the trainer waits) until
    :meth:`go_live` or the review catches up with them."""
    timeline = self._player.timeline
    if not len(timeline):
      return
    index = int(index)
    if index < 0:
      index += len(timeline)
    self._jump_to(timeline.start + index)

  def _jump_to(self, position: int) -> None:
    try:
      frame = self._player.jump(position, self._prepare)
    except ValueError as err:  # an unreadable chunk of a recording
      self._warn_once("jump", f"braxviewer: cannot show that chunk ({err}).")
      return
    if frame is not None:
      self._draw(*frame)

  def step_chunk(self, delta: int) -> None:
    """The previous (-1) or next (+1) chunk of the timeline."""
    p = self._player
    timeline = p.timeline
    if not len(timeline):
      return
    cursor = p.cursor if p.cursor >= 0 else timeline.end - 1
    position = max(cursor, timeline.start - 1) + int(delta)
    if p.loop or not p.live:
      position = timeline.start + (position - timeline.start) % len(timeline)
    self._jump_to(position)

  def jump_to_steps(self, env_steps: int) -> None:
    """Show the chunk of the timeline nearest to ``env_steps`` env steps."""
    i = self._player.timeline.nearest(int(env_steps))
    if i >= 0:
      self.jump(i)

  def go_live(self) -> None:
    """Follow training again: the newest chunks, playing."""
    self._player.go_live()

  def set_loop(self, loop: bool) -> None:
    """Reviewing: start over at the timeline's end (live, otherwise the
    review ends by following training again)."""
    self._player.loop = bool(loop)

  def set_repeat(self, repeat: bool) -> None:
    """Reviewing: play the current chunk again and again."""
    self._player.repeat = bool(repeat)

  def _recorded_timeline(self):
    """The recording's timeline for the panels (replay), or None (live)."""
    return None

  def select_env(self, env: int) -> None:
    with self._lock:
      n = self._view.num_envs if self._view is not None else 1
      self._selected = int(np.clip(int(env), 0, n - 1))
      if self._view is not None:
        self._view.select(self._selected)
        if self._show_only:
          self._redraw()
      if self._panels is not None:
        if self._panels.env.value != self._selected:
          self._panels.env.value = self._selected
        self._panels.show_env(self._selected, self._traces)
      if self._follow:
        self._update_follow()

  def step_env(self, delta: int) -> None:
    n = self._view.num_envs if self._view is not None else 1
    self.select_env((self._selected + int(delta)) % n)

  def set_follow(self, follow: bool) -> None:
    with self._lock:
      self._follow = bool(follow)
      if self._panels is not None and self._panels.follow.value != follow:
        self._panels.follow.value = bool(follow)
      self._update_follow()

  def set_show_only(self, only: bool) -> None:
    with self._lock:
      self._show_only = bool(only)
      if self._view is not None:
        self._view.show_only(self._selected if only else None)
        self._redraw()

  def set_shadows(self, shadows: bool) -> None:
    """Shadows in the page (off by default: costly without a GPU)."""
    if self._web is not None:
      self._web.server.scene.configure_default_lights(True, bool(shadows))
    if self._panels is not None and self._panels.shadows.value != shadows:
      self._panels.shadows.value = bool(shadows)

  def apply_camera(self, preset: str) -> None:
    """Point every open page's camera: top, side, front or follow."""
    with self._lock:
      view = self._view
      if view is None:
        return
      self.set_follow(preset == "follow")
      shifted = view.roots + view._shift  # pylint: disable=protected-access
      position, look_at, up = camera_presets.preset(
          preset, shifted, self._selected, view.extent, self._page())
      self._set_cameras(position, look_at, up)

  # -- stats ---------------------------------------------------------------

  def stats(self) -> dict:
    """Counters and rates shown in the status panel (for tests, benches)."""
    c = self._player.counters
    return dict(
        chunks_received=c.chunks_received, frames_received=c.frames_received,
        chunks_dropped=c.chunks_dropped, frames_dropped=c.frames_dropped,
        frames_shown=c.frames_shown, chunks_skipped=c.chunks_skipped,
        received_per_s=self._received.rate(), shown_per_s=self._shown.rate(),
        latency_s=self._latency.mean(), env_steps=self._steps.latest,
        env_steps_per_s=self._steps.rate(),
        update_s=self.update_seconds.mean(),
        clients=(len(self._web.server.get_clients())
                 if self._web is not None and self._web.alive() else 0),
        triangles=self._view.triangles if self._view is not None else 0,
    )

  @property
  def failed(self) -> Optional[str]:
    """Why the viewer turned itself off, or None."""
    return self._failed

  @property
  def selected_env(self) -> int:
    return self._selected

  # -- internals -----------------------------------------------------------

  def _is_batched(self) -> bool:
    return True

  def _envs_guess(self) -> int:
    if self._want_envs:
      return self._want_envs
    if self.num_envs:
      return self.num_envs
    if self.grid_dims:
      return int(np.prod(self.grid_dims))
    return 16 if self._is_batched() else 1

  def _warn_once(self, key: str, message: str) -> None:
    if key in self._warned:
      return
    self._warned.add(key)
    warnings.warn(message, ViewerWarning, stacklevel=3)

  def _fault(self, message: str) -> None:
    self._warn_once("socket", f"braxviewer: {message}")

  def _fail(self, reason: str, warn: bool = True) -> None:
    if self._failed:
      return
    self._failed = reason
    self._player.release_all()
    if warn:
      self._warn_once("fail", f"braxviewer: {reason} The viewer is off for"
                      " the rest of this run; training goes on.")

  def _build_scene(self, num_envs: int) -> None:
    """(Re)build the drawn envs; caller holds ``self._lock``."""
    # pylint: disable=import-outside-toplevel
    from braxviewer.scene import BatchedScene
    from braxviewer.web.render import SceneView
    if self._web is None or self._model is None:
      return
    if self._view is not None:
      if self._view.num_envs == num_envs and not self._rebuild:
        return
      self._view.remove()
      self._view = None
    copies = getattr(self, "_tiled_copies", 1)
    if copies > 1:
      num_envs = 1
      self._batched = tiled.TiledPoses(
          BatchedScene(self._model, 1, None, None), copies)
    else:
      self._batched = BatchedScene(self._model, num_envs, self.grid_dims,
                                   self.env_offset)
    self._view = SceneView(self._web.server, self._batched.single_model,
                           self._batched.offsets, on_env_click=self.select_env)
    self._rebuild = False
    self._traces = EnvTraces(num_envs)
    self._last_pose = None
    self._selected = min(self._selected, num_envs - 1)
    rest = self._batched.rest_poses()
    self._last_pose = (np.asarray(rest.xpos), np.asarray(rest.xquat))
    self._view.show(*self._last_pose)
    if self._show_only:
      self._view.show_only(self._selected)
    self._view.select(self._selected)
    if self._panels is not None:
      self._panels.set_num_envs(num_envs)
      self._panels.show_env(self._selected, self._traces)
    position, look_at, up = camera_presets.preset(
        "overview", self._view.roots, self._selected, self._view.extent,
        self._page())
    cam = self._web.server.initial_camera
    cam.position, cam.look_at = position, look_at
    self._set_cameras(position, look_at, up)

  def _on_client(self, client) -> None:
    """A page opened (or reloaded): charts are re-sent whole to it, once it
    has taken in the replay of the scene (see ProgressCurves.rebuild)."""
    del client
    self._rebuild_charts_at = time.monotonic() + _CHART_REBUILD_DELAY

  def _rebuild_charts(self) -> None:
    panels = self._panels
    if panels is not None:
      panels.curves.rebuild()
      with self._lock:
        panels.trace_chart.rebuild()
        if self._traces is not None:
          self._traces.dirty = True

  def _page(self) -> camera_presets.Page:
    """The first open page's field of view and shape (defaults if none)."""
    web = self._web
    for client in list(web.server.get_clients().values()) if web else []:
      try:
        cam = client.camera
        return camera_presets.Page.of(cam.fov, cam.image_width,
                                      cam.image_height)
      except Exception:  # pylint: disable=broad-except
        continue  # not synced yet, or closed meanwhile
    return camera_presets.Page()

  def _set_cameras(self, position, look_at, up) -> None:
    del up  # the scene's +z; presets keep it
    web = self._web
    if web is None:
      return
    cam = web.server.initial_camera
    cam.position, cam.look_at = position, look_at
    for client in list(web.server.get_clients().values()):
      try:
        client.camera.position = position  # moves look_at along ...
        client.camera.look_at = look_at  # ... so aim afterwards
      except Exception:  # pylint: disable=broad-except
        pass  # the page closed meanwhile

  def _update_follow(self) -> None:
    view = self._view
    if view is None:
      return
    if self._follow:
      root = view.roots[self._selected]
      view.shift(-np.array([root[0], root[1], 0.0]))
    else:
      view.shift(np.zeros(3))

  def _prepare(self, entry: Entry) -> None:
    """Body poses of a chunk about to play (viewer thread)."""
    with self._lock:
      batched = self._batched
      if batched is None:
        return
      chunk = entry.chunk
      if self._tiled_copies == 1 and chunk.num_envs != batched.num_envs:
        chunk = fit_envs(chunk, batched.num_envs)  # e.g. eval: other count
        entry.chunk = chunk
      entry.payload = batched.poses(chunk)
    entry.t0 = self._sim_t + entry.dt

  def _draw(self, entry: Entry, index: int, record: bool = True) -> None:
    poses = entry.payload
    with self._lock:
      view = self._view
      if poses is None or view is None:
        return
      started = time.perf_counter()
      xpos = np.asarray(poses.xpos[index])
      xquat = np.asarray(poses.xquat[index])
      valid = np.asarray(poses.valid[index])
      if not valid.all() and self._last_pose is not None \
          and self._last_pose[0].shape == xpos.shape:
        xpos = np.where(valid[:, None, None], xpos, self._last_pose[0])
        xquat = np.where(valid[:, None, None], xquat, self._last_pose[1])
      self._last_pose = (xpos, xquat)
      chunk = entry.chunk
      done = np.asarray(chunk.done[index]) > 0
      view.show(xpos, xquat, done=done)
      if self._follow:
        self._update_follow()
      self.update_seconds.add(time.perf_counter() - started)
    if not record:
      return
    self._shown.add()
    if index == 0 and entry.from_feed:
      self._latency.add(time.time() - chunk.wall_time)
    t = entry.t0 + index * entry.dt
    self._sim_t = t
    traces = self._traces
    if traces is not None and traces.num_envs == chunk.num_envs:
      traces.push(t, np.asarray(chunk.reward[index]), done,
                  {k: np.asarray(v[index]) for k, v in chunk.metrics.items()})

  def _redraw(self) -> None:
    if self._view is not None and self._last_pose is not None:
      self._view.show(*self._last_pose)

  def _refresh_panels(self) -> None:
    panels = self._panels
    if panels is None:
      return
    c = self._player.counters
    latency = self._latency.mean()
    note = ""
    if self._ended:
      note = "Training finished."
    elif self._model is None:
      note = "Call viewer.init(env) to draw envs."
    elif self._player.paused:
      note = "Paused."
    from braxviewer.web.panels import Status  # pylint: disable=import-outside-toplevel
    status = Status(
        trainer_mode=(self._trainer_mode.value if self._trainer_mode
                      else "not started"),
        wanted_mode=self._wanted.value,
        env_steps=self._steps.latest,
        env_steps_per_s=self._steps.rate(),
        received_per_s=self._received.rate(),
        shown_per_s=self._shown.rate(),
        dropped=c.frames_dropped,
        latency_ms=None if latency is None else 1e3 * latency,
        source=self._player.source,
        note=note,
    )
    text = status.markdown()
    if panels.status.content != text:
      panels.status.content = text
    with self._lock:
      traces = self._traces
      if traces is not None and traces.dirty:
        traces.dirty = False
        panels.show_env(self._selected, traces)
    panels.curves.refresh()
    p = self._player
    frame = p.last_frame[1] if p.last_frame is not None else 0
    panels.timeline.show(p.timeline, p.cursor, frame, p.following, p.paused,
                         p.speed, p.loop, p.repeat, note=self._timeline_note())

  def _timeline_note(self) -> str:
    return ""

  def _loop(self) -> None:
    """The viewer thread: play frames, refresh panels, watch the server."""
    errors = 0
    last_panels = 0.0
    while not self._stop.is_set():
      try:
        if self._web is not None and not self._web.alive():
          why = f" ({self._web.death})" if self._web.death else ""
          self._fail(f"the web server stopped unexpectedly{why}; the page is"
                     " gone.")
          return
        want = self._want_envs
        if want and (self._view is None or self._view.num_envs != want
                     or self._rebuild):
          with self._lock:
            self._build_scene(want)
        frame = self._player.tick(self._prepare)
        if frame is not None:
          self._draw(*frame)
          errors = 0
        now = time.monotonic()
        if self._rebuild_charts_at and now >= self._rebuild_charts_at:
          self._rebuild_charts_at = 0.0
          self._rebuild_charts()
        if now - last_panels >= _PANEL_PERIOD:
          last_panels = now
          self._refresh_panels()
      except Exception as err:  # pylint: disable=broad-except
        errors += 1
        self._warn_once(
            "loop", f"braxviewer: the viewer could not draw a frame"
            f" ({type(err).__name__}: {err}). It skips such frames, and turns"
            " itself off if it keeps failing; training goes on.")
        if errors >= _MAX_CONSECUTIVE_ERRORS:
          self._fail(f"the viewer failed {errors} times in a row"
                     f" ({type(err).__name__}: {err}).", warn=False)
          return
      self._stop.wait(min(max(self._player.next_due(), 0.001), 0.02))
