"""The method registry: a decorator stores each method's handler, argument schema and
permission in a plain dict, looked up by name (never ``getattr`` on a class).

Argument checking yields API.md §1 rows 12-14, in that order: missing (the last missing one in
parameter order), unknown (names sorted), then type or range — and within row 14 first the
nesting bound (``schemas.MAX_NESTING``), because validating a value nested ~1,000 deep
exhausts Python's recursion inside jsonschema.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from jsonschema import Draft202012Validator, FormatChecker
from jsonschema.exceptions import ValidationError

from rpcserver.core.errors import InvalidArg, MissingArg, UnknownArgs
from rpcserver.core.schemas import STRING_BOOLEAN, nested_deeper_than

#: API.md §8: ``Invalid `<arg>` arg in JSON DATA: nested too deeply``.
NESTED_TOO_DEEPLY = "nested too deeply"

class Requirement(Protocol):
    """What a method needs of its caller; raises an ``ApiError`` when it is not met.
    ``ctx`` is the call's ``domain.context.Context`` (a layer above this one): a read's or a
    write's, so a requirement uses only what both have (``ctx.conn``, ``ctx.caller``)."""

    description: str

    def check(self, ctx: Any, args: dict[str, Any]) -> None: ...


KALLITHEA = "kallithea"
#: RhodeCode 1.2 scripts send envelopes without ``id``; some names mean other things there.
RHODECODE = "rhodecode"

Handler = Callable[..., Any]

#: The scopes a method can need, least first.
READ_SCOPE, WRITE_SCOPE, ADMIN_SCOPE = "read", "write", "admin"
#: The rights a per-repository scope grants (``repository:<name>:pull,push``).
PULL, PUSH = "pull", "push"


@dataclass(frozen=True)
class Method:
    name: str
    handler: Handler
    schema: dict[str, Any]
    permission: Requirement
    #: A method that writes runs in a write transaction (BEGIN IMMEDIATE on SQLite) with an
    #: ORM session (``CallContext``); any other gets a connection (``ReadContext``).
    writes: bool
    dialect: str = KALLITHEA
    aliases: tuple[str, ...] = ()
    validator: Draft202012Validator = field(repr=False, compare=False, default=None)
    #: Whether the method changes anything (a write, or a read whose ``Deferred`` finish
    #: writes): a ``read``-scoped key may call only methods that change nothing.
    changes: bool = False
    #: The argument that names the repository the method works on, if it works on one: a key
    #: holding only per-repository scopes reaches the method through it, with
    #: ``repository_right`` on that repository (``pull`` for a method that changes nothing).
    repository_arg: str | None = None
    repository_right: str | None = None

    @property
    def scope(self) -> str:
        """The scope a key needs for this method (docs/authentication.md): ``read`` for one
        that changes nothing, ``admin`` for an admin-only one that changes something,
        ``write`` for the rest."""
        if not self.changes:
            return READ_SCOPE
        return ADMIN_SCOPE if getattr(self.permission, "admin_only", False) else WRITE_SCOPE

    @property
    def params(self) -> list[str]:
        return list(self.schema["properties"])

    @property
    def required(self) -> list[str]:
        return list(self.schema["required"])

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.handler) or ""
        return doc.split("\n\n")[0].replace("\n", " ").strip()

    def defaults(self) -> dict[str, Any]:
        sig = inspect.signature(self.handler)
        return {name: p.default for name, p in sig.parameters.items()
                if p.default is not inspect.Parameter.empty}

    def check_args(self, args: dict[str, Any]) -> dict[str, Any]:
        """The arguments, checked (API.md §1 rows 12-14) and with string booleans made real."""
        missing = [name for name in self.required if name not in args]
        if missing:
            raise MissingArg(missing[-1])
        unknown = [name for name in args if name not in self.schema["properties"]]
        if unknown:
            raise UnknownArgs(unknown)
        for name in self.params:
            if name in args and nested_deeper_than(args[name]):
                raise InvalidArg(name, NESTED_TOO_DEEPLY)
        errors = list(self.validator.iter_errors(args))
        if errors:
            order = {name: i for i, name in enumerate(self.params)}
            first = min(errors, key=lambda e: order.get(_arg_of(e), len(order)))
            raise InvalidArg(_arg_of(first), _reason(first))
        return {name: _as_boolean(value) if self._string_booleans.get(name) else value
                for name, value in args.items()}

    @functools.cached_property
    def _string_booleans(self) -> dict[str, bool]:
        properties = self.schema["properties"]
        return {name: bool(properties[name].get(STRING_BOOLEAN)) for name in properties}


