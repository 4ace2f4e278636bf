"""Replay a recording in the live viewer's page.

    python -m braxviewer replay runs/my_run          # http://127.0.0.1:8000

:class:`ReplayViewer` is the web viewer (same page, scene, env selection,
reward charts and training curves) fed from a recording instead of a
trainer: its :class:`ReplayPlayer` is the live viewer's
:class:`~braxviewer.web.pacing.Player` whose next chunk comes from the
recording, read lazily one chunk at a time. A "Replay" panel adds the
timeline over training progress, previous/next chunk (buttons and the
up/down keys, as in rscope), a jump to an env step, play/pause, speed
0.1x-4x, loop and repeat, and MP4 export of what is on screen. No JAX.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from typing import Any, Optional, Sequence

import numpy as np

from braxviewer.record import format as fmt
from braxviewer.record.reader import Recording
from braxviewer.web.pacing import Entry, Player
from braxviewer.WebViewerBatched import WebViewerBatched


class ReplayPlayer(Player):
  """A :class:`Player` whose chunks come from a recording, in order.

  Args:
    recording: the open recording.
    source: ``"train"`` or ``"eval"`` chunks.
    loop: start over after the last chunk (else stop there).
    repeat: play the current chunk again and again.
  """

  def __init__(self, recording: Recording, source: str = "train",
               loop: bool = True, repeat: bool = False, history: int = 8):
    super().__init__(history=history)
    self.recording = recording
    self._source = source
    self.loop = loop
    self.repeat = repeat
    self.ready = False
    self.cursor = -1  # index of the chunk on screen
    self._next = 0  # index of the chunk to play next

  @property
  def chunks(self):
    return self.recording.chunks(self._source)

  def set_source(self, source: str) -> None:
    """Play ``source`` from the chunk recorded nearest the current one."""
    if source not in ("train", "eval"):
      raise ValueError(f"source must be 'train' or 'eval', got {source!r}.")
    old = self.chunks
    steps = (int(old.env_steps[self.cursor]) if 0 <= self.cursor < len(old)
             else 0)
    with self._lock:
      self._source = source
      self._next = max(0, self.chunks.nearest(steps))
      self._finished = True

  def load(self, index: int) -> Entry:
    """The entry of chunk ``index`` (read from disk)."""
    return Entry(self.chunks[index])

  def _take_next(self) -> Optional[Entry]:
    chunks = self.chunks
    if not self.ready or not len(chunks):
      return None
    i = self.cursor if (self.repeat and self.cursor >= 0) else self._next
    if i >= len(chunks):
      if not self.loop:
        return None
      i = 0
    try:
      entry = self.load(i)
    except fmt.RecordingError:
      self.counters.chunks_skipped += 1
      self._next = i + 1
      return None
    self.cursor = i
    self._next = i + 1
    self.counters.chunks_received += 1
    self.counters.frames_received += entry.chunk.num_steps
    return entry

  def start(self, entry: Entry, index: int) -> None:
    """Make ``entry`` (chunk ``index``, prepared) the one on screen, at its
    first frame; playback goes on from there unless paused."""
    with self._lock:
      now = self._clock()
      self._current = entry
      self._history.append(entry)
      self._t0 = self._paused_at if self._paused_at is not None else now
      self._last_index = 0
      self._finished = False
      self.cursor = index
      self._next = index + 1
      self.last_frame = (entry, 0)


def _fmt_steps(n: int) -> str:
  return f"{n:,}"


def _short_steps(n: int) -> str:
  for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
    if abs(n) >= size:
      return f"{n / size:.3g}{unit}"
  return str(int(n))


def _step_marks(env_steps, count: int = 4):
  """Timeline marks: a few chunk indices labelled with their env steps."""
  n = len(env_steps)
  if n < 2:
    return None
  idx = sorted({int(round(i)) for i in np.linspace(0, n - 1, count)})
  return tuple((i, _short_steps(int(env_steps[i]))) for i in idx)


class ReplayViewer(WebViewerBatched):
  """The web viewer, playing a recording.

  Args:
    recording: a recording directory or an open :class:`Recording`.
    host, port, port_fallback: where to serve (as the live viewer).
    model: MJCF path or MjModel to draw instead of the recorded model.
    source: ``"train"`` or ``"eval"`` chunks first.
    speed: initial playback speed.
    loop: start over at the end.

  Raises:
    RecordingError: the recording cannot be read or has no model.
  """

  _default_title = "braxviewer replay"

  def __init__(self, recording: Any, host: str = "127.0.0.1",
               port: int = 8000, *, port_fallback: bool = False,
               model: Any = None, source: str = "train", speed: float = 1.0,
               loop: bool = True, title: Optional[str] = None):
    rec = recording if isinstance(recording, Recording) else Recording(
        recording)
    self.recording = rec
    self._replay_model = model if model is not None else rec.model()
    train = rec.chunks("train")
    chunks = train if len(train) else rec.chunks("eval")
    if not len(chunks):
      damage = (f" ({rec.unreadable_bytes} bytes of its segments are"
                " unreadable: corrupt or cut short)"
                if rec.unreadable_bytes else "")
      raise fmt.RecordingError(
          f"the recording at {rec.path} holds no readable chunks{damage}.")
    if source == "train" and not len(train):
      source = "eval"
    info = rec.stream_info
    num_envs = info.num_envs if info else int(chunks.num_envs.max())
    super().__init__(num_envs=num_envs, host=host, port=port,
                     port_fallback=port_fallback, mode="live",
                     title=title or f"replay: {os.path.basename(rec.path)}")
    self._player = ReplayPlayer(rec, source=source, loop=loop)
    self._player.set_speed(speed)
    self._replay = None
    self._exporting = False
    self._shown_cursor = None

  # -- lifecycle -------------------------------------------------------------

  def run(self) -> "ReplayViewer":
    if self._web is not None:
      return self
    super().run()
    self.init(self._replay_model)
    info = self.recording.stream_info
    if info is not None:
      self.on_stream_start(info)
      self.on_trainer_mode("off")
    for steps, metrics in self.recording.progress():
      self.on_progress(steps, metrics)
    self._ended = False
    self._add_replay_panel()
    self._player.ready = True
    return self

  def close(self) -> None:
    super().close()

  # -- controls ----------------------------------------------------------------

  def jump(self, index: int) -> None:
    """Show chunk ``index`` of the current source from its first frame."""
    p = self._player
    n = len(p.chunks)
    if not n:
      return
    index = int(index) % n
    entry = p.load(index)
    self._prepare(entry)
    p.start(entry, index)
    self._draw(entry, 0)

  def step_chunk(self, delta: int) -> None:
    """Previous (-1) or next (+1) chunk."""
    cursor = max(self._player.cursor, 0)
    self.jump(cursor + int(delta))

  def jump_to_steps(self, env_steps: int) -> None:
    """Show the chunk recorded nearest to ``env_steps`` training steps."""
    i = self._player.chunks.nearest(int(env_steps))
    if i >= 0:
      self.jump(i)

  def set_loop(self, loop: bool) -> None:
    self._player.loop = bool(loop)

  def set_repeat(self, repeat: bool) -> None:
    self._player.repeat = bool(repeat)

  def set_paused(self, paused: bool) -> None:
    super().set_paused(paused)
    if self._replay is not None and self._replay.play.value == bool(paused):
      self._replay.play.value = not paused

  def set_speed(self, speed: float) -> None:
    super().set_speed(min(4.0, max(0.1, float(speed))))

  # -- panel -------------------------------------------------------------------

  def _add_replay_panel(self) -> None:
    import viser  # pylint: disable=import-outside-toplevel
    gui = self._web.server.gui
    panels = self._panels
    # live-only widgets: the trainer's mode and rates; replay has its own
    for widget in (panels.mode, panels.status, panels.pause, panels.speed):
      widget.visible = False
    n = len(self._player.chunks)
    ns = _Widgets()
    with gui.add_folder("Replay", order=-1):
      ns.status = gui.add_markdown("")
      ns.timeline = gui.add_slider(
          "Timeline", min=0, max=max(n - 1, 1), step=1, initial_value=0,
          marks=_step_marks(self._player.chunks.env_steps),
          disabled=n < 2, hint="Recorded chunks over training, labelled with"
          " env steps (up/down keys: previous/next chunk).")
      ns.prev = gui.add_button("Previous chunk", icon=viser.Icon.PLAYER_SKIP_BACK)
      ns.next = gui.add_button("Next chunk", icon=viser.Icon.PLAYER_SKIP_FORWARD)
      ns.play = gui.add_checkbox("Play", True)
      ns.speed = gui.add_slider("Speed", min=0.1, max=4.0, step=0.1,
                                initial_value=self._player.speed,
                                hint="1 = real time")
      ns.loop = gui.add_checkbox("Loop", self._player.loop,
                                 hint="Start over after the last chunk.")
      ns.repeat = gui.add_checkbox("Repeat chunk", False,
                                   hint="Play the current chunk again.")
      ns.goto = gui.add_number("Go to env step", 0, min=0, step=1)
      ns.export = gui.add_button(
          "Export MP4", icon=viser.Icon.MOVIE,
          hint="Selected env, current chunk, follow camera.")
    user = lambda e: getattr(e, "client", None) is not None  # noqa: E731
    ns.timeline.on_update(lambda e: user(e) and self.jump(ns.timeline.value))
    ns.prev.on_click(lambda e: self.step_chunk(-1))
    ns.next.on_click(lambda e: self.step_chunk(+1))
    ns.play.on_update(lambda e: user(e) and self.set_paused(not ns.play.value))
    ns.speed.on_update(lambda e: user(e) and self.set_speed(ns.speed.value))
    ns.loop.on_update(lambda e: self.set_loop(ns.loop.value))
    ns.repeat.on_update(lambda e: self.set_repeat(ns.repeat.value))
    ns.goto.on_update(lambda e: user(e) and self.jump_to_steps(ns.goto.value))
    ns.export.on_click(lambda e: self._export_clicked(e.client))
    up = gui.add_command("Next chunk", hotkey="arrowup")
    down = gui.add_command("Previous chunk", hotkey="arrowdown")
    space = gui.add_command("Play / pause", hotkey="space")
    up.on_trigger(lambda e: self.step_chunk(+1))
    down.on_trigger(lambda e: self.step_chunk(-1))
    space.on_trigger(lambda e: self.set_paused(not self._player.paused))
    self._replay = ns

  def _refresh_panels(self) -> None:
    super()._refresh_panels()
    ns = self._replay
    if ns is None:
      return
    p = self._player
    chunks = p.chunks
    cursor = p.cursor
    frame = p.last_frame[1] if p.last_frame is not None else 0
    if 0 <= cursor < len(chunks):
      text = (f"**Chunk** {cursor + 1} / {len(chunks)} ({p.source}) · "
              f"**env step** {_fmt_steps(int(chunks.env_steps[cursor]))} · "
              f"seq {int(chunks.seq[cursor])} · frame {frame + 1} / "
              f"{int(chunks.num_steps[cursor])}")
    else:
      text = f"{len(chunks)} {p.source} chunks recorded."
    if p.paused:
      text += " · _paused_"
    if self._exporting:
      text += " · _exporting…_"
    if ns.status.content != text:
      ns.status.content = text
    n = max(len(chunks) - 1, 1)
    if ns.timeline.max != n:
      ns.timeline.max = n
    if cursor >= 0 and cursor != self._shown_cursor:
      self._shown_cursor = cursor
      ns.timeline.value = cursor
    if ns.play.value == p.paused:
      ns.play.value = not p.paused
    if abs(ns.speed.value - p.speed) > 1e-9:
      ns.speed.value = round(p.speed, 2)

  # -- export ------------------------------------------------------------------

  def _export_clicked(self, client) -> None:
    if self._exporting or client is None:
      return
    self._exporting = True
    cursor = max(self._player.cursor, 0)
    env = self.selected_env
    threading.Thread(target=self._export, args=(client, cursor, env),
                     name="braxviewer-export", daemon=True).start()

  def _export(self, client, cursor: int, env: int) -> None:
    from braxviewer.export import export_video  # pylint: disable=import-outside-toplevel
    chunks = self._player.chunks
    steps = int(chunks.env_steps[cursor])
    try:
      with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, f"env{env}_step{steps}.mp4")
        # a fresh reader: the export thread must not share memory maps
        export_video(self.recording.path, out, env=env, steps=(steps, steps),
                     source=self._player.source)
        with open(out, "rb") as f:
          data = f.read()
      client.send_file_download(os.path.basename(out), data)
    except Exception as err:  # pylint: disable=broad-except
      try:
        client.add_notification("Export failed", " ".join(str(err).split()),
                                color="red")
      except Exception:  # pylint: disable=broad-except
        pass
    finally:
      self._exporting = False


class _Widgets:
  """The replay panel's widget handles."""


