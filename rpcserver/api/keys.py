"""API keys and a user's allowed addresses, managed through the API: create_api_key,
get_api_keys, revoke_api_key, rotate_api_key, add_user_ip, remove_user_ip
(docs/authentication.md).

A key's secret is answered once, when it is made, and never again: the records answer its
last four characters. A key may only make keys of no more than its own scopes, and only a key
with the ``admin`` scope (or ``all``) may manage another user's keys. Every key event is
logged without the secret.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
from typing import Any

from sqlalchemy import Integer, Select, bindparam, select

from rpcserver.core import schemas
from rpcserver.core.errors import AccessDenied, ApiError, InvalidArg
from rpcserver.core.registry import Registry
from rpcserver.db.models import ApiKey, User, UserIpRule, utcnow
from rpcserver.db.savepoint import flushed_or
from rpcserver.domain import rows
from rpcserver.domain.auth import expiry, issue_api_key
from rpcserver.domain.context import CallContext, Context, ReadContext
from rpcserver.domain.grants import DEFAULT_USER_ID
from rpcserver.domain.permissions import ADMIN, ANYONE, SelfOrAdmin
from rpcserver.domain.scopes import MAX_SCOPES, ScopeError, ScopeRefused, Scopes
from rpcserver.domain.scopes import parse as parse_scopes
from rpcserver.domain.serialize import iso_date

log = logging.getLogger(__name__)
registry = Registry()

#: The most keys one page of get_api_keys holds (``n``); a whole list is bounded by the
#: ``max_list_items`` setting, as every list.
MAX_PAGE = 10_000
#: The most address ranges on one key.
MAX_IP_RANGES = 32
ADMIN_LEVEL = parse_scopes(["admin"]).level

USERID = schemas.nullable(schemas.id_or_name())
KEY_ID = schemas.integer(1)
#: Seconds from now, or an ISO 8601 date and time (UTC when it names no zone).
EXPIRES = schemas.nullable({"anyOf": [schemas.integer(1, 100 * 365 * 86_400),
                                      schemas.string(64, min_length=10)]})
SCOPES = schemas.nullable({"type": "array", "maxItems": MAX_SCOPES,
                           "items": schemas.string(300, min_length=1)})
IP_RANGES = schemas.nullable({"type": "array", "maxItems": MAX_IP_RANGES,
                              "items": schemas.string(64, min_length=1)})
IP_RANGE = schemas.string(64, min_length=1)


def _record(key: Any, username: str) -> dict[str, Any]:
    """A key (a row or an ``ApiKey``) as get_api_keys answers it: never the secret, only its
    last four characters."""
    return {
        "key_id": key.id,
        "description": key.description,
        "key_suffix": key.suffix[-4:],
        "created_on": iso_date(key.created_on),
        "last_used_on": iso_date(key.last_used_on),
        "expires": iso_date(key.expires_on),
        "scopes": key.scopes.split(),
        "ip_ranges": key.ip_ranges.split() if key.ip_ranges is not None else None,
        "revoked": key.revoked_on is not None,
        "username": username,
    }


def _expires_on(ctx: Context, expires: Any) -> dt.datetime | None:
    """When a new key expires (``auth.expiry``), bounded by ``max_key_lifetime``."""
    try:
        return expiry(expires, ctx.config.max_key_lifetime)
    except ValueError as exc:
        raise InvalidArg("expires", str(exc)) from None


def _scopes(ctx: Context, scopes: list[str] | None) -> Scopes:
    """The scopes asked for, checked: none beyond the calling key's own."""
    try:
        wanted = parse_scopes(scopes)
    except ScopeError as exc:
        raise InvalidArg("scopes", str(exc)) from None
    if not wanted.within(ctx.scopes):
        raise InvalidArg("scopes", "must not reach beyond the scopes of the key that makes it")
    return wanted


