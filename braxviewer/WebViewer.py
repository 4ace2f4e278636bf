"""``braxviewer.WebViewer``: the original API's module path for
:class:`braxviewer.web.viewer.WebViewer` (one env in the browser)."""

from braxviewer.web.viewer import WebViewer

__all__ = ["WebViewer"]
