"""Exceptions raised by the client library.

Two families, because a caller handles them differently: the server *answered* (retrying the
same call will not help), or no usable answer arrived (it might, later)::

    ClientError
    ├── ApiError              the server answered with an error; str() is the server's text
    │   └── InvalidApiKey     ... and that text is `Invalid API key`
    └── TransportError        no usable answer
        ├── ConnectError      could not connect (refused, DNS, TLS)
        ├── Timeout           connected, but no answer in time
        └── ProtocolError     an answer that is not a JSON-RPC answer (wrong URL, proxy page,
                              redirect, id mismatch)
"""

from __future__ import annotations


class ClientError(Exception):
    """Base of every exception this library raises, so one `except` can catch them all."""


class ApiError(ClientError):
    """The server answered the call with an error.

    `message` (and `str()`) is exactly the server's `error` text, because scripts match it.
    """

    def __init__(self, message: str, method: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.method = method


class InvalidApiKey(ApiError):
    """The server refused the API key; a distinct class so callers can ask for a new key."""

    TEXT = "Invalid API key"


class TransportError(ClientError):
    """No usable answer arrived; the call may or may not have run on the server."""


class ConnectError(TransportError):
    """The server could not be reached at all."""


class Timeout(TransportError):
    """The server did not answer in time; the call may still complete on the server."""


class ProtocolError(TransportError):
    """Something answered, but not with a JSON-RPC answer to our request."""
