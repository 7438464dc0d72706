"""What an API key may do below its user's own rights (docs/authentication.md).

A key's scopes are a space-separated list:

- ``all``: its user's full rights (every key made before scopes, and every key made without
  ``scopes``);
- ``read``: the methods that change nothing; ``write``: those and every method that changes
  something but is not admin-only; ``admin``: everything (``Method.scope`` says which a method
  needs);
- ``repository:<name>:pull[,push]`` and ``repo_group:<path>:pull[,push]`` (everything inside
  the group, at any depth), the Docker registry token grammar: ``pull`` reaches the methods
  that only read the named repositories, ``push`` adds those that fetch into them (``pull``,
  ``invalidate_cache``). A ``*`` in a name matches within one path segment.

A scope never adds a right: the user's own permissions are checked as ever, and a scope only
takes away. The check is one place, ``Scopes.allows`` (``permissions.check_scope`` gives it
the repository), which the dispatcher calls after the method's own requirement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache

from rpcserver.core.errors import ApiError
from rpcserver.core.registry import ADMIN_SCOPE, PULL, PUSH, READ_SCOPE, WRITE_SCOPE, Method

ALL = "all"
#: A token granted none of what it asked for (``/_admin/token``): it can call nothing.
NONE = "none"
_LEVELS = {NONE: 0, READ_SCOPE: 1, WRITE_SCOPE: 2, ADMIN_SCOPE: 3, ALL: 3}
REPOSITORY, REPO_GROUP = "repository", "repo_group"
#: At most this many scopes on one key, and this long a scope.
MAX_SCOPES = 32
MAX_SCOPE_LENGTH = 300
_NAME = re.compile(r"[^\s:\x00-\x1f\x7f]+")


class ScopeError(ValueError):
    """A scope list that is not one (the reason is the argument's error text)."""


class ScopeRefused(ApiError):
    def __init__(self, method: str) -> None:
        super().__init__(f"API key scope does not allow `{method}`")


@dataclass(frozen=True)
class ObjectScope:
    """``repository:<pattern>:pull[,push]`` or ``repo_group:<pattern>:pull[,push]``."""

    kind: str
    pattern: str
    push: bool

    def text(self) -> str:
        return f"{self.kind}:{self.pattern}:{'pull,push' if self.push else 'pull'}"

    def covers(self, repository: str) -> bool:
        """Whether the repository called ``repository`` (its full name) is inside."""
        regex = _glob(self.pattern)
        if self.kind == REPOSITORY:
            return regex.fullmatch(repository) is not None
        parts = repository.split("/")
        return any(regex.fullmatch("/".join(parts[:i])) for i in range(1, len(parts)))


@dataclass(frozen=True)
class Scopes:
    """A key's scopes, parsed: its widest coarse scope (None when it has only object scopes)
    and its object scopes."""

    coarse: str | None
    objects: tuple[ObjectScope, ...] = ()

    @property
    def level(self) -> int:
        return _LEVELS[self.coarse] if self.coarse is not None else 0

    @property
    def full(self) -> bool:
        return self.level >= _LEVELS[ALL]

    def text(self) -> str:
        """The canonical stored form."""
        return " ".join([*([self.coarse] if self.coarse else []),
                         *(o.text() for o in self.objects)])

    def as_list(self) -> list[str]:
        return self.text().split()

    def reaches(self, method: Method) -> bool:
        """Whether the coarse scope alone reaches ``method``."""
        return self.level >= _LEVELS[method.scope]

    def allows(self, method: Method, repository: str | None) -> bool:
        """Whether a key with these scopes may call ``method``; ``repository`` is the full
        name of the repository its ``repository_arg`` names (None: none, or not found)."""
        if self.level >= _LEVELS[method.scope]:
            return True
        right = method.repository_right
        if right is None or repository is None:
            return False
        return any(o.covers(repository) and (o.push or right == PULL) for o in self.objects)

    def reaches_repository(self, repository: str, push: bool) -> bool:
        """Whether a git client with these scopes may pull (or push) the repository called
        ``repository``: ``read`` pulls, ``write``, ``admin`` and ``all`` push, ``none``
        nothing; an object scope by its ``pull`` / ``push`` (docs/serving.md)."""
        if self.level >= _LEVELS[WRITE_SCOPE if push else READ_SCOPE]:
            return True
        return any(o.covers(repository) and (o.push or not push) for o in self.objects)

    def within(self, other: Scopes) -> bool:
        """Whether these scopes grant nothing ``other`` does not (a key may only make keys
        of no more than its own scope)."""
        if self.level > other.level:
            return False
        for scope in self.objects:
            needed = _LEVELS[WRITE_SCOPE] if scope.push else _LEVELS[READ_SCOPE]
            if other.level >= needed:
                continue
            if not any(o.kind == scope.kind and o.pattern == scope.pattern
                       and (o.push or not scope.push) for o in other.objects):
                return False
        return True


FULL = Scopes(coarse=ALL)
#: The coarse scopes a token may be granted, narrowest first (``all`` is ``admin``'s twin).
GRANTABLE = (READ_SCOPE, WRITE_SCOPE, ADMIN_SCOPE)


def level_of(coarse: str) -> int:
    """How far a coarse scope reaches (``read`` < ``write`` < ``admin`` = ``all``)."""
    return _LEVELS[coarse]


def coarse_within(level: int) -> str | None:
    """The widest grantable coarse scope that reaches no further than ``level`` (None: not
    even ``read``)."""
    fitting = [name for name in GRANTABLE if _LEVELS[name] <= level]
    return fitting[-1] if fitting else None



def parse(text: str | list[str] | None) -> Scopes:
    """The scopes a stored string or an API argument names; ``ScopeError`` says what is
    wrong. None (no ``scopes`` given) is ``all``."""
    if text is None:
        return FULL
    items = text.split() if isinstance(text, str) else list(text)
    if not items:
        raise ScopeError("must name at least one scope")
    if len(items) > MAX_SCOPES:
        raise ScopeError(f"at most {MAX_SCOPES} scopes")
    coarse: str | None = None
    objects: list[ObjectScope] = []
    for item in items:
        if not isinstance(item, str) or not item or len(item) > MAX_SCOPE_LENGTH:
            raise ScopeError(f"each scope is a string of 1 to {MAX_SCOPE_LENGTH} characters")
        if item in _LEVELS:
            if coarse is None or _LEVELS[item] > _LEVELS[coarse]:
                coarse = item
            continue
        objects.append(_object_scope(item))
    return Scopes(coarse=coarse, objects=tuple(dict.fromkeys(objects)))


def _object_scope(item: str) -> ObjectScope:
    kind, _, rest = item.partition(":")
    pattern, _, rights = rest.rpartition(":")
    if kind not in (REPOSITORY, REPO_GROUP) or not pattern:
        raise ScopeError(f"`{item}` is no scope: use read, write, admin, all, "
                         "repository:<name>:pull[,push] or repo_group:<path>:pull[,push]")
    if not _NAME.fullmatch(pattern) or any(p in ("", ".", "..") for p in pattern.split("/")):
        raise ScopeError(f"`{item}`: `{pattern}` is no repository or group name")
    wanted = rights.split(",")
    if not wanted or any(r not in (PULL, PUSH) for r in wanted):
        raise ScopeError(f"`{item}`: the rights are pull or pull,push")
    return ObjectScope(kind=kind, pattern=pattern, push=PUSH in wanted)


@cache
def _glob(pattern: str) -> re.Pattern[str]:
    """``*`` matches within one path segment; everything else is literal."""
    return re.compile("[^/]*".join(re.escape(part) for part in pattern.split("*")))
