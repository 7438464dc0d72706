"""The permission model (API.md §3): who may do what, and what each method requires.

Levels are ``models.Level`` (NONE < READ < WRITE < ADMIN), on three kinds of object:
repositories, repository groups and user groups. A user's *effective* level on one object is

    ADMIN                          if the user is a global admin,
    ADMIN                          if the user owns the object,
    max(the user's own grant,      else the highest of these (a missing grant is NONE);
        the grants of the *active* user groups the user is a member of,
        the ``default`` user's grant — ignored on a private repository).

Global permissions (``hg.create.repository``, ``hg.usergroup.create.true``, ...) are held by a
user when the user or ``default`` holds them; an admin holds them all.

A ``Requirement`` is declared with each method and checked by the dispatcher, in one place,
after the arguments are valid (API.md §1 row 15). An object requirement (``OnRepo``,
``OnRepoGroup``, ``OnUserGroup``) answers the object's "does not exist" text when the caller
cannot read it, ``Access was denied to this resource.`` when it can read it but needs more, and
leaves the object it loaded in ``ctx.resolved[arg]`` for the handler.

Cost: one object's level is one SQL statement, whatever the size of the database; a user's
levels on every object of a kind (for ``get_user`` and for filtering lists) is one statement
per kind. Nothing here runs a query per row. See docs/permissions.md for a worked example.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Integer,
    Select,
    bindparam,
    case,
    exists,
    func,
    literal,
    literal_column,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased, joinedload

from rpcserver.core.errors import AccessDenied, ApiError, NotFound
from rpcserver.core.registry import Requirement
from rpcserver.db.models import (
    GlobalPermission,
    Level,
    RepoGroup,
    Repository,
    User,
    UserGroup,
    UserGroupMember,
    UserGroupRepoGroupPerm,
    UserGroupRepoPerm,
    UserGroupUserGroupPerm,
    UserRepoGroupPerm,
    UserRepoPerm,
    UserUserGroupPerm,
)
from rpcserver.domain import lookup
from rpcserver.domain.context import CallContext

DEFAULT_USER_ID = 1

#: Global permissions ``default`` holds out of the box (API.md §3).
DEFAULT_GLOBAL_PERMISSIONS = (
    "hg.create.repository",
    "hg.fork.repository",
    "hg.extern_activate.auto",
    "hg.register.manual_activate",
    "repository.read",
    "group.read",
    "usergroup.read",
)

#: What ``get_user`` lists for an admin, who may do everything.
ADMIN_GLOBAL_PERMISSIONS = (
    "hg.admin",
    "hg.create.repository",
    "hg.create.write_on_repogroup.true",
    "hg.fork.repository",
    "hg.usergroup.create.true",
    "hg.extern_activate.auto",
    "hg.register.manual_activate",
    "repository.admin",
    "group.admin",
    "usergroup.admin",
)

CREATE_REPOSITORY = "hg.create.repository"
FORK_REPOSITORY = "hg.fork.repository"
CREATE_USER_GROUP = "hg.usergroup.create.true"


# --- Kinds of object and the wire names of their levels ------------------------------------


@dataclass(frozen=True)
class Kind:
    """A kind of object that carries per-object grants, and where its grants live."""

    #: The wire prefix: ``repository``, ``group`` or ``usergroup``.
    prefix: str
    #: What "does not exist" calls it: ``repository``, ``repository group``, ``user group``.
    label: str
    model: Any
    #: The grant tables: to a user, and to a user group.
    user_perm: Any
    group_perm: Any
    #: The grant tables' column naming the object.
    target: str
    #: Whether objects of this kind can be private (the default grant is then ignored).
    has_private: bool

    def perm_name(self, level: Level) -> str:
        """``repository.read`` for (REPO, READ)."""
        return f"{self.prefix}.{level.name.lower()}"


REPO = Kind("repository", lookup.REPOSITORY, Repository, UserRepoPerm, UserGroupRepoPerm,
            "repo_id", True)
REPO_GROUP = Kind("group", lookup.REPO_GROUP, RepoGroup, UserRepoGroupPerm,
                  UserGroupRepoGroupPerm, "repo_group_id", False)
USER_GROUP = Kind("usergroup", lookup.USER_GROUP, UserGroup, UserUserGroupPerm,
                  UserGroupUserGroupPerm, "target_group_id", False)
KINDS = (REPO, REPO_GROUP, USER_GROUP)


def perm_name(kind: Kind, level: Level) -> str:
    """The wire name of a level: ``perm_name(REPO_GROUP, Level.WRITE) == "group.write"``."""
    return kind.perm_name(level)


def parse_perm(name: str) -> tuple[Kind, Level] | None:
    """``"usergroup.admin"`` -> (USER_GROUP, Level.ADMIN); None when it names no level.

    The caller decides the error: Kallithea answers ``permission `<perm>` does not exist``
    for an unknown name and ``permission `<perm>` is invalid, should start with group.`` for a
    level of the wrong kind (compare ``kind`` with the one the method expects).
    """
    prefix, dot, level_name = name.partition(".")
    if not dot:
        return None
    kind = next((k for k in KINDS if k.prefix == prefix), None)
    level = Level.__members__.get(level_name.upper()) if level_name.islower() else None
    if kind is None or level is None:
        return None
    return kind, level


def _rank(column: Any) -> ColumnElement[int]:
    """A grant's level as an integer in SQL (levels are stored by name, which sorts wrongly)."""
    return case((column == Level.ADMIN, int(Level.ADMIN)),
                (column == Level.WRITE, int(Level.WRITE)),
                (column == Level.READ, int(Level.READ)),
                else_=int(Level.NONE))


