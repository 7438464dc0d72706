"""Paging the list methods (get_users, get_repos, get_user_groups, get_repo_groups) in the
registry spec's style: ``n`` items at most, strictly after ``last``, the sort key (the name)
of the last item already seen (docs/protocol.md, "Paging").

Three forms, each one prebuilt statement per list and caller shape (``Pages``), executed with
bound values:

- no paging argument: the whole list in Kallithea 0.7's order, up to the configured bound
  (``max_list_items``); one item more is read, and if it is there the call is refused
  (``too_many``) instead of answering a list cut short;
- ``n`` and/or ``last``: a keyset page, ``WHERE key > :last ORDER BY key LIMIT :n`` on the
  name's unique index, so a page costs its size, not the table's (``last`` alone: the rest of
  the list after it, up to the bound);
- ``limit`` and/or ``offset`` (the older form, kept as it was): by id, at most ``limit`` from
  ``offset``; without ``limit``, up to the bound as above.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Integer, Row, Select, String, bindparam

from rpcserver.core import schemas
from rpcserver.core.errors import ApiError, InvalidArg

#: The largest page ``n`` (and the older ``limit``) asks for.
MAX_N = 10_000

#: The paging arguments of every list method's schema (all optional).
N = schemas.integer(1, MAX_N)
#: ``last`` null is the same as no ``last``: the first page (a loop may start with it).
LAST = schemas.nullable(schemas.string(schemas.NAME_MAX))
LIMIT = schemas.integer(1, MAX_N)
OFFSET = schemas.integer()

Query = Select[*tuple[Any, ...]]

_LIMIT = bindparam("page_limit", type_=Integer)
_OFFSET = bindparam("page_offset", type_=Integer)
_LAST = bindparam("page_last", type_=String)


@dataclass(frozen=True)
class Pages:
    """The statements of one list for one caller shape; build it once (at import, or under
    ``functools.cache``), never per call.

    ``query`` selects the rows the caller may see (already filtered by permission), ``key``
    is the unique sort key of pages (the name), ``whole_order`` the order of the whole list
    (Kallithea's), ``ident`` the id (the older form's order).
    """

    whole: Query
    first: Query
    after: Query
    older: Query

    @classmethod
    def of(cls, query: Query, *, key: Any, whole_order: Any, ident: Any) -> Pages:
        return cls(whole=query.order_by(whole_order).limit(_LIMIT),
                   first=query.order_by(key).limit(_LIMIT),
                   after=query.where(key > _LAST).order_by(key).limit(_LIMIT),
                   older=query.order_by(ident).limit(_LIMIT).offset(_OFFSET))


def too_many(method: str, bound: int) -> ApiError:
    return ApiError(f"{method} would answer more than {bound} items: page with `n` and `last`")


def rows(conn: Connection, pages: Pages, method: str, bound: int, params: dict[str, Any], *,
         n: int | None, last: str | None, limit: int | None,
         offset: int | None) -> Sequence[Row[Any]]:
    """The rows of one call of list ``method``; ``params`` are the statement's own (the
    caller's id for a permission-filtered list)."""
    if n is not None or last is not None:
        if limit is not None or offset is not None:
            raise InvalidArg("n" if n is not None else "last",
                             "cannot be combined with `limit` or `offset`")
        if last is None:
            statement, values = pages.first, params
        else:
            statement, values = pages.after, {**params, "page_last": last}
        if n is not None:
            return conn.execute(statement, {**values, "page_limit": n}).all()
        return _bounded(conn, statement, values, method, bound)
    if limit is not None:
        return conn.execute(pages.older, {**params, "page_limit": limit,
                                          "page_offset": offset or 0}).all()
    if offset is not None:
        return _bounded(conn, pages.older, {**params, "page_offset": offset}, method, bound)
    return _bounded(conn, pages.whole, params, method, bound)


def _bounded(conn: Connection, statement: Query, params: dict[str, Any], method: str,
             bound: int) -> Sequence[Row[Any]]:
    """Every row, if there are at most ``bound``; else ``too_many`` (one row more is read to
    know, never the whole table)."""
    found = conn.execute(statement, {**params, "page_limit": bound + 1}).all()
    if len(found) > bound:
        raise too_many(method, bound)
    return found
