"""Errors a method or the dispatcher answers with.

Each class carries its wire text; the dispatcher turns any ``ApiError`` into the envelope's
``error`` string. Anything that is not an ``ApiError`` is a bug and becomes
``Internal server error`` (logged with its traceback, never sent).

    ApiError                      text given per instance (Kallithea's ``JSONRPCError``)
    ├── InvalidRequest            malformed envelope (§1 rows 1-7b, 9)
    ├── InvalidApiKey             every authentication failure, one text
    ├── MethodNotAllowed          names starting with ``_``
    ├── NoSuchMethod
    ├── MissingArg / UnknownArgs / InvalidArg
    ├── AccessDenied              the caller lacks the method's permission
    ├── NotFound                  an object that does not exist or may not be seen
    ├── DatabaseUnavailable       the database could not be reached (db.py decides which
    │                             driver errors mean that)
    └── InternalError

Each also has the numeric ``code`` JSON-RPC 2.0 will answer with: -32600 invalid request,
-32601 no such method, -32602 bad arguments, -32603 internal error (the spec's), and the
server's own -32000 (a method's refusal), -32001 key, -32003 access, -32004 not found,
-32005 database unavailable.
"""

from __future__ import annotations


class ApiError(Exception):
    """An error whose text is safe and meant for the client."""

    text: str = "Internal server error"
    #: The JSON-RPC 2.0 error code this error will carry there (the Kallithea envelope has
    #: only the text): the spec's own codes, and -32000 to -32099 for the server's.
    code: int = -32000

    def __init__(self, text: str | None = None) -> None:
        if text is not None:
            self.text = text
        super().__init__(self.text)


class InvalidRequest(ApiError):
    code = -32600


class InvalidApiKey(ApiError):
    code = -32001
    text = "Invalid API key"

    def __init__(self, reason: str) -> None:
        # The reason goes to the server log only; the client always sees one text.
        super().__init__()
        self.reason = reason


class MethodNotAllowed(ApiError):
    code = -32601
    text = "Method not allowed"


class NoSuchMethod(ApiError):
    code = -32601

    def __init__(self, name: str) -> None:
        super().__init__(f"No such method: {name}")


class MissingArg(ApiError):
    code = -32602

    def __init__(self, arg: str) -> None:
        super().__init__(f"Missing non optional `{arg}` arg in JSON DATA")


class UnknownArgs(ApiError):
    code = -32602

    def __init__(self, args: list[str]) -> None:
        names = ", ".join(f"`{a}`" for a in sorted(args))
        super().__init__(f"Unknown {names} arg in JSON DATA")


class InvalidArg(ApiError):
    code = -32602

    def __init__(self, arg: str, reason: str) -> None:
        super().__init__(f"Invalid `{arg}` arg in JSON DATA: {reason}")


class AccessDenied(ApiError):
    code = -32003
    text = "Access was denied to this resource."


class NotFound(ApiError):
    """``<kind> `<x>` does not exist``, also for objects the caller may not read."""

    code = -32004

    def __init__(self, kind: str, value: object) -> None:
        super().__init__(f"{kind} `{value}` does not exist")


class DatabaseUnavailable(ApiError):
    """The database could not be reached, or the connection died during the call; a script
    should wait and call again, not think its key or its arguments are wrong."""

    code = -32005
    text = "Database unavailable, try again"


class TooManyFailures(ApiError):
    """Too many failed authentications from one address (or for one username) lately."""

    code = -32006

    def __init__(self, seconds: int) -> None:
        super().__init__(f"too many failed logins, try again in {seconds} s")


class ReservedName(ApiError):
    """A repository or group name beginning with ``_``: such paths are the server's own
    (``/_admin/``, and whatever comes later), never a repository's clone URL."""

    def __init__(self, name: str) -> None:
        super().__init__(f"repository name `{name}` is reserved")


class InternalError(ApiError):
    code = -32603
    text = "Internal server error"