def _to_level(rank: int | None) -> Level:
    return Level(rank or 0)


# --- One object ------------------------------------------------------------------------------


#: The user whose levels a statement below computes. A bound parameter, so that each statement
#: is built once per kind and then only given its user (``{USER_PARAM: user.id}`` when it is
#: executed): building one anew (its aliases adapt every column again) cost more than running
#: it (2.6 ms per ``levels()``), and even SQLAlchemy's cache key of a new statement costs about
#: as much as running it. One user per statement: two users in one statement would share it.
USER_PARAM = "perm_user_id"
_USER_ID = bindparam(USER_PARAM, type_=Integer)


@functools.cache
def _object_template(kind: Kind) -> Select[Any]:
    """SELECT object, own grant, best active-group grant, default grant — one statement."""
    user_id = _USER_ID
    model = kind.model
    own = aliased(kind.user_perm)
    dflt = aliased(kind.user_perm)
    via = aliased(kind.group_perm)
    member_of = aliased(UserGroup)
    own_rank = (select(func.max(_rank(own.level)))
                .where(own.user_id == user_id, getattr(own, kind.target) == model.id)
                .scalar_subquery())
    group_rank = (select(func.max(_rank(via.level)))
                  .join(UserGroupMember, UserGroupMember.group_id == via.group_id)
                  .join(member_of, member_of.id == via.group_id)
                  .where(UserGroupMember.user_id == user_id, member_of.active.is_(True),
                         getattr(via, kind.target) == model.id)
                  .scalar_subquery())
    default_rank = (select(func.max(_rank(dflt.level)))
                    .where(dflt.user_id == DEFAULT_USER_ID, getattr(dflt, kind.target) == model.id)
                    .scalar_subquery())
    # The owner comes along: every result shape names it, and it decides the level anyway.
    return select(model, own_rank, group_rank, default_rank).options(joinedload(model.owner))


@functools.cache
def _resolve_template(kind: Kind, admin: bool, by_id: bool) -> Select[Any]:
    """``_object_template`` (for an admin: just the object and its owner) for one object named
    by ``lookup.by_id_or_name``'s parameters."""
    where = lookup.where_named(kind.model, by_id)
    if admin:
        return select(kind.model).options(joinedload(kind.model.owner)).where(where)
    return _object_template(kind).where(where)


@functools.cache
def _level_template(kind: Kind) -> Select[Any]:
    return _object_template(kind).where(kind.model.id == lookup.IDENT)


def _combine(kind: Kind, user: User, obj: Any, own: int | None, group: int | None,
             default: int | None) -> Level:
    if user.admin or obj.owner_id == user.id:
        return Level.ADMIN
    if user.id == DEFAULT_USER_ID:
        # ``default``'s own grants are the default grants: what every user gets, so a private
        # repository ignores them for ``default`` too.
        own = None
    if kind.has_private and obj.private:
        default = None
    return max(_to_level(own), _to_level(group), _to_level(default))


