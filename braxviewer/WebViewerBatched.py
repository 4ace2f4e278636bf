"""``braxviewer.WebViewerBatched``: the original API's module path for
:class:`braxviewer.web.viewer.WebViewerBatched` (a grid of envs in the
browser)."""

from braxviewer.web.viewer import WebViewerBatched

__all__ = ["WebViewerBatched"]
