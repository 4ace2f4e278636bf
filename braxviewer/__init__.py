"""braxviewer: watch Brax / MuJoCo Playground PPO training live in a browser."""

from braxviewer.frames import FrameChunk
from braxviewer.headless import HeadlessViewer
from braxviewer.protocol import Mode, StreamInfo, TrainingViewer

# The classes shadow their same-named modules on purpose (original API: both
# `from braxviewer import WebViewer` and `from braxviewer.WebViewer import
# WebViewer` work). Cheap: viser is imported only when a viewer runs.
from braxviewer.WebViewer import WebViewer
from braxviewer.WebViewerBatched import WebViewerBatched

__all__ = [
  "FrameChunk",
  "HeadlessViewer",
  "Mode",
  "StreamInfo",
  "TrainingViewer",
  "WebViewer",
  "WebViewerBatched",
]
__version__ = "0.1.0"
