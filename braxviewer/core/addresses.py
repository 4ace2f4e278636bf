"""Whether a host name reaches this machine only, or the network: decided on
the addresses it resolves to, not on its spelling (``"0"``, ``"0.0.0.00"``
and a routable name are the network). Shared by the page's access rules and
by ``braxviewer.connect`` (which reads a local server's token file). Pure
Python.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Tuple


def addresses_of(host: str) -> Tuple[str, ...]:
  """The IP addresses ``host`` resolves to (``""``: every interface)."""
  if host == "":
    return ("0.0.0.0", "::")
  try:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
  except (socket.gaierror, UnicodeError) as err:
    raise ValueError(
      f"braxviewer: cannot serve on host {host!r}: it does not resolve to an"
      f" address ({err}). Use '127.0.0.1' (this machine only) or '0.0.0.0'"
      " (every interface)."
    ) from None
  return tuple(dict.fromkeys(str(info[4][0]) for info in infos))


def is_loopback(host: str) -> bool:
  """Whether serving on ``host`` reaches this machine only."""
  for address in addresses_of(host):
    ip = ipaddress.ip_address(address.split("%")[0])
    if not ip.is_loopback:
      return False
  return True


def is_unspecified(host: str) -> bool:
  """Whether ``host`` means every interface (``0.0.0.0``, ``::``, ``"0"``)."""
  return any(
    ipaddress.ip_address(a.split("%")[0]).is_unspecified
    for a in addresses_of(host)
  )
