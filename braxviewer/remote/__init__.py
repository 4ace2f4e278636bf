"""A viewer apart from training: ``python -m braxviewer serve`` and
``braxviewer.connect``.

- :mod:`wire`: the messages between a run and the server.
- :mod:`client`: :class:`RemoteViewer`, the viewer a training process uses
  (``braxviewer.connect``). No JAX, no web.
- :mod:`runs`, :mod:`server`: the server's runs and :class:`ViewerServer`
  (the page plus the training socket).
"""
