"""``python -m braxviewer``: the command line (:mod:`braxviewer.app.main`)."""

import sys

from braxviewer.app.main import main

if __name__ == "__main__":
  sys.exit(main())