# -- command line ----------------------------------------------------------------


def main(argv: Optional[Sequence[str]] = None) -> int:
  """``python -m braxviewer replay RECORDING``."""
  p = argparse.ArgumentParser(
      prog="braxviewer replay",
      description="Serve a recording in the viewer's page: timeline over"
      " training, play/pause, speed, loop, envs, reward plots, MP4 export.",
      formatter_class=argparse.ArgumentDefaultsHelpFormatter)
  p.add_argument("recording", help="recording directory (record_dir=)")
  p.add_argument("--host", default="127.0.0.1")
  p.add_argument("--port", type=int, default=8000)
  p.add_argument("--source", choices=("train", "eval"), default="train")
  p.add_argument("--speed", type=float, default=1.0,
                 help="playback speed, 0.1 to 4")
  p.add_argument("--model", default=None,
                 help="MJCF file to draw instead of the recorded model")
  p.add_argument("--exit-after", type=float, default=None,
                 help=argparse.SUPPRESS)  # for tests: serve this long, exit
  args = p.parse_args(argv)
  if not 0.1 <= args.speed <= 4.0:
    print(f"{p.prog}: error: --speed must be within 0.1..4, got"
          f" {args.speed}.", file=sys.stderr)
    return 2
  from braxviewer import cli  # pylint: disable=import-outside-toplevel
  from braxviewer.record.offscreen import configure_gl  # pylint: disable=import-outside-toplevel
  configure_gl()
  try:
    started = time.perf_counter()
    rec = Recording(args.recording)
    opened_s = time.perf_counter() - started
    if args.model is not None and not os.path.isfile(args.model):
      raise fmt.RecordingError(f"no such MJCF file: {args.model}")
    viewer = ReplayViewer(rec, host=args.host, port=args.port,
                          model=args.model, source=args.source,
                          speed=args.speed)
  except (fmt.RecordingError, ValueError, TypeError) as err:
    print(f"{p.prog}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2
  summary = rec.summary()
  with cli.training_session(viewer) as session:
    viewer.run()
    print(f"braxviewer: replaying {args.recording}: {summary['train_chunks']}"
          f" training chunks, {summary['eval_chunks']} eval chunks (opened in"
          f" {opened_s:.2f} s); Ctrl-C to quit.",
          flush=True)
    if args.exit_after is not None:
      time.sleep(args.exit_after)
    else:
      session.keep_open()
  return session.exit_code


if __name__ == "__main__":
  sys.exit(main())