def resolve(session: Session, user: User, kind: Kind, value: Any) -> tuple[Any, Level] | None:
    """The object ``value`` (an id or a name) names and ``user``'s level on it, or None.

    One SQL statement. The level may be ``Level.NONE``: treat such an object as missing
    towards the caller (API.md §2).
    """
    params = lookup.by_id_or_name(value)
    if params is None:
        return None
    statement = _resolve_template(kind, user.admin, "ident" in params)
    if user.admin:
        obj = session.scalars(statement, params).first()
        return None if obj is None else (obj, Level.ADMIN)
    row = session.execute(statement, {**params, USER_PARAM: user.id}).first()
    if row is None:
        return None
    obj, own, group, default = row
    return obj, _combine(kind, user, obj, own, group, default)


def level_on(session: Session, user: User, kind: Kind, obj: Any) -> Level:
    """``user``'s effective level on a loaded object (one statement; none for an admin)."""
    if user.admin or obj.owner_id == user.id:
        return Level.ADMIN
    row = session.execute(_level_template(kind), {"ident": obj.id, USER_PARAM: user.id}).one()
    _obj, own, group, default = row
    return _combine(kind, user, obj, own, group, default)


def find_readable(session: Session, user: User, kind: Kind, value: Any,
                  need: Level = Level.READ) -> Any:
    """The object, if ``user`` holds ``need`` on it; else the API's error.

    Missing or unreadable: ``<kind> `<value>` does not exist``; readable but below ``need``:
    ``Access was denied to this resource.``
    """
    found = resolve(session, user, kind, value)
    if found is None or found[1] < Level.READ:
        raise NotFound(kind.label, value)
    obj, level = found
    if level < need:
        raise AccessDenied()
    return obj


# --- Every object of a kind ----------------------------------------------------------------


@functools.cache
def levels(kind: Kind, admin: bool) -> Select[Any]:
    """SELECT (id, rank) for every object of ``kind`` on which the user has a level > NONE.

    ``rank`` is ``int(Level)``; ``admin`` is the user's flag, and the statement is executed with
    ``{USER_PARAM: user.id}``. Use it as a subquery to filter or annotate a list, and build
    that statement once too::

        lv = levels(REPO, user.admin).subquery()
        select(Repository).join(lv, lv.c.id == Repository.id)

    One statement, whatever the number of rows; an admin gets every object at ADMIN.
    """
    model = kind.model
    admin_rank = literal_column(str(int(Level.ADMIN)), Integer)
    if admin:
        return select(model.id.label("id"), admin_rank.label("rank"))
    user_id = _USER_ID
    own = aliased(kind.user_perm)
    dflt = aliased(kind.user_perm)
    via = aliased(kind.group_perm)
    member_of = aliased(UserGroup)
    default_source = (select(getattr(dflt, kind.target).label("id"),
                             _rank(dflt.level).label("rank"))
                      .where(dflt.user_id == DEFAULT_USER_ID))
    if kind.has_private:
        default_source = default_source.join(
            model, model.id == getattr(dflt, kind.target)).where(model.private.is_(False))
    sources = union_all(
        select(model.id.label("id"), admin_rank.label("rank")).where(model.owner_id == user_id),
        # For ``default`` itself its own grants are the default grants (see _combine).
        select(getattr(own, kind.target).label("id"), _rank(own.level).label("rank"))
        .where(own.user_id == user_id, own.user_id != DEFAULT_USER_ID),
        select(getattr(via, kind.target).label("id"), _rank(via.level).label("rank"))
        .join(UserGroupMember, UserGroupMember.group_id == via.group_id)
        .join(member_of, member_of.id == via.group_id)
        .where(UserGroupMember.user_id == user_id, member_of.active.is_(True)),
        default_source,
    ).subquery()
    best = func.max(sources.c.rank)
    return (select(sources.c.id.label("id"), best.label("rank"))
            .group_by(sources.c.id).having(best > int(Level.NONE)))


@functools.cache
def readable_ids(kind: Kind, need: Level = Level.READ) -> Select[Any]:
    """SELECT id of every object of ``kind`` where a non-admin user holds at least ``need``
    (executed with ``{USER_PARAM: user.id}``; an admin reads everything).

    List methods use it through ``readable_page``.
    """
    lv = levels(kind, False).subquery()
    return select(lv.c.id).where(lv.c.rank >= int(need))


