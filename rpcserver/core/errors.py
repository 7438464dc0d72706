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
"""

from __future__ import annotations


class ApiError(Exception):
    """An error whose text is safe and meant for the client."""

    text: str = "Internal server error"

    def __init__(self, text: str | None = None) -> None:
        if text is not None:
            self.text = text
        super().__init__(self.text)


class InvalidRequest(ApiError):
    pass


class InvalidApiKey(ApiError):
    text = "Invalid API key"

    def __init__(self, reason: str) -> None:
        # The reason goes to the server log only; the client always sees one text.
        super().__init__()
        self.reason = reason


class MethodNotAllowed(ApiError):
    text = "Method not allowed"


class NoSuchMethod(ApiError):
    def __init__(self, name: str) -> None:
        super().__init__(f"No such method: {name}")


class MissingArg(ApiError):
    def __init__(self, arg: str) -> None:
        super().__init__(f"Missing non optional `{arg}` arg in JSON DATA")


class UnknownArgs(ApiError):
    def __init__(self, args: list[str]) -> None:
        names = ", ".join(f"`{a}`" for a in sorted(args))
        super().__init__(f"Unknown {names} arg in JSON DATA")


class InvalidArg(ApiError):
    def __init__(self, arg: str, reason: str) -> None:
        super().__init__(f"Invalid `{arg}` arg in JSON DATA: {reason}")


class AccessDenied(ApiError):
    text = "Access was denied to this resource."


class NotFound(ApiError):
    """``<kind> `<x>` does not exist``, also for objects the caller may not read."""

    def __init__(self, kind: str, value: object) -> None:
        super().__init__(f"{kind} `{value}` does not exist")


class DatabaseUnavailable(ApiError):
    """The database could not be reached, or the connection died during the call; a script
    should wait and call again, not think its key or its arguments are wrong."""

    text = "Database unavailable, try again"


class InternalError(ApiError):
    text = "Internal server error"
