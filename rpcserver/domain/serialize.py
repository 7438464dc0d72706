"""Rows -> the exact result dicts Kallithea clients expect (API.md §4).

Explicit functions, one per shape, so that a field (a hash, a key, a password) can only reach a
client by being written here. They read the rows of ``domain.rows`` (reads and writes alike:
a write reads its answer's row back), by position where a list is long.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import Any

from rpcserver.domain.rows import REPO_GROUP_ANSWER, REPOSITORY_ANSWER, USER_GROUP_ANSWER
from rpcserver.vcs.clone_uri import mask
from rpcserver.vcs.model import Commit


def iso_date(value: dt.datetime | None) -> str | None:
    """``2026-11-23T17:16:41.587``: milliseconds, no zone, no fraction when it is zero."""
    if value is None:
        return None
    millis = value.microsecond // 1000
    base = value.replace(microsecond=0).isoformat()
    return f"{base}.{millis:03d}" if millis else base


def user(u: Any) -> dict[str, Any]:
    """A user from anything with its public columns as attributes: a row of
    ``rows.USER_COLUMNS``, the caller's ``Actor``, a ``User`` a write just changed."""
    return _user(u.id, u.username, u.firstname, u.lastname, u.email, u.active, u.admin)


def users_from_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    """Users from rows of ``rows.USER_COLUMNS``, read by position: building an ORM object
    (or reading a row by attribute name) costs more than the whole answer."""
    return [_user(*row) for row in rows]


def _user(user_id: int, username: str, firstname: str, lastname: str, email: str,
          active: bool, admin: bool) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "username": username,
        "firstname": firstname,
        "lastname": lastname,
        "email": email,
        # Kallithea lists every address of the user here, the primary first; a user has one.
        "emails": [email],
        "active": active,
        "admin": admin,
    }


def user_group(row: Sequence[Any], members: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """A user group from its row (``rows.select_of(USER_GROUP)``); ``members`` (rows of
    ``rows.USER_COLUMNS``) are passed in so that a list loads them in one query."""
    group_id, name, description, active, owner = row[:USER_GROUP_ANSWER]
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


def repository(row: Sequence[Any]) -> dict[str, Any]:
    """A repository from its row (``rows.select_of(REPO)``). A password in ``clone_uri`` is
    masked (API.md §7)."""
    return _repository(*row[:REPOSITORY_ANSWER])


def repositories_from_rows(rows: Iterable[Sequence[Any]]) -> list[dict[str, Any]]:
    return [_repository(*row[:REPOSITORY_ANSWER]) for row in rows]


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
        "description": description,
        "landing_rev": landing_rev.split(":", 1),
        "owner": owner,
        "fork_of": fork_of,
        "enable_statistics": enable_statistics,
        "enable_downloads": enable_downloads,
        "last_changeset": dict(changeset_cache or EMPTY_CHANGESET),
    }


def repo_group(row: Sequence[Any], repositories: Iterable[str]) -> dict[str, Any]:
    """A repository group from its row (``rows.select_of(REPO_GROUP)``); ``repositories``
    (names of the repositories directly inside) are passed in so that a list loads them in
    one query."""
    group_id, name, description, parent, owner = row[:REPO_GROUP_ANSWER]
    return {
        "group_id": group_id,
        "group_name": name,
        "group_description": description,
        "parent_group": parent,
        "repositories": list(repositories),
        "owner": owner,
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