def readable_page(query: Select[*tuple[Any, ...]], kind: Kind,
                  admin: bool) -> Select[*tuple[Any, ...]]:
    """``query`` (of ``kind``'s objects) cut to those the user can read (all, for an admin),
    by id, one page; executed with ``{USER_PARAM: user.id, "limit": ..., "offset": ...}``.

    For a list method's statement, built once per ``admin`` (``functools.cache``).
    """
    if not admin:
        query = query.where(kind.model.id.in_(readable_ids(kind)))
    return (query.order_by(kind.model.id)
            .limit(bindparam("limit", type_=Integer)).offset(bindparam("offset", type_=Integer)))


def effective_permissions(session: Session, user: User, kind: Kind) -> dict[str, str]:
    """``{object name: "repository.write", ...}`` for every object ``user`` can read.

    Ordered by name; objects at NONE are left out (they do not exist for the user).
    """
    names = _perm_names(kind)
    rows = session.execute(_effective_template(kind, user.admin),
                           {USER_PARAM: user.id})
    return {name: names[rank] for name, rank in rows}


@functools.cache
def _effective_template(kind: Kind, admin: bool) -> Select[Any]:
    return _names_and_ranks(kind, admin).order_by(kind.model.name)


@functools.cache
def _names_and_ranks(kind: Kind, admin: bool) -> Select[Any]:
    """SELECT (name, rank) of every object of ``kind`` the user has a level on."""
    lv = levels(kind, admin).subquery()
    return select(kind.model.name.label("name"), lv.c.rank).join(lv, lv.c.id == kind.model.id)


@functools.cache
def _perm_names(kind: Kind) -> dict[int, str]:
    """rank -> wire name (``repository.read``), looked up once per row instead of built."""
    return {int(level): kind.perm_name(level) for level in Level}


#: get_user's ``permissions`` keys, one per kind, in wire order.
_BLOCKS = ((REPO, "repositories"), (REPO_GROUP, "repositories_groups"),
           (USER_GROUP, "user_groups"))


def user_permissions(session: Session, user: User) -> dict[str, Any]:
    """``get_user``'s ``permissions`` block: two statements (one for an admin), whatever the
    database holds; the same as ``effective_permissions`` for each kind."""
    found: dict[str, Any] = {"global": global_permissions(session, user)}
    blocks: list[dict[str, str]] = []
    for _kind, key in _BLOCKS:
        found[key] = {}
        blocks.append(found[key])
    names = [_perm_names(kind) for kind, _key in _BLOCKS]
    rows = session.connection().execute(_all_effective_template(user.admin),
                                        {USER_PARAM: user.id})
    for name, rank, index in rows.all():
        blocks[index][name] = names[index][rank]
    return found


@functools.cache
def _all_effective_template(admin: bool) -> CompoundSelect[Any]:
    """Every kind's ``_names_and_ranks`` in one statement, tagged with its index in
    ``_BLOCKS`` and ordered by it, then by name."""
    parts = [_names_and_ranks(kind, admin).add_columns(literal(index).label("block"))
             for index, (kind, _key) in enumerate(_BLOCKS)]
    return union_all(*parts).order_by(literal_column("block"), literal_column("name"))


# --- Global permissions --------------------------------------------------------------------


def global_permissions(session: Session, user: User) -> list[str]:
    """A user's global permissions: its own grants plus those of ``default``, sorted."""
    if user.admin:
        return list(ADMIN_GLOBAL_PERMISSIONS)
    names = session.scalars(
        select(GlobalPermission.name).where(
            GlobalPermission.user_id.in_((user.id, DEFAULT_USER_ID)))
    ).all()
    return sorted(set(names))


def has_global(session: Session, user: User, *names: str) -> bool:
    """Whether ``user`` holds any of the global permissions ``names`` (admins hold all)."""
    if user.admin:
        return True
    return bool(session.scalar(select(exists().where(
        GlobalPermission.user_id.in_((user.id, DEFAULT_USER_ID)),
        GlobalPermission.name.in_(names)))))


