"""Finding objects by id or name (API.md §2): an int or a digit-only string is an id."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from .errors import NotFound
from .models import User
from .schemas import MAX_ID


def as_id(value: Any) -> int | None:
    """The id ``value`` names, or None when it is a name."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        return int(value)
    return None


def user_or_none(session: Session, userid: Any) -> User | None:
    ident = as_id(userid)
    if ident is not None:
        return session.get(User, ident) if ident <= MAX_ID else None
    return session.scalars(select(User).where(User.username == str(userid))).first()


def get_user(session: Session, userid: Any) -> User:
    found = user_or_none(session, userid)
    if found is None:
        raise NotFound("user", userid)
    return found
