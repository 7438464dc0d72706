"""Effective levels (API.md §3): what a user may do on each object, in SQL.

A user's *effective* level on one object is

    ADMIN                          if the user is a global admin,
    ADMIN                          if the user owns the object,
    max(the user's own grant,      else the highest of these (a missing grant is NONE);
        the grants of the *active* user groups the user is a member of,
        the ``default`` user's grant — ignored on a private repository).

Global permissions (``hg.create.repository``, ``hg.usergroup.create.true``, ...) are held by a
user when the user or ``default`` holds them; an admin holds them all.

Cost: one object's level is one SQL statement, whatever the size of the database; a user's
levels on every object of a kind (for ``get_user`` and for filtering lists) is one statement
per kind. Nothing here runs a query per row. See docs/permissions.md for a worked example.

Everything here runs on a Core connection and answers rows (``domain.rows``): a read method's
``ctx.conn``, or a write's (its session's connection), so both kinds of method check the same
rules with the same statements. ``caller`` is an ``Actor`` (anything with ``id`` and
``admin``).
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Connection,
    Integer,
    Row,
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
from sqlalchemy.orm import aliased

from rpcserver.core.errors import AccessDenied, NotFound
from rpcserver.db.models import (
    GlobalPermission,
    Level,
    UserGroup,
    UserGroupMember,
)
from rpcserver.domain import lookup, rows
from rpcserver.domain.context import Actor
from rpcserver.domain.grants import (
    ADMIN_GLOBAL_PERMISSIONS,
    DEFAULT_USER_ID,
    REPO,
    REPO_GROUP,
    USER_GROUP,
    Kind,
)


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
    """SELECT the object's row (``rows.select_of``), own grant, best active-group grant,
    default grant — one statement."""
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
    return rows.select_of(kind).add_columns(own_rank.label("own_rank"),
                                            group_rank.label("group_rank"),
                                            default_rank.label("default_rank"))


@functools.cache
def _resolve_template(kind: Kind, admin: bool, by_id: bool) -> Select[Any]:
    """``_object_template`` (for an admin: just the object's row) for one object named by
    ``lookup.by_id_or_name``'s parameters."""
    where = lookup.where_named(kind.model, by_id)
    if admin:
        return rows.select_of(kind).where(where)
    return _object_template(kind).where(where)


@functools.cache
def _level_template(kind: Kind) -> Select[Any]:
    return _object_template(kind).where(kind.model.id == lookup.IDENT)


def _combine(kind: Kind, user: Actor, obj: Any, own: int | None, group: int | None,
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


def resolve(conn: Connection, user: Actor, kind: Kind,
            value: Any) -> tuple[Row[Any], Level] | None:
    """The row of the object ``value`` (an id or a name) names and ``user``'s level on it,
    or None.

    One SQL statement. The level may be ``Level.NONE``: treat such an object as missing
    towards the caller (API.md §2).
    """
    params = lookup.by_id_or_name(value)
    if params is None:
        return None
    statement = _resolve_template(kind, user.admin, "ident" in params)
    if user.admin:
        row = conn.execute(statement, params).first()
        return None if row is None else (row, Level.ADMIN)
    row = conn.execute(statement, {**params, USER_PARAM: user.id}).first()
    if row is None:
        return None
    return row, _combine(kind, user, row, row.own_rank, row.group_rank, row.default_rank)


def level_on(conn: Connection, user: Actor, kind: Kind, obj: Any) -> Level:
    """``user``'s effective level on an object (a row or an ORM object: ``id``,
    ``owner_id``, ``private``); one statement, none for an admin or the owner."""
    if user.admin or obj.owner_id == user.id:
        return Level.ADMIN
    row = conn.execute(_level_template(kind), {"ident": obj.id, USER_PARAM: user.id}).one()
    return _combine(kind, user, obj, row.own_rank, row.group_rank, row.default_rank)


def find_readable(conn: Connection, user: Actor, kind: Kind, value: Any,
                  need: Level = Level.READ) -> Row[Any]:
    """The object's row, if ``user`` holds ``need`` on it; else the API's error.

    Missing or unreadable: ``<kind> `<value>` does not exist``; readable but below ``need``:
    ``Access was denied to this resource.``
    """
    found = resolve(conn, user, kind, value)
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

    List methods use it through ``readable``.
    """
    lv = levels(kind, False).subquery()
    return select(lv.c.id).where(lv.c.rank >= int(need))


def readable(query: Select[*tuple[Any, ...]], kind: Kind,
             admin: bool) -> Select[*tuple[Any, ...]]:
    """``query`` (of ``kind``'s objects) cut to those the user can read (all, for an admin),
    by id; a non-admin's is executed with ``{USER_PARAM: user.id}``.

    For a list method's statements (``paging.Pages``), built once per ``admin``
    (``functools.cache``).
    """
    if not admin:
        query = query.where(kind.model.id.in_(readable_ids(kind)))
    return query


def effective_permissions(conn: Connection, user: Actor, kind: Kind) -> dict[str, str]:
    """``{object name: "repository.write", ...}`` for every object ``user`` can read.

    Ordered by name; objects at NONE are left out (they do not exist for the user).
    """
    names = _perm_names(kind)
    found = conn.execute(_effective_template(kind, user.admin), {USER_PARAM: user.id})
    return {name: names[rank] for name, rank in found}


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


def user_permissions(conn: Connection, user: Actor) -> dict[str, Any]:
    """``get_user``'s ``permissions`` block: two statements (one for an admin), whatever the
    database holds; the same as ``effective_permissions`` for each kind."""
    found: dict[str, Any] = {"global": global_permissions(conn, user)}
    blocks: list[dict[str, str]] = []
    for _kind, key in _BLOCKS:
        found[key] = {}
        blocks.append(found[key])
    names = [_perm_names(kind) for kind, _key in _BLOCKS]
    ranked = conn.execute(_all_effective_template(user.admin), {USER_PARAM: user.id})
    for name, rank, index in ranked.all():
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


def global_permissions(conn: Connection, user: Actor) -> list[str]:
    """A user's global permissions: its own grants plus those of ``default``, sorted."""
    if user.admin:
        return list(ADMIN_GLOBAL_PERMISSIONS)
    names = conn.scalars(
        select(GlobalPermission.name).where(
            GlobalPermission.user_id.in_((user.id, DEFAULT_USER_ID)))
    ).all()
    return sorted(set(names))


def has_global(conn: Connection, user: Actor, *names: str) -> bool:
    """Whether ``user`` holds any of the global permissions ``names`` (admins hold all)."""
    if user.admin:
        return True
    return bool(conn.scalar(select(exists().where(
        GlobalPermission.user_id.in_((user.id, DEFAULT_USER_ID)),
        GlobalPermission.name.in_(names)))))
