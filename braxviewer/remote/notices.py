"""What a run is told about its viewer server: the warnings, each said once
per viewer, and their wording (no token ever printed). No JAX, no web.
"""

from __future__ import annotations

from braxviewer.remote import wire


class ServerLost(RuntimeWarning):
  """The viewer server went away (said once per viewer); training goes on."""


class ServerSlow(RuntimeWarning):
  """The server asked for sync and did not show a chunk in time (said once
  per viewer); training goes on as in live until it shows chunks again."""


class ServerRefused(RuntimeWarning):
  """The server refused a message of this run (said once per kind)."""


def why(err: BaseException) -> str:
  """What went wrong, with the server's own words for a refused handshake
  (e.g. a missing token and where to find it)."""
  response = getattr(err, "response", None)
  body = getattr(response, "body", None)
  if isinstance(body, (bytes, bytearray)) and body:
    status = getattr(response, "status_code", "")
    return f"HTTP {status}: {bytes(body[:600]).decode('utf-8', 'replace')}"
  return str(err)


def lost_message(address: str, err: BaseException, was_connected: bool) -> str:
  """The :class:`ServerLost` warning's text (``address`` already redacted)."""
  text = " ".join(why(err).split()) or type(err).__name__
  was = "lost" if was_connected else "cannot reach"
  return (
    f"braxviewer: {was} the viewer server at {address}"
    f" ({wire.redact(text)[:400]}). Training goes on; the viewer retries in"
    " the background and the stream resumes when the server is back."
  )
