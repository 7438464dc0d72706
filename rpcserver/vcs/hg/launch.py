"""Mercurial's own entry point with two network limits it lacks; run as a script by
``command.Hg`` (it imports nothing of rpcserver).

- ``RPCSERVER_HG_PINS`` (``host:port:addr[,addr] ...``): connections to ``host:port`` go to
  the addresses the clone_uri check resolved and allowed, so a name cannot resolve to a
  private address between the check and the fetch (git does this with ``http.curloptResolve``).
  Any other host is refused, and no redirect is followed: a remote could otherwise send
  hg on to an address the check never saw (git has ``http.followRedirects=false``).
- ``RPCSERVER_HG_STALL`` (seconds): every socket read or write that waits longer fails, so a
  remote that accepts and goes silent is given up on.
"""

import os
import socket
import sys


def _pin() -> None:
    pins: dict[tuple[str, int], list[str]] = {}
    for entry in os.environ.get("RPCSERVER_HG_PINS", "").split():
        if entry.startswith("["):  # an IPv6 address pinned to itself: [addr]:port:[addr]
            host, _, rest = entry[1:].partition("]:")
            port, _, addresses = rest.partition(":")
        else:
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
            raise socket.gaierror(socket.EAI_NONAME,
                                  f"rpcserver: {name}:{port} is not the checked remote")
        infos = []
        for address in found:
            infos.extend(original(address, port, *args, **kwargs))
        return infos

    socket.getaddrinfo = getaddrinfo
    _no_redirects()


def _no_redirects() -> None:
    import urllib.error
    import urllib.request

    def refuse(self, request, fp, code, message, headers, new_url):
        raise urllib.error.HTTPError(request.full_url, code,
                                     f"rpcserver: redirect to {new_url} not followed",
                                     headers, fp)

    urllib.request.HTTPRedirectHandler.redirect_request = refuse  # type: ignore[method-assign]


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
