"""What every backend answers in: refs, commits, trees, pushes, and the ways reading or
writing fails.

Kept apart from ``backend`` (the protocol and the registry) so that a backend's own modules
can use these types without importing the registry that imports them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


class VcsError(Exception):
    """A backend's tool failed (git exited non-zero, timed out, was killed); the message is
    for the server log and already free of secrets. The API answers its own text for it."""


class NoSuchPath(Exception):
    """The path does not exist at that revision, or is not a directory."""


class TooMany(Exception):
    """An answer would hold more entries than the caller's bound; reading stopped there."""

    def __init__(self, bound: int) -> None:
        super().__init__(f"more than {bound}")
        self.bound = bound


@dataclass(frozen=True)
class Refs:
    #: branch name -> commit id
    branches: dict[str, str]
    #: tag name -> commit id (annotated tags peeled)
    tags: dict[str, str]
    #: full ref name -> the id it stores (an annotated tag's own id), for ref updates
    raw: dict[str, str]
    #: bookmark name -> commit id (hg; git has none)
    bookmarks: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Commit:
    raw_id: str
    parents: tuple[str, ...]
    author_name: str
    author_email: str
    timestamp: int
    message: str
    added: list[str] | None = None
    changed: list[str] | None = None
    removed: list[str] | None = None

    @property
    def date(self) -> dt.datetime:
        """Commit time in UTC, without zone (the API prints UTC)."""
        return utc(self.timestamp)

    @property
    def author(self) -> str:
        return f"{self.author_name} <{self.author_email}>"


@dataclass(frozen=True)
class Tree:
    dirs: list[str] = field(default_factory=list)
    files: list[str] = field(default_factory=list)


def utc(timestamp: int) -> dt.datetime:
    """A Unix time as a UTC datetime without zone."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).replace(tzinfo=None)


@dataclass(frozen=True)
class PushRules:
    """What one push may do; the serving code decides it from the caller's rights."""

    #: True when the caller is an admin of the repository: the default branch may then be
    #: deleted or rewritten (force-pushed).
    may_rewrite_default: bool
    #: The largest pack the push may send, in bytes; 0: no limit.
    max_push_bytes: int
    #: Who pushes (a username), for messages and the log.
    caller: str


@dataclass(frozen=True)
class RefUpdate:
    """One ref a push changed: ``old`` is all zeros when created, ``new`` when deleted."""

    ref: str
    old: str
    new: str
