"""Who may use the page: same-origin pages on this machine, or holders of a
secret token when the page is served beyond it.

The websocket drives training (mode, pause, sync), so it is guarded:

* Served on loopback (the default): a request must name a loopback host
  (``Host: 127.0.0.1:P``, ``localhost:P`` or ``[::1]:P``, any port, so SSH
  tunnels work; another name is a DNS-rebinding attempt) and a websocket's
  ``Origin`` must be that same host: a page from any other origin, even
  another port of this machine, cannot open it. Clients that send no Origin
  (local programs, not browsers) pass.
* Served beyond loopback: every request needs the token, in the URL
  (``/?token=...``, as printed; the page is then redirected to ``/`` with the
  token in a cookie, so it does not stay in the address bar) or in that
  cookie; a websocket's Origin must still match its Host.
* Private paths (a viewer server's training socket) need their own secret
  on loopback too, in an ``Authorization: Bearer`` header (programs) or the
  query; no browser page may open them (any ``Origin`` is refused).

Tokens are compared as UTF-8 bytes in constant time: any text a client
sends is a refusal, never an error.

Whether a host is loopback is decided on the addresses it resolves to, not
on its spelling (``"0"``, ``"0.0.0.00"`` and a routable name are the
network). Pure Python: no viser, no JAX.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import http.cookies
import secrets
from typing import Dict, Mapping, Optional, Tuple
import urllib.parse

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


def new_token() -> str:
  return secrets.token_urlsafe(24)


@dataclasses.dataclass(frozen=True)
class Refusal:
  """An HTTP answer instead of the page or the websocket."""

  status: int
  body: str
  headers: Tuple[Tuple[str, str], ...] = ()


def _host_name(host_header: str) -> str:
  """``"[::1]:8000"`` -> ``"::1"``, ``"localhost:8000"`` -> ``"localhost"``."""
  host = host_header.strip().lower()
  if host.startswith("["):
    return host[1:].partition("]")[0]
  return host.rpartition(":")[0] if host.count(":") == 1 else host


def same_secret(given: str, secret: str) -> bool:
  """Whether ``given`` is ``secret`` (constant time; any text, also
  non-ASCII, is an answer, never an error)."""
  if not given:
    return False
  a = given.encode("utf-8", "surrogatepass")
  b = secret.encode("utf-8", "surrogatepass")
  return hmac.compare_digest(a, b)


def _bearer(headers: Mapping[str, str]) -> str:
  scheme, _, value = headers.get("authorization", "").partition(" ")
  return value.strip() if scheme.lower() == "bearer" else ""


@dataclasses.dataclass(frozen=True)
class Private:
  """A path that needs its own secret, whatever the page's rule.

  Args:
    token: the secret.
    hint: where a client finds it (said in the refusal).
  """

  token: str
  hint: str = ""


@dataclasses.dataclass(frozen=True)
class Access:
  """The rules for one server.

  Args:
    token: the secret every request must carry (None: no token).
    loopback: the server listens on loopback addresses only.
    private: paths (no query) that need their own secret, also on
      loopback, and that no browser page may open.
  """

  token: Optional[str]
  loopback: bool
  private: Mapping[str, Private] = dataclasses.field(default_factory=dict)

  @property
  def cookie(self) -> str:
    """The token's cookie: named after the token, so two viewers on one
    machine (cookies ignore ports) do not overwrite each other's."""
    digest = hashlib.sha256((self.token or "").encode()).hexdigest()[:10]
    return f"braxviewer-{digest}"

  def _has_token(self, query: Mapping[str, list], headers: Mapping[str, str]):
    if self.token is None:
      return True
    given = (query.get("token") or [""])[0]
    if not given:
      jar = http.cookies.SimpleCookie()
      try:
        jar.load(headers.get("cookie", ""))
      except http.cookies.CookieError:
        return False
      morsel = jar.get(self.cookie)
      given = morsel.value if morsel is not None else ""
    return same_secret(given, self.token)

  def check(self, path: str, headers: Mapping[str, str]) -> Optional[Refusal]:
    """None to let a request through, else how to answer it.

    Args:
      path: the request's path and query (``/?token=...``).
      headers: its headers, names in lower case.
    """
    host = headers.get("host", "")
    websocket = headers.get("upgrade", "").lower() == "websocket"
    if self.loopback and _host_name(host) not in LOOPBACK_NAMES:
      return Refusal(
        403,
        "braxviewer: this page is served to this machine"
        " only; open it as http://127.0.0.1 or http://localhost.",
      )
    parsed = urllib.parse.urlsplit(path)
    query = urllib.parse.parse_qs(parsed.query)
    private = self.private.get(parsed.path)
    if private is not None:
      return _check_private(private, query, headers)
    if not self._has_token(query, headers):
      return Refusal(
        403,
        "braxviewer: this page needs its token; open the"
        " URL the training script printed (it ends in"
        " ?token=...).",
      )
    if websocket:
      origin = headers.get("origin")
      if origin is not None and not _same_origin(origin, host):
        return Refusal(
          403,
          "braxviewer: only the viewer's own page may"
          f" connect (Origin {origin!r} is another site).",
        )
      return None
    if self.token is not None and "token" in query:  # keep it out of the URL
      rest = urllib.parse.urlencode(
        {k: v for k, v in query.items() if k != "token"}, doseq=True
      )
      cookie = http.cookies.SimpleCookie()
      cookie[self.cookie] = self.token
      cookie[self.cookie]["path"] = "/"
      cookie[self.cookie]["httponly"] = True
      cookie[self.cookie]["samesite"] = "Strict"
      return Refusal(
        302,
        "",
        (
          ("Location", (parsed.path or "/") + (f"?{rest}" if rest else "")),
          ("Set-Cookie", cookie[self.cookie].OutputString()),
        ),
      )
    return None


def _check_private(
  private: Private, query: Mapping[str, list], headers: Mapping[str, str]
) -> Optional[Refusal]:
  if headers.get("origin") is not None:
    return Refusal(
      403, "braxviewer: this path is for training runs, not for web pages."
    )
  given = _bearer(headers) or (query.get("token") or [""])[0]
  if not same_secret(given, private.token):
    why = "a wrong token" if given else "no token"
    return Refusal(
      403,
      f"braxviewer: this viewer server's training socket needs the"
      f" server's token ({why} was given). {private.hint}".strip(),
    )
  return None


def _same_origin(origin: str, host: str) -> bool:
  parsed = urllib.parse.urlsplit(origin)
  return (
    parsed.scheme in ("http", "https")
    and bool(host)
    and parsed.netloc.lower() == host.strip().lower()
  )


def lower_headers(headers: Mapping[str, str]) -> Dict[str, str]:
  return {k.lower(): v for k, v in headers.items()}
