"""``flushed_or``: what the database refuses becomes the given answer, and the transaction
goes on without it."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from rpcserver.core.errors import ApiError
from rpcserver.db.database import Database
from rpcserver.db.models import User
from rpcserver.db.savepoint import flushed_or


def test_a_refused_write_answers_and_the_transaction_goes_on(db: Database) -> None:
    with db.transaction(write=True) as session:
        with pytest.raises(ApiError) as refused, \
                flushed_or(session, ApiError("user `admin` already exist")):
            session.add(User(username="admin", email="other@example.com"))
        assert refused.value.text == "user `admin` already exist"
        with flushed_or(session, ApiError("unused")):
            session.add(User(username="carol", email="carol@example.com"))
    with db.transaction(write=False) as session:
        names = session.scalars(select(User.username).order_by(User.id)).all()
    assert names == ["default", "admin", "carol"]


def test_a_refusal_nobody_expected_stays_the_database_error(db: Database) -> None:
    with db.transaction(write=True) as session, pytest.raises(IntegrityError), \
            flushed_or(session, lambda: None):
        session.add(User(username="admin", email="x@example.com"))
