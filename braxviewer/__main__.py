"""``python -m braxviewer``: the command line (:mod:`braxviewer.app.main`)."""

from typing import NoReturn

from braxviewer.app import cli
from braxviewer.app.main import main


def run() -> NoReturn:
  """The ``braxviewer`` command: :func:`main`, then exit with its code."""
  cli.exit_with(main())


if __name__ == "__main__":
  run()
