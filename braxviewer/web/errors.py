"""The web viewer's warning and error types."""


class ViewerWarning(UserWarning):
  """A problem of the web viewer; training is never affected."""


class PortInUseError(OSError):
  """The requested port is taken and no fallback was allowed."""