class Registry:
    """Methods by name and dialect; create one per app, or merge several with ``include``."""

    def __init__(self) -> None:
        self._methods: dict[tuple[str, str], Method] = {}

    def method(self, name: str, *, schema: dict[str, Any], permission: Requirement,
               writes: bool = False, dialect: str = KALLITHEA,
               aliases: tuple[str, ...] = (), changes: bool | None = None,
               repository_arg: str | None = None,
               repository_right: str | None = None) -> Callable[[Handler], Handler]:
        """Register the decorated ``handler(ctx, **args)`` as ``name``. ``changes`` defaults
        to ``writes``; a method that answers a ``Deferred`` says ``changes=True``."""
        Draft202012Validator.check_schema(schema)
        if schema.get("type") != "object" or schema.get("additionalProperties") is not False:
            raise ValueError(f"{name}: args schema must be an object with "
                             "additionalProperties: false")
        if dialect not in (KALLITHEA, RHODECODE):
            raise ValueError(f"{name}: unknown dialect {dialect!r}")
        if repository_arg is not None and repository_arg not in schema.get("properties", {}):
            raise ValueError(f"{name}: repository_arg {repository_arg!r} is no argument")
        changing = writes if changes is None else changes
        if repository_right is None and repository_arg is not None and not changing:
            repository_right = PULL
        if repository_right not in (None, PULL, PUSH):
            raise ValueError(f"{name}: unknown repository_right {repository_right!r}")

        def register(handler: Handler) -> Handler:
            _check_signature(name, handler, schema)
            method = Method(
                name=name, handler=handler, schema=schema, permission=permission,
                writes=writes, dialect=dialect, aliases=aliases,
                validator=Draft202012Validator(schema, format_checker=FormatChecker()),
                changes=changing, repository_arg=repository_arg,
                repository_right=repository_right if repository_arg is not None else None,
            )
            for each in (name, *aliases):
                self._add(each, method)
            return handler

        return register

    def _add(self, name: str, method: Method) -> None:
        key = (name, method.dialect)
        if key in self._methods:
            raise ValueError(f"method {name!r} ({method.dialect}) is registered twice")
        self._methods[key] = method

    def include(self, other: Registry) -> None:
        for (name, _dialect), method in other._methods.items():
            self._add(name, method)

    def lookup(self, name: str, *, dialect: str = KALLITHEA) -> Method | None:
        """The method for ``name``; a RhodeCode 1.2 request falls back to the Kallithea one."""
        if dialect != KALLITHEA:
            found = self._methods.get((name, dialect))
            if found is not None:
                return found
        return self._methods.get((name, KALLITHEA))

    def __iter__(self) -> Iterator[tuple[str, Method]]:
        """(name, method) for every name, aliases included, sorted by name then dialect."""
        for (name, _dialect), method in sorted(self._methods.items()):
            yield name, method

    def __len__(self) -> int:
        return len(self._methods)


def _check_signature(name: str, handler: Handler, schema: dict[str, Any]) -> None:
    """Fail at import time if the schema and the handler's parameters disagree."""
    params = list(inspect.signature(handler).parameters.values())
    if not params or params[0].name != "ctx":
        raise TypeError(f"{name}: handler's first parameter must be ctx")
    names = {p.name for p in params[1:]}
    props = set(schema["properties"])
    if names != props:
        raise TypeError(f"{name}: handler parameters {sorted(names)} != schema {sorted(props)}")
    for p in params[1:]:
        optional = p.default is not inspect.Parameter.empty
        if optional == (p.name in schema["required"]):
            raise TypeError(f"{name}: {p.name} must have a default exactly when optional")


def _as_boolean(value: Any) -> Any:
    return value.lower() == "true" if isinstance(value, str) else value


def _arg_of(error: ValidationError) -> str:
    return str(error.absolute_path[0]) if error.absolute_path else "args"


_TYPE_NAMES = {"string": "a string", "integer": "an integer", "boolean": "a boolean",
               "object": "an object", "array": "a list", "null": "null", "number": "a number"}


def _alternatives(schema: dict[str, Any]) -> list[str]:
    """The JSON types an ``anyOf`` (nested ones included) accepts."""
    kinds: list[str] = []
    for sub in schema.get("anyOf", []):
        if "anyOf" in sub:
            kinds += _alternatives(sub)
        elif isinstance(sub.get("type"), str):
            kinds.append(sub["type"])
    return kinds


def _specific(error: ValidationError) -> ValidationError | None:
    """Within an ``anyOf``, the error of the alternative whose type matched, if any."""
    for sub in error.context or []:
        if sub.validator == "anyOf":
            found = _specific(sub)
            if found is not None:
                return found
        elif sub.validator != "type":
            return sub
    return None


def _reason(error: ValidationError) -> str:
    """A short reason that never echoes the value (it may be a password)."""
    schema = error.schema if isinstance(error.schema, dict) else {}
    kind = error.validator
    if kind == "type":
        wanted = schema.get("type")
        wanted_list = wanted if isinstance(wanted, list) else [wanted]
        return "must be " + " or ".join(_TYPE_NAMES.get(str(w), str(w)) for w in wanted_list)
    if schema.get(STRING_BOOLEAN):
        return "must be a boolean (true or false)"
    if kind == "anyOf":
        specific = _specific(error)
        if specific is not None:
            return _reason(specific)
        kinds = [k for k in _alternatives(schema) if k != "null"]
        return "must be " + " or ".join(_TYPE_NAMES.get(k, k) for k in kinds)
    if kind == "enum":
        return "must be one of " + ", ".join(str(v) for v in schema.get("enum", []))
    if kind == "maxLength":
        return f"must be at most {error.validator_value} characters long"
    if kind == "minLength":
        return ("must not be empty" if error.validator_value == 1
                else f"must be at least {error.validator_value} characters long")
    if kind == "maximum":
        return f"must be at most {error.validator_value}"
    if kind == "minimum":
        return f"must be at least {error.validator_value}"
    if kind == "maxItems":
        return f"must have at most {error.validator_value} items"
    if kind == "pattern":
        return "contains characters that are not allowed"
    if kind == "not" and schema.get("not") == {"type": "null"}:
        return "must not be null"
    if kind == "format":
        return f"is not a valid {error.validator_value}"
    return "is not valid"