def _ip_ranges(arg: str, values: list[str] | None) -> str | None:
    if values is None:
        return None
    try:
        networks = [str(ipaddress.ip_network(value, strict=False)) for value in values]
    except ValueError:
        raise InvalidArg(arg, "each must be an IP address or a network like 10.0.0.0/8") \
            from None
    if not networks:
        raise InvalidArg(arg, "must name at least one address or network (or be null)")
    return " ".join(dict.fromkeys(networks))


def _network(ip_range: str) -> str:
    try:
        return str(ipaddress.ip_network(ip_range, strict=False))
    except ValueError:
        raise InvalidArg("ip_range", "must be an IP address or a network like 10.0.0.0/8") \
            from None


def _target_user(ctx: CallContext, userid: Any) -> User:
    """The user whose keys the call manages: the caller, or (an admin's key with the admin
    scope) the one ``userid`` names (``SelfOrAdmin`` resolved it)."""
    if userid is None:
        return ctx.user
    found = ctx.session.get_one(User, ctx.resolved["userid"].id)
    if found.id != ctx.caller.id:
        _need_admin_scope(ctx, "create_api_key", "another user's keys")
    if found.id == DEFAULT_USER_ID:
        raise ApiError("the default user has no API keys")
    return found


def _need_admin_scope(ctx: Context, method: str, what: str) -> None:
    """Managing other users' keys is an admin's power: the key needs the admin scope."""
    if ctx.scopes.level < ADMIN_LEVEL:
        log.info("user id %s: a key without the admin scope tried to manage %s",
                 ctx.caller.id, what)
        raise ScopeRefused(method)


def _not_with_a_token(ctx: CallContext, method: str) -> None:
    """An exchanged token manages no keys: a short-lived token could otherwise make itself a
    key that never expires."""
    if ctx.key_id is not None and ctx.session.get_one(ApiKey, ctx.key_id).parent_id is not None:
        raise ScopeRefused(method)


def _new_key(ctx: CallContext, user: User, *, description: str, expires_on: dt.datetime | None,
             scopes: Scopes, ip_ranges: str | None) -> tuple[str, ApiKey]:
    secret, key = issue_api_key(ctx.session, user, description=description,
                                expires_on=expires_on)
    key.scopes = scopes.text()
    key.ip_ranges = ip_ranges
    ctx.session.flush()
    return secret, key


@registry.method("create_api_key",
                 schema=schemas.obj(description=schemas.string(255), userid=USERID,
                                    expires=EXPIRES, scopes=SCOPES, ip_ranges=IP_RANGES),
                 permission=SelfOrAdmin("userid"), writes=True)
def create_api_key(ctx: CallContext, description: str = "", userid: Any = None,
                   expires: Any = None, scopes: list[str] | None = None,
                   ip_ranges: list[str] | None = None) -> dict[str, Any]:
    """A new API key for the caller (an admin: for ``userid``); the secret is in this
    answer only. ``expires``: seconds from now or an ISO 8601 date; ``scopes`` limit it below
    its user's rights (default: all of them); ``ip_ranges``: where it may be used from."""
    _not_with_a_token(ctx, "create_api_key")
    user = _target_user(ctx, userid)
    secret, key = _new_key(ctx, user, description=description,
                           expires_on=_expires_on(ctx, expires), scopes=_scopes(ctx, scopes),
                           ip_ranges=_ip_ranges("ip_ranges", ip_ranges))
    log.info("API key id %s (scopes %s) created for user id %s by user id %s", key.id,
             key.scopes, user.id, ctx.caller.id)
    return {"msg": f"created new API key for user `{user.username}`", "api_key": secret,
            "key": _record(key, user.username)}


_RECORD_COLUMNS = (ApiKey.id, ApiKey.description, ApiKey.suffix, ApiKey.created_on,
                   ApiKey.last_used_on, ApiKey.expires_on, ApiKey.scopes, ApiKey.ip_ranges,
                   ApiKey.revoked_on, User.username)
_KEYS = (select(*_RECORD_COLUMNS).join(User, User.id == ApiKey.user_id)
         .where(ApiKey.parent_id.is_(None), ApiKey.id > bindparam("last", type_=Integer))
         .order_by(ApiKey.id).limit(bindparam("n", type_=Integer)))


