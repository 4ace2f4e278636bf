"""braxviewer: watch Brax / MuJoCo Playground PPO training live in a browser."""

from braxviewer.frames import FrameChunk
from braxviewer.headless import HeadlessViewer
from braxviewer.protocol import Mode, StreamInfo, TrainingViewer

__all__ = [
    "FrameChunk",
    "HeadlessViewer",
    "Mode",
    "StreamInfo",
    "TrainingViewer",
]
__version__ = "0.1.0"
