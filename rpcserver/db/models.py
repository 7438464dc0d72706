"""The database schema: typed SQLAlchemy 2 models with their invariants in the schema.

Serialization lives in ``serialize.py``, never here, so that no secret can leak through a
model's default representation. Every table uses AUTOINCREMENT on SQLite so that an id is
never reused after a delete (scripts remember ids).
"""

from __future__ import annotations

import datetime as dt
import enum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    DateTime,
    Enum,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> dt.datetime:
    """Naive UTC: both databases store it the same way, and the API prints it without zone."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    # Inherited by every table that declares no table args of its own.
    __table_args__: Any = {"sqlite_autoincrement": True}  # noqa: RUF012


class Level(enum.IntEnum):
    """A permission level on a repository, repository group or user group; ordered."""

    NONE = 0
    READ = 1
    WRITE = 2
    ADMIN = 3


def _level_column() -> Mapped[Level]:
    return mapped_column(
        Enum(Level, native_enum=False, length=8, validate_strings=True,
             create_constraint=True, name="level"),
        nullable=False,
    )


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        Index("uq_users_username_lower", func.lower("username"), unique=True),
        CheckConstraint("email = lower(email)", name="email_lower"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(255), nullable=False, index=True)
    email: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    password_hash: Mapped[str | None] = mapped_column(String(255))
    firstname: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    lastname: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    admin: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    extern_type: Mapped[str] = mapped_column(String(255), nullable=False, default="internal")
    extern_name: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    last_login: Mapped[dt.datetime | None] = mapped_column(DateTime)

    api_keys: Mapped[list[ApiKey]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True)
    ip_rules: Mapped[list[UserIpRule]] = relationship(
        back_populates="user", cascade="all, delete-orphan", passive_deletes=True,
        order_by="UserIpRule.id")


class ApiKey(Base):
    """An API key, kept only as its SHA-256 digest; the full key is shown once at creation."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    digest: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    #: The last characters of the key, so an admin can tell keys apart without the secret.
    suffix: Mapped[str] = mapped_column(String(8), nullable=False)
    description: Mapped[str] = mapped_column(String(255), nullable=False, default="")
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    expires_on: Mapped[dt.datetime | None] = mapped_column(DateTime)
    revoked_on: Mapped[dt.datetime | None] = mapped_column(DateTime)
    last_used_on: Mapped[dt.datetime | None] = mapped_column(DateTime)
    #: What the key may do, space-separated (``domain.scopes``): ``all`` is its user's full
    #: rights, what every key made before scopes has.
    scopes: Mapped[str] = mapped_column(String(2048), nullable=False, default="all",
                                        server_default="all")
    #: Networks the key may be used from, space-separated; None: wherever its user may.
    ip_ranges: Mapped[str | None] = mapped_column(String(2048))
    #: A token exchanged at ``/_admin/token`` is a short-lived key whose parent is the key it
    #: was exchanged with: revoking, rotating or deleting the parent ends it.
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("api_keys.id", ondelete="CASCADE"), index=True)

    user: Mapped[User] = relationship(back_populates="api_keys")


