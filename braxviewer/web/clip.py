"""Videos made for a page: the live page's *Save clip* and the replay page's
*Export MP4*.

*Save clip* is a quick draft of the kept chunks (:func:`render_page_clip`):
at most :data:`CLIP_FPS` frames per second of real time, the page's aspect
at most :data:`CLIP_SIDE` pixels wide or high, no shadows, reflections or
multisampling (most of a frame's cost in software OpenGL). A
:class:`VideoJobs` makes one video at a time in a worker thread at a low
CPU priority (training and the page go first), shows a progress bar and a
*Cancel video* button under the page's video button while it runs, and
sends the MP4 to the page that asked as a download (the browser saves it).
No JAX.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
import threading
from typing import Any, Callable, List, Optional, Tuple

import numpy as np
import viser

from braxviewer.core.timeline import ChunkSequence
from braxviewer.record.export import ClipCancelled, ExportResult, render_clip

CLIP_FPS = 30.0  # the page's clips: frames per video second, at most
CLIP_SIDE = 640  # their longest side in pixels, at most
CLIP_SIZE = (640, 480)  # their size when the page's is unknown
NICE = 10  # the worker's CPU priority, lower than the program's (Linux)

# render(path, on_frame(done, total), stopped()): writes the MP4 at path
Render = Callable[[str, Callable[[int, int], None], Callable[[], bool]], object]


def clip_size(
  width: Optional[int], height: Optional[int], side: int = CLIP_SIDE
) -> Tuple[int, int]:
  """A video size of the page's aspect (``width`` x ``height`` pixels), its
  longest side at most ``side``, even; :data:`CLIP_SIZE` when unknown."""
  if not width or not height or min(width, height) < 16:
    return CLIP_SIZE
  scale = min(1.0, side / max(width, height))
  w, h = (max(16, int(x * scale) // 2 * 2) for x in (width, height))
  return w, h


def page_size(client: Any) -> Tuple[Optional[int], Optional[int]]:
  """The 3D view's size in a page (viser's camera says), else (None, None)."""
  with contextlib.suppress(Exception):
    camera = client.camera
    return int(camera.image_width), int(camera.image_height)
  return None, None


def render_page_clip(
  timeline: ChunkSequence,
  model: Any,
  out: str,
  *,
  env: int = 0,
  grid: bool = False,
  size: Tuple[int, int] = CLIP_SIZE,
  on_frame: Optional[Callable[[int, int], None]] = None,
  stopped: Optional[Callable[[], bool]] = None,
) -> ExportResult:
  """*Save clip*: every chunk of ``timeline`` to an MP4 at ``out``, env
  ``env`` with the follow camera, or (``grid``) every env with the
  overview camera; in real time at most :data:`CLIP_FPS` frames per second,
  ``size`` pixels, draft look.

  Raises:
    ClipCancelled: ``stopped()`` said so.
  """
  return render_clip(
    timeline,
    model,
    np.arange(len(timeline)),
    out,
    env=env,
    grid=grid,
    camera="overview" if grid else "follow",
    width=size[0],
    height=size[1],
    max_fps=CLIP_FPS,
    draft=True,
    on_frame=on_frame,
    stopped=stopped,
  )


@dataclasses.dataclass
class Place:
  """Where a video's progress shows: ``gui`` (viser's), the ``folder`` of the
  video button, and the button's ``order`` (the widgets come right after)."""

  gui: Any
  folder: Any
  order: float


class _Widgets:
  """A progress bar and a *Cancel video* button (all pages see them)."""

  def __init__(self, place: Place, on_cancel: Callable[[], None]):
    self._handles: List[Any] = []
    self._percent = -1
    gui = place.gui
    with place.folder:
      self.bar = gui.add_progress_bar(
        0.0, animated=True, order=place.order + 0.001
      )
      self._handles.append(self.bar)
      self.cancel = gui.add_button(
        "Cancel video",
        icon=viser.Icon.X,
        color="red",
        hint="Stop making the video (nothing is downloaded).",
        order=place.order + 0.002,
      )
      self._handles.append(self.cancel)
    self.cancel.on_click(lambda _: on_cancel())

  def show(self, fraction: float) -> None:
    percent = int(100 * min(max(fraction, 0.0), 1.0))
    if percent != self._percent:
      self._percent = percent
      self.bar.value = float(percent)
      self.cancel.label = f"Cancel video ({percent}%)"

  def remove(self) -> None:
    for handle in self._handles:
      with contextlib.suppress(Exception):
        handle.remove()
    self._handles.clear()


class VideoJobs:
  """One video at a time for the pages of a host.

  Args:
    place: where the progress widgets go now (None: the page has no video
      button; the status line alone shows the progress).
  """

  def __init__(self, place: Callable[[], Optional[Place]] = lambda: None):
    self._place = place
    self._lock = threading.Lock()
    self._cancel = threading.Event()
    self.progress: Optional[float] = None  # the video being made, 0..1
    self.thread: Optional[threading.Thread] = None

  @property
  def busy(self) -> bool:
    return self.progress is not None

  def cancel(self) -> None:
    """Stop the video being made (nothing is sent)."""
    self._cancel.set()

  def start(self, client: Any, name: str, render: Render) -> bool:
    """Make ``name`` with ``render`` in a worker thread and send it to
    ``client``'s browser as a download; False (the page told) while another
    video is being made. A failure shows in that page."""
    with self._lock:
      if self.busy:
        _notify(
          client,
          "Busy",
          f"A video is being made ({self.progress:.0%}); cancel it first.",
        )
        return False
      self.progress = 0.0
      self._cancel = threading.Event()
    cancel = self._cancel
    widgets = None
    with contextlib.suppress(Exception):  # no widgets: the status line says
      place = self._place()
      widgets = None if place is None else _Widgets(place, cancel.set)

    def on_frame(done: int, total: int) -> None:
      self.progress = done / max(total, 1)
      if widgets is not None:
        widgets.show(self.progress)

    def work() -> None:
      _lower_priority()
      try:
        with tempfile.TemporaryDirectory() as tmp:
          path = os.path.join(tmp, name)
          render(path, on_frame, cancel.is_set)
          with open(path, "rb") as f:
            data = f.read()
        client.send_file_download(name, data, save_immediately=True)
      except ClipCancelled:
        _notify(client, "Video cancelled", name, auto_close_seconds=4.0)
      except Exception as err:  # report it in the page that asked
        _notify(client, "No video", " ".join(str(err).split()), color="red")
      finally:
        if widgets is not None:
          widgets.remove()
        self.progress = None

    self.thread = threading.Thread(
      target=work, name="braxviewer-video", daemon=True
    )
    self.thread.start()
    return True


def _notify(client: Any, title: str, body: str, **options: Any) -> None:
  with contextlib.suppress(Exception):  # a page that is gone
    client.add_notification(title, body, **options)


def _lower_priority() -> None:
  """This thread (and the renderer's threads it starts) after the program's
  own: Linux nices threads one by one."""
  with contextlib.suppress(AttributeError, OSError):
    os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), NICE)
