"""A viewer apart from training: ``python -m braxviewer serve`` and
``braxviewer.connect``.

- :mod:`wire`: the messages between a run and the server.
- :mod:`trust`: what a run's message may make the server do, checked.
- :mod:`token_file`: the server's token on this machine (0600).
- :mod:`client`: :class:`RemoteViewer`, the viewer a training process uses
  (``braxviewer.connect``). No JAX, no web.
- :mod:`runs`, :mod:`server`: the server's runs and :class:`ViewerServer`
  (the page plus the training socket).
"""