class UserIpRule(Base):
    """An address or network a user's API calls may come from; no rule means any address."""

    __tablename__ = "user_ip_rules"
    __table_args__ = (UniqueConstraint("user_id", "ip_addr"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    ip_addr: Mapped[str] = mapped_column(String(64), nullable=False)

    user: Mapped[User] = relationship(back_populates="ip_rules")


class GlobalPermission(Base):
    """A global permission (``hg.create.repository``, ...) granted to a user or to ``default``."""

    __tablename__ = "global_permissions"
    __table_args__ = (UniqueConstraint("user_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)
    name: Mapped[str] = mapped_column(String(64), nullable=False)


class UserGroup(Base):
    __tablename__ = "user_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    active: Mapped[bool] = mapped_column(Boolean, nullable=False, default=True)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    owner: Mapped[User] = relationship()
    members: Mapped[list[UserGroupMember]] = relationship(
        back_populates="group", cascade="all, delete-orphan", passive_deletes=True,
        order_by="UserGroupMember.id")


class UserGroupMember(Base):
    __tablename__ = "user_group_members"
    __table_args__ = (UniqueConstraint("group_id", "user_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)

    group: Mapped[UserGroup] = relationship(back_populates="members")
    user: Mapped[User] = relationship()


class RepoGroup(Base):
    """A repository group: a directory under the repos root, named by its full path."""

    __tablename__ = "repo_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: The full path, e.g. ``projects/tools``.
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    parent_id: Mapped[int | None] = mapped_column(
        ForeignKey("repo_groups.id"), index=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)

    owner: Mapped[User] = relationship()
    parent: Mapped[RepoGroup | None] = relationship(remote_side="RepoGroup.id")


class Repository(Base):
    """A bare git repository under the repos root at ``name`` (its full path)."""

    __tablename__ = "repositories"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(255), nullable=False, unique=True)
    group_id: Mapped[int | None] = mapped_column(ForeignKey("repo_groups.id"), index=True)
    repo_type: Mapped[str] = mapped_column(String(8), nullable=False, default="git")
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    private: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    #: As the API answers it: a password in it is stored masked (``https://u:***@h/r``) ...
    clone_uri: Mapped[str | None] = mapped_column(String(2048))
    #: ... and the whole clone_uri, password included, here, encrypted (``clone_uri_at_rest``);
    #: loaded only when used (a pull), not with every permission check.
    clone_uri_encrypted: Mapped[str | None] = mapped_column(Text, deferred=True)
    landing_rev: Mapped[str] = mapped_column(String(255), nullable=False, default="rev:tip")
    enable_statistics: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    enable_downloads: Mapped[bool] = mapped_column(Boolean, nullable=False, default=False)
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    fork_of_id: Mapped[int | None] = mapped_column(ForeignKey("repositories.id"), index=True)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow)
    updated_on: Mapped[dt.datetime] = mapped_column(
        DateTime, nullable=False, default=utcnow, onupdate=utcnow)
    #: ``last_changeset`` as answered by the API, refreshed whenever the server changes the
    #: repository, so reads never have to run git.
    changeset_cache: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    owner: Mapped[User] = relationship()
    group: Mapped[RepoGroup | None] = relationship()
    fork_of: Mapped[Repository | None] = relationship(remote_side="Repository.id")


class RepoFollower(Base):
    __tablename__ = "repo_followers"
    __table_args__ = (UniqueConstraint("repo_id", "user_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    repo_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True)

    user: Mapped[User] = relationship()


# Grants: one small table per (who, on what). A missing row means "no grant".


class UserRepoPerm(Base):
    __tablename__ = "user_repo_perms"
    __table_args__ = (UniqueConstraint("user_id", "repo_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    repo_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False, index=True)
    level: Mapped[Level] = _level_column()


class UserGroupRepoPerm(Base):
    __tablename__ = "user_group_repo_perms"
    __table_args__ = (UniqueConstraint("group_id", "repo_id"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), nullable=False)
    repo_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), nullable=False, index=True)
    level: Mapped[Level] = _level_column()


class UserRepoGroupPerm(Base):
    __tablename__ = "user_repo_group_perms"
    __table_args__ = (UniqueConstraint("user_id", "repo_group_id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    repo_group_id: Mapped[int] = mapped_column(
        ForeignKey("repo_groups.id", ondelete="CASCADE"), nullable=False, index=True)
    level: Mapped[Level] = _level_column()


class UserGroupRepoGroupPerm(Base):
    __tablename__ = "user_group_repo_group_perms"
    __table_args__ = (UniqueConstraint("group_id", "repo_group_id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), nullable=False)
    repo_group_id: Mapped[int] = mapped_column(
        ForeignKey("repo_groups.id", ondelete="CASCADE"), nullable=False, index=True)
    level: Mapped[Level] = _level_column()


class UserUserGroupPerm(Base):
    """A user's permission on a user group (who may read or administer the group)."""

    __tablename__ = "user_user_group_perms"
    __table_args__ = (UniqueConstraint("user_id", "target_group_id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    user_id: Mapped[int] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), nullable=False)
    target_group_id: Mapped[int] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), nullable=False, index=True)
    level: Mapped[Level] = _level_column()


class UserGroupUserGroupPerm(Base):
    """A user group's permission on another user group."""

    __tablename__ = "user_group_user_group_perms"
    __table_args__ = (UniqueConstraint("group_id", "target_group_id"),
                      {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[int] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), nullable=False)
    target_group_id: Mapped[int] = mapped_column(
        ForeignKey("user_groups.id", ondelete="CASCADE"), nullable=False, index=True)
    level: Mapped[Level] = _level_column()


class Gist(Base):
    """A gist: a few files kept as a git repository in the store's internal gist directory
    (``vcs.gists``), reached by ``access_id``: the id as text when public, 20 random
    characters when private (Kallithea's)."""

    __tablename__ = "gists"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    access_id: Mapped[str] = mapped_column(String(64), nullable=False, unique=True)
    description: Mapped[str] = mapped_column(Text, nullable=False, default="")
    owner_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False, index=True)
    gist_type: Mapped[str] = mapped_column(String(16), nullable=False)
    #: A unix time, or -1 for never (Kallithea's float, answered as it is).
    expires: Mapped[float] = mapped_column(Float(53), nullable=False, default=-1.0)
    created_on: Mapped[dt.datetime] = mapped_column(DateTime, nullable=False, default=utcnow,
                                                    index=True)
