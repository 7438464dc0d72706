"""Gists on disk: each one a bare git repository at ``.rpcserver/gists/<access_id>``, inside
the store's internal directory, which no repository or group name can reach
(``Store.path`` refuses it, and names begin with a letter or digit).

The domain reaches the git part (``vcs.git.gist``) only through this module, as it reaches
repositories only through ``vcs.backend``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from rpcserver.vcs.backend import Settings
from rpcserver.vcs.git import gist as git_gist
from rpcserver.vcs.git.command import Git
from rpcserver.vcs.store import INTERNAL, Store

#: Where gists live, under the store's internal directory.
GISTS = "gists"
#: An access id: the id as digits (public) or 20 letters and digits (private).
_ACCESS_ID = re.compile(r"^[A-Za-z0-9]{1,64}\Z")
#: The longest file name (bytes of UTF-8): what file systems and git's tools hold.
NAME_MAX_BYTES = 255


def directory(store: Store) -> Path:
    return store.internal / GISTS


def path(store: Store, access_id: str) -> Path:
    """The repository of gist ``access_id``; ``ValueError`` for anything that is not one."""
    if not _ACCESS_ID.fullmatch(access_id):
        raise ValueError(f"not a gist access id: {access_id!r}")
    return directory(store) / access_id


def relative_name(access_id: str) -> str:
    """How the journal names a gist's directory (relative to the root): ``known`` is asked
    about it after a crash (``domain.repositories.name_known``)."""
    return f"{INTERNAL}/{GISTS}/{access_id}"


def access_id_of(name: str) -> str | None:
    """The access id a journal name (``relative_name``) stands for, or None."""
    prefix = f"{INTERNAL}/{GISTS}/"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    return rest if _ACCESS_ID.fullmatch(rest) else None


def file_name_problem(name: str) -> str | None:
    """Why ``name`` cannot name a file of a gist (a plain base name), or None."""
    if not name:
        return "a file name must not be empty"
    if "/" in name or "\0" in name:
        return "a file name must not contain `/` or NUL (gists hold no directories)"
    if name in (".", ".."):
        return "a file name must not be `.` or `..`"
    if name.lower() == ".git":
        return "a file name must not be `.git`"
    try:
        encoded = name.encode()
    except UnicodeEncodeError:
        return "a file name must be valid Unicode text"
    if len(encoded) > NAME_MAX_BYTES:
        return f"a file name must be at most {NAME_MAX_BYTES} bytes long"
    return None


def _git(settings: Settings) -> Git:
    return Git.find(settings.timeout)


def write(settings: Settings, target: Path, files: Sequence[tuple[str, bytes]], *,
          message: str, author: tuple[str, str]) -> str:
    """Make the new, empty directory ``target`` a gist holding ``files`` in one commit;
    answers its id. ``VcsError`` when git fails."""
    return git_gist.write(_git(settings), target, files, message=message, author=author)


def read(settings: Settings, gist: Path) -> list[tuple[str, bytes]]:
    """The files of the gist at ``gist`` (name, content)."""
    return git_gist.read(_git(settings), gist)
