"""Model -> the exact result dicts Kallithea clients expect (API.md §4).

Explicit functions, one per shape, so that a field (a hash, a key, a password) can only reach a
client by being written here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from .models import User, UserGroup


def iso_date(value: dt.datetime | None) -> str | None:
    """``2026-11-23T17:16:41.587``: milliseconds, no zone, no fraction when it is zero."""
    if value is None:
        return None
    millis = value.microsecond // 1000
    base = value.replace(microsecond=0).isoformat()
    return f"{base}.{millis:03d}" if millis else base


def user(u: User) -> dict[str, Any]:
    return {
        "user_id": u.id,
        "username": u.username,
        "firstname": u.firstname,
        "lastname": u.lastname,
        "email": u.email,
        # Kallithea lists a user's additional addresses here; we keep one address per user.
        "emails": [],
        "active": u.active,
        "admin": u.admin,
    }


def user_group(g: UserGroup, members: Iterable[User]) -> dict[str, Any]:
    """A user group; ``members`` are passed in so that a list loads them in one query."""
    return {
        "users_group_id": g.id,
        "group_name": g.name,
        "group_description": g.description,
        "active": g.active,
        "owner": g.owner.username,
        "members": [user(m) for m in members],
    }
