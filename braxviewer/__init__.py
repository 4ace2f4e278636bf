"""braxviewer: watch Brax / MuJoCo Playground PPO training live in a browser."""

from braxviewer.core import console as _console
from braxviewer.core.console import verbose
from braxviewer.core.frames import FrameChunk
from braxviewer.core.protocol import Mode, StreamInfo, TrainingViewer
from braxviewer.viewer.headless import HeadlessViewer

# The classes shadow their same-named modules on purpose (original API: both
# `from braxviewer import WebViewer` and `from braxviewer.WebViewer import
# WebViewer` work). Cheap: viser is imported only when a viewer runs.
from braxviewer.WebViewer import WebViewer
from braxviewer.WebViewerBatched import WebViewerBatched

# Third-party banners quiet unless verbose (braxviewer.verbose(),
# BRAXVIEWER_VERBOSE=1): see braxviewer.core.console.
_console.apply()


def wrap(env, viewer, num_envs=None, **options):
  """Stream the first ``num_envs`` envs of any loop that steps ``env`` (a
  batched env): :func:`braxviewer.train.wrapper.wrap` (imported here on first use,
  so ``import braxviewer`` loads no JAX)."""
  from braxviewer.train.wrapper import wrap as _wrap

  return _wrap(env, viewer, num_envs, **options)


def connect(address="127.0.0.1:8000", **options):
  """A viewer on a viewer server (``python -m braxviewer serve``):
  :func:`braxviewer.remote.client.connect` (imported on first use)."""
  from braxviewer.remote.client import connect as _connect

  return _connect(address, **options)


__all__ = [
  "connect",
  "FrameChunk",
  "HeadlessViewer",
  "Mode",
  "StreamInfo",
  "TrainingViewer",
  "verbose",
  "WebViewer",
  "WebViewerBatched",
  "wrap",
]
__version__ = "0.1.0"
