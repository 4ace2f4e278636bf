"""The web viewer's warning and error types."""

import warnings


class ViewerWarning(UserWarning):
  """A problem of the web viewer; training is never affected."""


class PortInUseError(OSError):
  """The requested port is taken and no fallback was allowed."""


class WarnOnce:
  """Issues each kind of warning once (a viewer that keeps failing the same
  way says so once, not per frame)."""

  def __init__(self) -> None:
    self._seen: set = set()

  def __call__(self, key: str, message: str, stacklevel: int = 3) -> None:
    if key in self._seen:
      return
    self._seen.add(key)
    warnings.warn(message, ViewerWarning, stacklevel=stacklevel)