def default_grant_for_new(session: Session, kind: Kind) -> Level:
    """The level ``default`` gets on a new object of ``kind``, from its global permissions.

    ``default`` holding ``repository.read`` (the seeded value) means a new public repository
    grants ``default`` read; likewise ``group.*`` for repository groups and ``usergroup.*`` for
    user groups. Insert that grant row when the object is created (not for a private
    repository); later changes of the global value do not touch existing objects.
    """
    names = session.scalars(select(GlobalPermission.name).where(
        GlobalPermission.user_id == DEFAULT_USER_ID,
        GlobalPermission.name.startswith(kind.prefix + ".", autoescape=True))).all()
    found = [parsed[1] for parsed in map(parse_perm, names)
             if parsed is not None and parsed[0] is kind]
    return max(found, default=Level.NONE)


# --- Requirements: what a method needs -----------------------------------------------------


class _Admin:
    description = "admin"

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        if not ctx.user.admin:
            raise AccessDenied()


class _Anyone:
    description = "any user with a valid key"

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        return None


ADMIN: Requirement = _Admin()
ANYONE: Requirement = _Anyone()


class SelfOrAdmin:
    """The caller may name itself (by id or by its own name); only an admin anyone else.

    ``userid`` is resolved the way every look-up resolves it (a digit-only string is an id,
    API.md §2) and the ids are compared: comparing the raw value with the caller's name let a
    user named ``2`` read user id 2. A user that is not the caller, or no user, is refused
    with one text, so a non-admin learns nothing about who exists. Stores the user found in
    ``ctx.resolved[arg]``.
    """

    def __init__(self, arg: str) -> None:
        self.arg = arg
        self.description = f"admin, or any user for itself (`{arg}` omitted or its own)"

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        value = args.get(self.arg)
        if value is None:
            return
        if ctx.user.admin:
            ctx.resolved[self.arg] = lookup.get_user(ctx.session, value)
            return
        found = lookup.user_or_none(ctx.session, value)
        if found is None or found.id != ctx.user.id:
            raise ApiError("userid is not the same as your user")
        ctx.resolved[self.arg] = found


class HasGlobal:
    """Admin, or a user holding any of the global permissions ``names`` (itself or via
    ``default``); ``Access was denied to this resource.`` otherwise."""

    def __init__(self, *names: str) -> None:
        if not names:
            raise ValueError("HasGlobal needs at least one permission name")
        self.names = names
        self.description = "admin or " + " or ".join(f"`{n}`" for n in names)

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        if not has_global(ctx.session, ctx.user, *self.names):
            raise AccessDenied()


class _OnObject:
    """At least ``level`` on the object named by argument ``arg`` (admins and owners pass).

    Stores the object in ``ctx.resolved[arg]``. With ``optional=True`` an absent or null
    argument passes (the handler decides what no object means).
    """

    kind: Kind

    def __init__(self, arg: str, level: Level, *, optional: bool = False) -> None:
        if level is Level.NONE:
            raise ValueError("an object requirement needs at least READ")
        self.arg = arg
        self.level = level
        self.optional = optional
        self.description = f"admin, owner, or `{self.kind.perm_name(level)}` on `{arg}`"

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        value = args.get(self.arg)
        if value is None and self.optional:
            return
        ctx.resolved[self.arg] = find_readable(ctx.session, ctx.user, self.kind, value,
                                               self.level)


class OnRepo(_OnObject):
    kind = REPO


class OnRepoGroup(_OnObject):
    kind = REPO_GROUP


class OnUserGroup(_OnObject):
    kind = USER_GROUP


class AllOf:
    """Every requirement, checked in order; the first one not met answers."""

    def __init__(self, *requirements: Requirement) -> None:
        self.requirements = requirements
        # A requirement without a description (an argument check) is not a permission.
        self.description = " and ".join(r.description for r in requirements if r.description)

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        for requirement in self.requirements:
            requirement.check(ctx, args)


class AnyOf:
    """At least one requirement; when none is met, the last one's error answers."""

    def __init__(self, *requirements: Requirement) -> None:
        if not requirements:
            raise ValueError("AnyOf needs at least one requirement")
        self.requirements = requirements
        self.description = " or ".join(f"({r.description})" for r in requirements)

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        *alternatives, last = self.requirements
        for requirement in alternatives:
            try:
                requirement.check(ctx, args)
            except ApiError:
                continue
            return
        last.check(ctx, args)
