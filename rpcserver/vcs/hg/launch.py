"""Mercurial's own entry point with two network limits it lacks; run as a script by
``command.Hg`` (it imports nothing of rpcserver).

- ``RPCSERVER_HG_PINS`` (``host:port:addr[,addr] ...``): connections to ``host:port`` go to
  the addresses the clone_uri check resolved and allowed, so a name cannot resolve to a
  private address between the check and the fetch (git does this with ``http.curloptResolve``).
- ``RPCSERVER_HG_STALL`` (seconds): every socket read or write that waits longer fails, so a
  remote that accepts and goes silent is given up on.
"""

import os
import socket
import sys


def _pin() -> None:
    pins: dict[tuple[str, int], list[str]] = {}
    for entry in os.environ.get("RPCSERVER_HG_PINS", "").split():
        host, port, addresses = entry.split(":", 2)  # a name has no colon; addresses may
        pins[(host.lower(), int(port))] = [a.strip("[]") for a in addresses.split(",")]
    if not pins:
        return
    original = socket.getaddrinfo

    def getaddrinfo(host, port, *args, **kwargs):
        name = host.decode() if isinstance(host, bytes) else str(host)
        try:
            number = int(port)
        except (TypeError, ValueError):
            number = -1
        found = pins.get((name.lower().rstrip("."), number))
        if found is None:
            return original(host, port, *args, **kwargs)
        infos = []
        for address in found:
            infos.extend(original(address, port, *args, **kwargs))
        return infos

    socket.getaddrinfo = getaddrinfo


def main() -> None:
    stall = os.environ.get("RPCSERVER_HG_STALL")
    if stall:
        socket.setdefaulttimeout(float(stall))
    _pin()
    from mercurial import dispatch

    dispatch.run()


if __name__ == "__main__":
    main()
    sys.exit(0)
