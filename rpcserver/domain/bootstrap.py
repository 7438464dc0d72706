"""A new instance: its config file, its secret key file, its database schema, ``default``
(id 1) and the first admin (id 2), as API.md §3 requires."""

from __future__ import annotations

from pathlib import Path

import tomli_w
from jsonschema import Draft202012Validator
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from rpcserver.core import schemas
from rpcserver.core.config import CONFIG_FILE_NAME, Config
from rpcserver.db import migrations
from rpcserver.db.database import Database
from rpcserver.db.models import GlobalPermission, User
from rpcserver.domain import clone_uri_at_rest
from rpcserver.domain.auth import issue_api_key
from rpcserver.domain.grants import DEFAULT_GLOBAL_PERMISSIONS, DEFAULT_USER_ID


class AlreadyInitialised(Exception):
    pass


def write_config(directory: Path) -> Path:
    """Write a config file with relative paths, so the directory can be moved."""
    path = directory / CONFIG_FILE_NAME
    if path.exists():
        raise AlreadyInitialised(f"{path} already exists")
    values = Config().file_values()
    values.update(database_url="sqlite:///rpcserver.db", repos_root="repos",
                  secret_key_file="secret.keys")  # noqa: S106 (a file name)
    directory.mkdir(parents=True, exist_ok=True)
    path.write_text("# rpcserver configuration; RPCSERVER_<NAME> environment variables "
                    "override these.\n" + tomli_w.dumps(values))
    return path


def seed_default_user(session: Session) -> User:
    """``default`` carries the permissions every user gets; it can never log in."""
    user = session.get(User, DEFAULT_USER_ID)
    if user is not None:
        return user
    # No explicit id: PostgreSQL's sequence would not advance past it. A fresh table gives 1.
    user = User(username="default", email="anonymous@kallithea-scm.org", firstname="Anonymous",
                lastname="User", active=True, admin=False)
    session.add(user)
    session.flush()
    if user.id != DEFAULT_USER_ID:
        raise AlreadyInitialised("the users table is not empty but has no `default` user")
    session.add_all(GlobalPermission(user_id=user.id, name=name)
                    for name in DEFAULT_GLOBAL_PERMISSIONS)
    return user


def create_first_admin(session: Session, username: str, email: str,
                       key_description: str = "created by rpcserver init") -> str:
    """Create the first admin and return its API key (shown once)."""
    if session.scalar(select(User).where(User.admin.is_(True))) is not None:
        raise AlreadyInitialised("the database already has an admin; use "
                                 "`rpcserver create-api-key` for a new key")
    key, _row = issue_api_key(session, _new_admin(session, username, email),
                              description=key_description)
    return key


def _new_admin(session: Session, username: str, email: str) -> User:
    admin = User(username=username, email=email.lower(), firstname="Admin", lastname="",
                 active=True, admin=True)
    session.add(admin)
    session.flush()
    return admin


class RecoveryRefused(Exception):
    """``recover-admin`` cannot make that user an admin; the text says why."""


_USERNAME = Draft202012Validator(schemas.USERNAME)
_EMAIL = Draft202012Validator(schemas.EMAIL)


def recover_admin(session: Session, username: str, email: str | None = None,
                  key_description: str = "created by rpcserver recover-admin") -> str:
    """Make ``username`` an active admin (a new user when ``email`` is given and there is
    none of that name) and return a new API key for it: the way back in when no admin can
    log in, so it needs none (unlike every other admin command)."""
    user = session.scalar(select(User).where(func.lower(User.username) == username.lower()))
    if user is None or user.id == DEFAULT_USER_ID:
        if user is not None or email is None:
            raise RecoveryRefused(f"user `{username}` does not exist; give --email to create "
                                  "it")
        # The rules of create_user: a name every look-up can find, a plausible address.
        if not _USERNAME.is_valid(username) or username.isdigit():
            raise RecoveryRefused(f"`{username}` cannot be a username (letters, digits and "
                                  "`_.@+-`, starting with a letter or digit, not only digits)")
        if not _EMAIL.is_valid(email):
            raise RecoveryRefused(f"`{email}` is not an email address")
        user = _new_admin(session, username, email)
    user.active = True
    user.admin = True
    session.flush()
    key, _row = issue_api_key(session, user, description=key_description)
    return key


def init_database(config: Config, admin_username: str, admin_email: str,
                  key_description: str = "created by rpcserver init") -> str:
    """Create or upgrade the schema, seed the built-in users, make the secret key file;
    returns the admin's key."""
    Path(config.repos_root).mkdir(parents=True, exist_ok=True)
    db = Database.connect(config.database_url)
    try:
        migrations.upgrade(db.engine)
        with db.transaction(write=True) as session:
            seed_default_user(session)
            key = create_first_admin(session, admin_username, admin_email, key_description)
        clone_uri_at_rest.prepare(config, db)
        return key
    finally:
        db.dispose()