@registry.method("get_api_keys",
                 schema=schemas.obj(userid=USERID, all_users=schemas.boolean(),
                                    expired=schemas.nullable(schemas.boolean()),
                                    unused_since=schemas.nullable(schemas.string(64)),
                                    n=schemas.integer(1, MAX_PAGE), last=schemas.integer()),
                 permission=SelfOrAdmin("userid"))
def get_api_keys(ctx: ReadContext, userid: Any = None, all_users: bool = False,
                 expired: bool | None = None, unused_since: str | None = None,
                 n: int | None = None, last: int = 0) -> list[dict[str, Any]]:
    """The caller's keys (an admin: ``userid``'s, or with ``all_users`` everyone's), by
    ``key_id``, revoked ones too; never a secret. ``expired`` true/false keeps only expired
    or live keys, ``unused_since`` (a date) those not used since then; ``n`` and ``last``
    page (``last``: the last ``key_id`` seen)."""
    owner = ctx.caller.id if userid is None else ctx.resolved["userid"].id
    if all_users or owner != ctx.caller.id:
        if not ctx.caller.admin:
            raise AccessDenied()
        _need_admin_scope(ctx, "get_api_keys", "other users' keys")
    statement: Select[*tuple[Any, ...]] = _KEYS
    if not all_users:
        statement = statement.where(ApiKey.user_id == owner)
    now = utcnow()
    if expired is True:
        statement = statement.where(ApiKey.expires_on <= now)
    elif expired is False:
        statement = statement.where(ApiKey.expires_on.is_(None) | (ApiKey.expires_on > now))
    if unused_since is not None:
        try:
            since = dt.datetime.fromisoformat(unused_since)
        except ValueError:
            raise InvalidArg("unused_since", "must be an ISO 8601 date and time") from None
        if since.tzinfo is not None:
            since = since.astimezone(dt.UTC).replace(tzinfo=None)
        statement = statement.where(ApiKey.last_used_on.is_(None)
                                    | (ApiKey.last_used_on < since))
    # Without ``n``, one more than the bound tells a whole list from one cut short.
    bound = ctx.config.max_list_items
    found = ctx.conn.execute(statement, {"last": last,
                                         "n": n if n is not None else bound + 1}).all()
    if n is None and len(found) > bound:
        raise ApiError(f"get_api_keys would answer more than {bound} items: "
                       "page with `n` and `last`")
    return [_record(row, row.username) for row in found]


def _key_of(ctx: CallContext, key_id: int, method: str) -> tuple[ApiKey, User]:
    """The key ``key_id``, if the caller may manage it: its own, or (an admin's key with the
    admin scope) anyone's. Another user's key is "does not exist" to a non-admin."""
    _not_with_a_token(ctx, method)
    key = ctx.session.get(ApiKey, key_id)
    missing = ApiError(f"API key `{key_id}` does not exist")
    if key is None or key.parent_id is not None:  # a token is no key to manage
        raise missing
    if key.user_id != ctx.caller.id:
        if not ctx.caller.admin:
            raise missing
        _need_admin_scope(ctx, method, "another user's key")
    return key, ctx.session.get_one(User, key.user_id)


@registry.method("revoke_api_key", schema=schemas.obj(required=("key_id",), key_id=KEY_ID),
                 permission=ANYONE, writes=True)
def revoke_api_key(ctx: CallContext, key_id: int) -> dict[str, Any]:
    """Revoke a key at once (the caller's own; an admin: anyone's); revoking it again
    changes nothing."""
    key, user = _key_of(ctx, key_id, "revoke_api_key")
    if key.revoked_on is None:
        key.revoked_on = utcnow()
        log.info("API key id %s of user id %s revoked by user id %s", key.id, user.id,
                 ctx.caller.id)
    return {"msg": f"revoked API key ID:{key.id}", "key": _record(key, user.username)}


