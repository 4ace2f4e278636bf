"""The browser side of braxviewer: server, scene, pacing, panels. No JAX.

The user-facing classes are :class:`braxviewer.WebViewer` and
:class:`braxviewer.WebViewerBatched`; viser is imported only when a viewer
starts serving.
"""
