"""Gists: get_gist, get_gists, create_gist, delete_gist (Kallithea 0.7's; docs/api.md).

A gist's files are built into a git repository with no transaction open (``CreateGist``),
then its row is inserted and the repository moved into place in one short write
transaction, as create_repo does. Only the owner or an admin sees a gist; anyone else is
told it does not exist. Where we differ from Kallithea: docs/compatibility.md, "Gists".
"""

from __future__ import annotations

import logging
import time
from functools import partial
from pathlib import Path
from typing import Any

from rpcserver.core import schemas
from rpcserver.core.errors import AccessDenied, ApiError, InvalidArg, NotFound
from rpcserver.core.registry import Registry
from rpcserver.db.models import Gist, User
from rpcserver.db.savepoint import flushed_or
from rpcserver.domain import gists, rows
from rpcserver.domain.context import CallContext, Deferred, ReadContext
from rpcserver.domain.grants import DEFAULT_USER_ID
from rpcserver.domain.permissions import ANYONE, SelfOrAdmin
from rpcserver.domain.repositories import OWNER_ONLY_FOR_ADMIN
from rpcserver.vcs.model import VcsError

log = logging.getLogger(__name__)
registry = Registry()

GISTID = schemas.id_or_name(64)
#: ``{"<name>": {"content": "...", "lexer": null}}``; names, sizes and counts are checked by
#: ``gists.checked_files``, which says which bound a call broke.
FILES = {"type": "object", "maxProperties": gists.MAX_FILES + 1,
         "additionalProperties": {"type": "object"}}
#: Minutes, -1 for forever; digits in a string too (``kallithea-api`` sends only strings).
LIFETIME = {"anyOf": [schemas.integer(-1, gists.MAX_LIFETIME),
                      schemas.string(12, min_length=1, pattern=r"^-?[0-9]+\Z")]}


def _lifetime(value: Any) -> int:
    lifetime = int(value)
    if lifetime < -1 or lifetime > gists.MAX_LIFETIME:
        raise InvalidArg("lifetime", f"must be -1 (forever) or 0 to {gists.MAX_LIFETIME} "
                         "minutes")
    return lifetime


@registry.method("get_gist",
                 schema=schemas.obj(required=("gistid",), gistid=GISTID,
                                    content=schemas.boolean()),
                 permission=ANYONE)
def get_gist(ctx: ReadContext, gistid: Any, content: bool = False) -> dict[str, Any]:
    """A gist by its id or its access id, for its owner or an admin; with ``content``, also
    its files (``{name: text}``, as RhodeCode answers them)."""
    row = gists.visible(ctx, gistid)
    answer = gists.record(ctx.config, row)
    if content:
        try:
            answer["content"] = gists.files_of(ctx.config, row.access_id)
        except (VcsError, OSError) as exc:
            log.warning("gist %s: cannot read its files: %s", row.access_id, exc)
            raise ApiError(f"gist `{gistid}` cannot be read") from None
    return answer


@registry.method("get_gists",
                 schema=schemas.obj(userid=schemas.nullable(schemas.id_or_name())),
                 permission=SelfOrAdmin("userid"))
def get_gists(ctx: ReadContext, userid: Any = None) -> list[dict[str, Any]]:
    """The caller's gists (an admin: ``userid``'s), expired ones left out, newest first."""
    owner = ctx.caller.id if userid is None else ctx.resolved["userid"].id
    bound = ctx.config.max_list_items
    found = ctx.conn.execute(gists.OWNED, {"owner_id": owner, "now": time.time(),
                                           "n": bound + 1}).all()
    if len(found) > bound:
        raise ApiError(f"get_gists would answer more than {bound} items")
    return [gists.record(ctx.config, row) for row in found]


def _finish_create(owner_id: int, gist_type: str, lifetime: int, description: str,
                   ctx: CallContext, built: Path) -> dict[str, Any]:
    if ctx.session.get(User, owner_id) is None:
        log.info("creating a gist: its owner was deleted meanwhile")
        raise ApiError(gists.FAILED_CREATE)
    gists.purge_expired(ctx)
    gist = Gist(access_id=gists.new_access_id(), description=description,
                owner_id=owner_id, gist_type=gist_type,
                expires=gists.expires_at(lifetime))
    with flushed_or(ctx.session, ApiError(gists.FAILED_CREATE)):
        ctx.session.add(gist)
    if gist_type == gists.PUBLIC:
        gist.access_id = str(gist.id)  # Kallithea's: the id is a public gist's name
        ctx.session.flush()
    gists.put_in_place(ctx, gist, built)
    log.info("gist %s (id %s, %s) created for user id %s by user id %s", gist.access_id,
             gist.id, gist_type, owner_id, ctx.caller.id)
    return {"msg": "created new gist", "gist": gists.record(ctx.config, gist)}


@registry.method("create_gist",
                 schema=schemas.obj(required=("files",), files=FILES,
                                    owner=schemas.nullable(schemas.id_or_name()),
                                    gist_type=schemas.one_of_values(gists.PUBLIC,
                                                                    gists.PRIVATE),
                                    lifetime=LIFETIME, description=schemas.text()),
                 permission=ANYONE, changes=True)
def create_gist(ctx: ReadContext, files: dict[str, Any], owner: Any = None,
                gist_type: str = gists.PUBLIC, lifetime: Any = -1,
                description: str = "") -> Deferred:
    """A new gist of ``files`` (``{name: {"content": text}}``; plain names, at most 100
    files of 1 MiB, 10 MiB in all) in one commit; ``lifetime`` in minutes (-1: forever).
    Only an admin names ``owner``; the default user makes none."""
    if ctx.caller.id == DEFAULT_USER_ID:
        raise AccessDenied()
    if owner is not None and not ctx.caller.admin:
        raise ApiError(OWNER_ONLY_FOR_ADMIN)
    checked = gists.checked_files(files)
    minutes = _lifetime(lifetime)
    if owner is None:
        user: Any = ctx.caller
    else:
        try:
            user = rows.get_user(ctx.conn, owner)
        except NotFound:
            raise ApiError(gists.FAILED_CREATE) from None  # Kallithea's answer
    name = f"{user.firstname} {user.lastname}".strip() or user.username
    work = gists.CreateGist(files=checked, author=(name, user.email),
                            message=gists.commit_message([n for n, _c in checked]))
    return Deferred(work=work, finish=partial(_finish_create, user.id, gist_type, minutes,
                                              description))


@registry.method("delete_gist", schema=schemas.obj(required=("gistid",), gistid=GISTID),
                 permission=ANYONE, writes=True)
def delete_gist(ctx: CallContext, gistid: Any) -> dict[str, Any]:
    """Delete a gist (its owner, or an admin), expired or not, with its repository."""
    row = gists.visible(ctx, gistid, expired_too=True)
    gist = ctx.session.get_one(Gist, row.id)
    try:
        gists.remove(ctx, gist)
        gists.purge_expired(ctx)
        ctx.session.flush()
    except OSError as exc:
        log.warning("deleting gist %s: %s", row.access_id, exc)
        raise ApiError(f"failed to delete gist ID:{row.access_id}") from None
    log.info("gist %s (id %s) deleted by user id %s", row.access_id, row.id, ctx.caller.id)
    return {"msg": f"deleted gist ID:{row.access_id}", "gist": None}