@registry.method("rotate_api_key",
                 schema=schemas.obj(required=("key_id",), key_id=KEY_ID, expires=EXPIRES),
                 permission=ANYONE, writes=True)
def rotate_api_key(ctx: CallContext, key_id: int, expires: Any = None) -> dict[str, Any]:
    """A new secret for a key: a new key with its description, scopes and address ranges,
    the old one revoked at once (GitLab's rotate); ``expires`` as for create_api_key."""
    old, user = _key_of(ctx, key_id, "rotate_api_key")
    if old.revoked_on is not None:
        raise ApiError(f"API key `{key_id}` is revoked")
    old_scopes = parse_scopes(old.scopes)
    if not old_scopes.within(ctx.scopes):
        raise ScopeRefused("rotate_api_key")
    secret, key = _new_key(ctx, user, description=old.description,
                           expires_on=_expires_on(ctx, expires), scopes=old_scopes,
                           ip_ranges=old.ip_ranges)
    old.revoked_on = utcnow()
    log.info("API key id %s of user id %s rotated into key id %s by user id %s", old.id,
             user.id, key.id, ctx.caller.id)
    return {"msg": f"rotated API key ID:{old.id} as ID:{key.id}", "api_key": secret,
            "key": _record(key, user.username)}


# -- a user's allowed addresses (Kallithea kept them in its web UI only) ------------------


def _user_ips(ctx: CallContext, user: User) -> list[dict[str, Any]]:
    rules = ctx.conn.scalars(select(UserIpRule.ip_addr).where(UserIpRule.user_id == user.id)
                             .order_by(UserIpRule.id)).all()
    networks = [ipaddress.ip_network(rule, strict=False) for rule in rules]
    return [{"ip_addr": rule, "ip_range": [str(net.network_address),
                                           str(net.broadcast_address)]}
            for rule, net in zip(rules, networks, strict=True)]


_IP_SCHEMA = schemas.obj(required=("userid", "ip_range"), userid=schemas.id_or_name(),
                         ip_range=IP_RANGE)


@registry.method("add_user_ip", schema=_IP_SCHEMA, permission=ADMIN, writes=True)
def add_user_ip(ctx: CallContext, userid: Any, ip_range: str) -> dict[str, Any]:
    """Allow the user's API calls from ``ip_range`` (an address or a network); a user with
    no range may call from anywhere, so the first one restricts it to that range."""
    user = rows_user(ctx, userid)
    network = _network(ip_range)
    with flushed_or(ctx.session, ApiError(f"ip `{network}` already exist for user "
                                          f"`{user.username}`")):
        ctx.session.add(UserIpRule(user_id=user.id, ip_addr=network))
    log.info("user id %s: calls allowed from %s (by user id %s)", user.id, network,
             ctx.caller.id)
    return {"msg": f"added ip `{network}` to user `{user.username}`",
            "user_ips": _user_ips(ctx, user)}


@registry.method("remove_user_ip", schema=_IP_SCHEMA, permission=ADMIN, writes=True)
def remove_user_ip(ctx: CallContext, userid: Any, ip_range: str) -> dict[str, Any]:
    """Take ``ip_range`` off the user's allowed addresses (the last one gone: anywhere)."""
    user = rows_user(ctx, userid)
    network = _network(ip_range)
    rule = ctx.session.scalars(select(UserIpRule).where(
        UserIpRule.user_id == user.id, UserIpRule.ip_addr == network)).first()
    if rule is None:
        raise ApiError(f"ip `{network}` not found for user `{user.username}`")
    ctx.session.delete(rule)
    log.info("user id %s: calls no longer allowed from %s (by user id %s)", user.id, network,
             ctx.caller.id)
    return {"msg": f"removed ip `{network}` from user `{user.username}`",
            "user_ips": _user_ips(ctx, user)}


def rows_user(ctx: CallContext, userid: Any) -> User:
    return ctx.session.get_one(User, rows.get_user(ctx.conn, userid).id)
