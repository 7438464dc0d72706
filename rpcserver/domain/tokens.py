"""Short-lived tokens exchanged for an API key at ``/_admin/token`` (the Docker registry token
spec's exchange; docs/authentication.md).

A token is a row of ``api_keys`` whose parent is the key it was exchanged with: the one key
look-up authenticates both, and revoking, rotating or deleting the parent ends its tokens
(the look-up checks the parent; a deleted parent takes its tokens with it). Stored rows, not
signed stateless tokens: revocation needs the parent's state at every use anyway, so a
signature would save nothing and add a signing key to keep.

The granted scope is what was asked for, cut to what the key and its user may do: a partial
grant is no error; nothing asked, or nothing grantable, gives a token that can call nothing.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import delete

from rpcserver.core.credentials import TOKEN_PREFIX
from rpcserver.core.errors import InvalidApiKey
from rpcserver.core.registry import READ_SCOPE, WRITE_SCOPE
from rpcserver.db.models import ApiKey, Level, utcnow
from rpcserver.domain.access import resolve
from rpcserver.domain.context import CallContext
from rpcserver.domain.grants import REPO, REPO_GROUP
from rpcserver.domain.key_format import key_digest, new_api_key
from rpcserver.domain.scopes import (
    NONE,
    REPOSITORY,
    ObjectScope,
    ScopeError,
    Scopes,
    coarse_within,
    level_of,
)
from rpcserver.domain.scopes import (
    parse as parse_scopes,
)

log = logging.getLogger(__name__)

#: The most scopes one exchange may ask for.
MAX_ASKED = 32


class BadScope(ValueError):
    """An asked scope that is none (HTTP 400)."""


def issue(ctx: CallContext, asked: list[str], service: str) -> dict[str, Any]:
    """A new token for the key that authenticated ``ctx``, with the granted part of
    ``asked``; the answer of ``/_admin/token``."""
    parent = ctx.session.get_one(ApiKey, ctx.key_id)
    if parent.parent_id is not None:
        raise InvalidApiKey(f"token id {parent.id} used to ask for a token")
    granted = grant(ctx, asked)
    now = utcnow().replace(microsecond=0)
    expires = now + dt.timedelta(seconds=ctx.config.token_expires_in)
    if parent.expires_on is not None:
        expires = min(expires, parent.expires_on)
    secret = new_api_key(TOKEN_PREFIX)
    ctx.session.execute(delete(ApiKey).where(ApiKey.parent_id == parent.id,
                                             ApiKey.expires_on <= now))
    token = ApiKey(user_id=parent.user_id, digest=key_digest(secret), suffix=secret[-4:],
                   description=f"token for {service}", expires_on=expires,
                   scopes=granted.text() or NONE, ip_ranges=parent.ip_ranges,
                   parent_id=parent.id)
    ctx.session.add(token)
    ctx.session.flush()
    log.info("token id %s exchanged for key id %s of user id %s, scope %r", token.id,
             parent.id, parent.user_id, granted.text())
    return {"token": secret, "access_token": secret, "scope": granted.text(),
            "expires_in": int((expires - now).total_seconds()),
            "issued_at": now.isoformat() + "Z"}


def grant(ctx: CallContext, asked: list[str]) -> Scopes:
    """``asked``, cut to what the key's scopes and the user's rights allow."""
    if len(asked) > MAX_ASKED:
        raise BadScope(f"at most {MAX_ASKED} scopes")
    have = ctx.scopes
    level = 0
    objects: list[ObjectScope] = []
    for item in asked:
        try:
            wanted = parse_scopes([item])
        except ScopeError as exc:
            raise BadScope(str(exc)) from None
        # read, write, admin or all: no more than the key's own
        level = max(level, min(wanted.level, have.level))
        for scope in wanted.objects:
            kept = _object_grant(ctx, have, scope)
            if kept is not None:
                objects.append(kept)
    return Scopes(coarse=coarse_within(level), objects=tuple(dict.fromkeys(objects)))


def _object_grant(ctx: CallContext, have: Scopes, scope: ObjectScope) -> ObjectScope | None:
    """``scope`` as far as the key and the user allow it: push dropped when only pull is
    allowed, the whole scope when not even pull."""
    pull = have.level >= level_of(READ_SCOPE) or any(_same(o, scope) for o in have.objects)
    push = scope.push and (have.level >= level_of(WRITE_SCOPE) or any(_same(o, scope) and o.push
                                                  for o in have.objects))
    if "*" not in scope.pattern:
        # A named object: the user's own level on it (a missing or hidden one: nothing).
        kind = REPO if scope.kind == REPOSITORY else REPO_GROUP
        found = resolve(ctx.conn, ctx.caller, kind, scope.pattern)
        level = found[1] if found is not None and found[0].name == scope.pattern \
            else Level.NONE
        pull = pull and level >= Level.READ
        push = push and level >= Level.WRITE
    if not pull:
        return None
    return ObjectScope(kind=scope.kind, pattern=scope.pattern, push=push)


def _same(have: ObjectScope, asked: ObjectScope) -> bool:
    """Whether the key's object scope ``have`` covers everything ``asked`` names."""
    if have.kind == asked.kind and have.pattern == asked.pattern:
        return True
    if "*" in asked.pattern:
        return False
    return have.covers(asked.pattern) if asked.kind == REPOSITORY else (
        have.kind == asked.kind and have.covers(asked.pattern + "/x"))
