"""How a call proved who is making it, and the request that carried it: plain data, made by
the layer that received the call (the HTTP app, the admin command) and read by
authentication and by permission checks (``CallContext.credential``)."""

from __future__ import annotations

import binascii
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

#: The envelope's ``api_key``: Kallithea's way, and every client's today.
API_KEY = "api_key"
#: The ``rpcserver`` admin command, run on the server's own machine by someone who can read
#: its configuration: acts as the first active admin.
LOCAL_CLI = "local-cli"
#: Keys a request presents outside its body (docs/protocol.md, "API keys outside the body").
#: Today none of them authenticates a call: each must be a valid key of the body key's user.
#: ``?api_key=<key>`` in the query string (every one of them, whatever its value).
QUERY_API_KEY = "query-api-key"
#: ``Authorization: Bearer <key>``.
BEARER = "bearer"
#: ``Authorization: Basic base64(<username>:<key>)``; the username is ``Credential.username``.
BASIC = "basic"

KINDS = (API_KEY, LOCAL_CLI, QUERY_API_KEY, BEARER, BASIC)
#: Where each kind outside the body came from, for the log.
WHERE = {QUERY_API_KEY: "the api_key query parameter",
         BEARER: "the Authorization header (Bearer)",
         BASIC: "the Authorization header (Basic)"}

#: What our API keys begin with (``domain.auth`` makes them).
KEY_PREFIX = "rpck_"
#: What a token exchanged at ``/_admin/token`` begins with (a short-lived key).
TOKEN_PREFIX = "rpct_"  # noqa: S105 (a prefix, not a secret)
#: A Kallithea API key: 40 hexadecimal characters (a SHA-1 digest).
_KALLITHEA_KEY = re.compile(r"[0-9a-fA-F]{40}")


@dataclass(frozen=True)
class Credential:
    """One caller's proof of identity, as it came; ``secret`` never shows in a repr or log."""

    kind: str
    secret: object = field(default=None, repr=False)
    #: For ``local-cli``: the operating-system user who ran the command (for the record).
    os_user: str | None = None
    #: For ``basic``: the username the header names.
    username: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown credential kind {self.kind!r}")


@dataclass(frozen=True)
class ApiRequest:
    """What the HTTP layer hands the dispatcher: the body, where it came from, the headers
    and the query string's parameters (in order, repeats kept), where the credentials other
    than the body's ``api_key`` are read (``outside_body``)."""

    body: bytes
    client_ip: str | None = None
    headers: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    query: tuple[tuple[str, str], ...] = ()

    def outside_body(self) -> tuple[Credential, ...]:
        """The API keys the request presents besides its body's, in the order they came.

        Every ``?api_key=`` counts, whatever its value (Kallithea refuses any that is not a
        valid key, an empty one too). An ``Authorization`` header counts only with a key of
        ours (``rpck_...``, a mistyped or cut one too) or of Kallithea's shape, as Bearer or
        as Basic's password; any other (a proxy's own Basic or Bearer credential) is none of
        the API's business and is ignored. Two ``Authorization`` headers reach us joined by
        a comma (waitress), so every comma-separated part is read."""
        found = [Credential(QUERY_API_KEY, secret=value)
                 for name, value in self.query if name == "api_key"]
        for name, value in self.headers.items():
            if name.lower() == "authorization":
                found.extend(_authorization(value))
        return tuple(found)


def is_api_key_like(secret: str) -> bool:
    """Whether ``secret`` is meant as an API key: ours (by its prefix) or Kallithea's."""
    return (secret.startswith((KEY_PREFIX, TOKEN_PREFIX))
            or _KALLITHEA_KEY.fullmatch(secret) is not None)


def _authorization(value: str) -> Iterator[Credential]:
    for part in value.split(","):
        scheme, _, rest = part.strip().partition(" ")
        rest = rest.strip()
        if scheme.lower() == "bearer":
            if is_api_key_like(rest):
                yield Credential(BEARER, secret=rest)
        elif scheme.lower() == "basic":
            try:
                decoded = binascii.a2b_base64(rest, strict_mode=True).decode("utf-8")
            except (binascii.Error, ValueError):
                continue  # not ours to read: a proxy's, or garbage
            username, colon, key = decoded.partition(":")
            if colon and is_api_key_like(key):
                yield Credential(BASIC, secret=key, username=username)
