"""The kinds of work by name, and work as plain data and back: what a job queue would need.

A ``Deferred`` carries a ``Work`` (``context``): a frozen dataclass whose fields are ids,
names and values. ``to_data`` turns one into JSON-ready data naming its kind, ``from_data``
turns that back into the same work, so a queue could store it and a worker run it with
``run(config)``. In-process, the dispatcher runs it directly and nothing is converted.

The data holds what the work holds, a clone_uri's password too (``Source.url`` and
``secrets``): whatever stores it must keep it as secret as the database keeps clone_uris.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from typing import Any

from rpcserver.domain.context import Work
from rpcserver.domain.gists import CreateGist
from rpcserver.domain.repo_work import CreateRepo, ForkRepo, PullRepo, RefreshCache, RescanRepos

#: Every kind of work, by its ``kind``.
WORK_KINDS: dict[str, type[Work]] = {
    cls.kind: cls for cls in (CreateRepo, ForkRepo, PullRepo, RefreshCache, RescanRepos,
                              CreateGist)}


def to_data(work: Work) -> dict[str, Any]:
    """``{"kind": ..., "params": {...}}`` with only JSON types (tuples and sets as lists)."""
    if not dataclasses.is_dataclass(work) or WORK_KINDS.get(work.kind) is not type(work):
        raise TypeError(f"not a registered kind of work: {work!r}")
    return {"kind": work.kind, "params": _plain(dataclasses.asdict(work))}


def from_data(data: Mapping[str, Any]) -> Work:
    """The work ``to_data`` described; ``KeyError`` for an unknown kind."""
    cls = WORK_KINDS[data["kind"]]
    return typing.cast(Work, _build(cls, data["params"]))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_plain(item) for item in value)
    return value


def _build(cls: type, params: Mapping[str, Any]) -> Any:
    hints = typing.get_type_hints(cls)
    return cls(**{f.name: _typed(hints[f.name], params[f.name])
                  for f in dataclasses.fields(cls) if f.init and f.name in params})


def _typed(hint: Any, value: Any) -> Any:
    """``value`` (JSON data) as the field's type ``hint`` asks: dataclasses, tuples and
    frozensets rebuilt, ``X | None`` as X or None; anything else as it is."""
    if value is None:
        return None
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        options = [arg for arg in args if arg is not type(None)]
        if len(options) != 1:
            raise TypeError(f"cannot rebuild a value of type {hint}")
        return _typed(options[0], value)
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return _build(hint, value)
    if origin is tuple:
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_typed(args[0], item) for item in value)
        return tuple(_typed(arg, item) for arg, item in zip(args, value, strict=True))
    if origin is frozenset:
        return frozenset(_typed(args[0], item) for item in value)
    return value
