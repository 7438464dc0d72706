"""Model -> the exact result dicts Kallithea clients expect (API.md §4).

Explicit functions, one per shape, so that a field (a hash, a key, a password) can only reach a
client by being written here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from rpcserver.db.models import RepoGroup, Repository, User, UserGroup
from rpcserver.vcs.clone_uri import mask
from rpcserver.vcs.model import Commit


def iso_date(value: dt.datetime | None) -> str | None:
    """``2026-11-23T17:16:41.587``: milliseconds, no zone, no fraction when it is zero."""
    if value is None:
        return None
    millis = value.microsecond // 1000
    base = value.replace(microsecond=0).isoformat()
    return f"{base}.{millis:03d}" if millis else base


def user(u: User) -> dict[str, Any]:
    return _user(u.id, u.username, u.firstname, u.lastname, u.email, u.active, u.admin)


#: The columns of a user, in the order ``users_from_rows`` reads them. A list of users selects
#: these rather than ``User`` objects, and reads each row by position: building an ORM object
#: (or reading a row by attribute name) costs more than the whole answer.
USER_COLUMNS = (User.id, User.username, User.firstname, User.lastname, User.email,
                User.active, User.admin)


def users_from_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Users from rows of ``USER_COLUMNS``."""
    return [_user(*row) for row in rows]


def _user(user_id: int, username: str, firstname: str, lastname: str, email: str,
          active: bool, admin: bool) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "username": username,
        "firstname": firstname,
        "lastname": lastname,
        "email": email,
        # Kallithea lists a user's additional addresses here; we keep one address per user.
        "emails": [],
        "active": active,
        "admin": admin,
    }


def user_group(g: UserGroup, members: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """A user group; ``members`` (rows of ``USER_COLUMNS``) are passed in so that a list
    loads them in one query."""
    return _user_group(g.id, g.name, g.description, g.active, g.owner.username, members)


#: The columns of a user group but its owner's name (which a list joins), as for users.
USER_GROUP_COLUMNS = (UserGroup.id, UserGroup.name, UserGroup.description, UserGroup.active)


def user_group_from_row(row: Sequence[Any], members: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """A user group from a row of ``USER_GROUP_COLUMNS`` and the owner's name."""
    group_id, name, description, active, owner = row
    return _user_group(group_id, name, description, active, owner, members)


def _user_group(group_id: int, name: str, description: str, active: bool, owner: str,
                members: Iterable[Sequence[Any]]) -> dict[str, Any]:
    return {
        "users_group_id": group_id,
        "group_name": name,
        "group_description": description,
        "active": active,
        "owner": owner,
        "members": users_from_rows(members),
    }


# -- repositories, repository groups, changesets (API.md §4) ------------------------------

#: ``last_changeset`` of a repository without commits.
EMPTY_CHANGESET: dict[str, Any] = {
    "short_id": "000000000000",
    "raw_id": "0" * 40,
    "revision": -1,
    "message": "",
    "date": "1970-01-01T00:00:00",
    "author": "",
}


def repository(r: Repository) -> dict[str, Any]:
    """A repository; ``owner`` and ``fork_of`` should be loaded with it.
    A password in ``clone_uri`` is masked (API.md §7)."""
    return _repository(r.id, r.name, r.repo_type, r.clone_uri, r.private, r.created_on,
                       r.description, r.landing_rev, r.owner.username,
                       r.fork_of.name if r.fork_of is not None else None, r.enable_statistics,
                       r.enable_downloads, r.changeset_cache)


#: The columns of a repository, in the order ``repositories_from_rows`` reads them, but for
#: the owner's name and the name of the repository it is a fork of: a list selects these
#: (joining both) rather than ``Repository`` objects, as for users.
REPOSITORY_COLUMNS = (Repository.id, Repository.name, Repository.repo_type,
                      Repository.clone_uri, Repository.private, Repository.created_on,
                      Repository.description, Repository.landing_rev)
REPOSITORY_FLAGS = (Repository.enable_statistics, Repository.enable_downloads,
                    Repository.changeset_cache)


def repositories_from_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Repositories from rows of ``REPOSITORY_COLUMNS``, owner name, fork-of name,
    ``REPOSITORY_FLAGS``."""
    return [_repository(*row) for row in rows]


def _repository(repo_id: int, name: str, repo_type: str, clone_uri: str | None,
                private: bool, created_on: dt.datetime, description: str, landing_rev: str,
                owner: str, fork_of: str | None, enable_statistics: bool,
                enable_downloads: bool, changeset_cache: dict[str, Any] | None
                ) -> dict[str, Any]:
    return {
        "repo_id": repo_id,
        "repo_name": name,
        "repo_type": repo_type,
        "clone_uri": mask(clone_uri),
        "private": private,
        "created_on": iso_date(created_on),
        "description": description or name,
        "landing_rev": landing_rev.split(":", 1),
        "owner": owner,
        "fork_of": fork_of,
        "enable_statistics": enable_statistics,
        "enable_downloads": enable_downloads,
        "last_changeset": dict(changeset_cache or EMPTY_CHANGESET),
    }


def repo_group(g: RepoGroup, repositories: Iterable[str]) -> dict[str, Any]:
    """A repository group; ``repositories`` (names of the repositories directly inside) are
    passed in so that a list loads them in one query."""
    return {
        "group_id": g.id,
        "group_name": g.name,
        "group_description": g.description,
        "parent_group": g.parent.name if g.parent is not None else None,
        "repositories": list(repositories),
        "owner": g.owner.username,
    }


def member(name: str, kind: str, permission: str) -> dict[str, Any]:
    """One grant, as ``members`` lists it: ``kind`` is ``user`` or ``user_group``."""
    return {"name": name, "type": kind, "permission": permission}


def changeset(c: Commit, revision: int, *, with_file_list: bool = False) -> dict[str, Any]:
    """A changeset as get_changesets and ``last_changeset`` give it."""
    data: dict[str, Any] = {
        "short_id": c.raw_id[:12],
        "raw_id": c.raw_id,
        "revision": revision,
        "message": c.message,
        "date": iso_date(c.date),
        "author": c.author,
    }
    if with_file_list:
        data.update(added=c.added or [], changed=c.changed or [], removed=c.removed or [])
    return data


def changeset_detail(c: Commit, revision: int) -> dict[str, Any]:
    """A changeset as get_changeset gives it: the author split into name and email."""
    return {
        "raw_id": c.raw_id,
        "short_id": c.raw_id[:12],
        "revision": revision,
        "date": iso_date(c.date),
        "message": c.message,
        "author": {"name": c.author_name, "email": c.author_email},
        "added": c.added or [],
        "changed": c.changed or [],
        "removed": c.removed or [],
    }
