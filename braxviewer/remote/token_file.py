"""The viewer server's secret on this machine: a file only its user reads.

A viewer server makes a secret when it starts (or takes ``--token``) and
writes it to ``~/.cache/braxviewer/serve-PORT.token`` (``$XDG_CACHE_HOME``
honoured), created with mode 0600 in a 0700 folder, as Jupyter keeps its
runtime files. ``braxviewer.connect`` on the same machine, run by the same
user, reads it there; every other client must be given the token. The file
is removed when the server stops (only if it still holds this server's
secret). No JAX, no web.
"""

from __future__ import annotations

import os
import stat
from typing import Optional

_MAX_BYTES = 4096


def folder() -> str:
  """Where the token files are kept."""
  base = os.environ.get("XDG_CACHE_HOME") or os.path.join(
    os.path.expanduser("~"), ".cache"
  )
  return os.path.join(base, "braxviewer")


def path_for(port: int) -> str:
  """The token file of the server on ``port``."""
  return os.path.join(folder(), f"serve-{int(port)}.token")


def write(port: int, token: str) -> str:
  """Write ``token`` for the server on ``port``, readable by this user
  only; returns the file's path.

  Raises:
    OSError: the folder cannot be made or the file written.
  """
  where = folder()
  os.makedirs(where, mode=0o700, exist_ok=True)
  path = path_for(port)
  tmp = f"{path}.{os.getpid()}.tmp"
  flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
  fd = os.open(tmp, flags, 0o600)
  try:
    os.fchmod(fd, 0o600)  # whatever the umask
    os.write(fd, token.encode("utf-8"))
  finally:
    os.close(fd)
  os.replace(tmp, path)  # a reader never sees half a token
  return path


def read(port: int) -> Optional[str]:
  """The token of the server on ``port`` on this machine, or None when
  there is no file, or one that others could have written (not this
  user's, or writable by group or others)."""
  path = path_for(port)
  try:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
  except OSError:
    return None
  try:
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
      return None
    if hasattr(os, "getuid") and info.st_uid != os.getuid():
      return None
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
      return None
    data = os.read(fd, _MAX_BYTES)
  finally:
    os.close(fd)
  token = data.decode("utf-8", "replace").strip()
  return token or None


def remove(port: int, token: str) -> None:
  """Remove the token file of ``port`` if it still holds ``token`` (a newer
  server on the same port keeps its own)."""
  if read(port) == token:
    try:
      os.remove(path_for(port))
    except OSError:
      pass
