"""How a call proved who is making it, and the request that carried it: plain data, made by
the layer that received the call (the HTTP app, the admin command) and read by
authentication and by permission checks (``CallContext.credential``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: The envelope's ``api_key``: Kallithea's way, and every client's today.
API_KEY = "api_key"
#: The ``rpcserver`` admin command, run on the server's own machine by someone who can read
#: its configuration: acts as the first active admin.
LOCAL_CLI = "local-cli"

KINDS = (API_KEY, LOCAL_CLI)


@dataclass(frozen=True)
class Credential:
    """One caller's proof of identity, as it came; ``secret`` never shows in a repr or log."""

    kind: str
    secret: object = field(default=None, repr=False)
    #: For ``local-cli``: the operating-system user who ran the command (for the record).
    os_user: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown credential kind {self.kind!r}")


@dataclass(frozen=True)
class ApiRequest:
    """What the HTTP layer hands the dispatcher: the body, where it came from, and the
    headers (where credentials other than the body's ``api_key`` will be read)."""

    body: bytes
    client_ip: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
