"""API keys and passwords: authenticating a call.

What a key looks like is ``key_format``. Only a key's SHA-256 digest is stored, so a stolen
database holds no usable key. A SHA-256 (not a slow hash) is right here: the key has full
entropy, and the lookup is one indexed query per request.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import ipaddress
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, bindparam, select, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, aliased

from rpcserver.core.credentials import (
    API_KEY,
    BASIC,
    LOCAL_CLI,
    WHERE,
    Credential,
)
from rpcserver.core.errors import ApiError, InvalidApiKey
from rpcserver.db.models import ApiKey, User, UserIpRule, utcnow
from rpcserver.domain.context import ACTOR_FIELDS, Actor
from rpcserver.domain.key_format import is_key_shaped, key_digest, new_api_key
from rpcserver.domain.scopes import FULL, ScopeError, Scopes
from rpcserver.domain.scopes import parse as parse_scopes

log = logging.getLogger(__name__)

DEFAULT_USER_ID = 1
#: At most this many keys outside the body (docs/protocol.md): each distinct one costs a
#: statement, and no client needs more than one.
MAX_OUTSIDE_KEYS = 8
#: Touch ``last_used_on`` at most this often, so reads stay reads.
LAST_USED_RESOLUTION = dt.timedelta(minutes=1)

# OWASP's first recommended argon2id setting (19 MiB, 2 iterations, 1 lane).
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)


def issue_api_key(session: Session, user: User, *, description: str = "",
                  expires_on: dt.datetime | None = None) -> tuple[str, ApiKey]:
    """Create a key for ``user``; the plaintext is returned here and never again."""
    key = new_api_key()
    row = ApiKey(user=user, digest=key_digest(key), suffix=key[-4:], description=description,
                 expires_on=expires_on)
    session.add(row)
    session.flush()
    return key, row


def expiry(expires: int | str | None, max_lifetime: int) -> dt.datetime | None:
    """When a new key expires: ``expires`` is seconds from now or an ISO 8601 date (UTC
    unless it says otherwise), at most ``max_lifetime`` seconds away (0: no bound); without
    ``expires``, that bound (None: never). ValueError says what is wrong with it."""
    now = utcnow()
    latest = now + dt.timedelta(seconds=max_lifetime) if max_lifetime else None
    if expires is None:
        return latest
    if isinstance(expires, int):
        when = now + dt.timedelta(seconds=expires)
    else:
        try:
            when = dt.datetime.fromisoformat(expires)
        except ValueError:
            raise ValueError("must be seconds from now or an ISO 8601 date and time like "
                             "2027-01-31T23:59:59") from None
        if when.tzinfo is not None:
            when = when.astimezone(dt.UTC).replace(tzinfo=None)
    if when <= now:
        raise ValueError("must be in the future")
    if latest is not None and when > latest:
        raise ValueError(f"must be at most {max_lifetime} seconds from now (max_key_lifetime)")
    return when


def issue_key_for(session: Session, username: str, *, description: str = "",
                  expires_on: dt.datetime | None = None, rotate: bool = False,
                  scopes: Scopes = FULL) -> str:
    """A new key for ``username`` (``rpcserver create-api-key``); ``rotate`` first revokes
    the user's live keys of the same description."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or user.id == DEFAULT_USER_ID:
        raise ApiError(f"user `{username}` does not exist")
    if rotate:
        session.execute(update(ApiKey).where(
            ApiKey.user_id == user.id, ApiKey.description == description,
            ApiKey.revoked_on.is_(None)).values(revoked_on=utcnow()))
    key, row = issue_api_key(session, user, description=description, expires_on=expires_on)
    row.scopes = scopes.text()
    return key


@dataclass(frozen=True)
class KeyUse:
    """What the dispatcher needs of the key that authenticated a request."""

    id: int
    last_used_on: dt.datetime | None
    #: What the key may do (``domain.scopes``); ``scopes.FULL`` for a key made without.
    scopes: Scopes = FULL
    #: The networks the key may be used from (None: wherever its user may).
    ip_ranges: tuple[str, ...] | None = None
    #: For an exchanged token, the key it was exchanged with.
    parent_id: int | None = None


@dataclass(frozen=True)
class Caller:
    """The authenticated user of one call (plain data) and the credential it came with;
    ``key`` is the API key used (None for a ``local-cli`` call)."""

    actor: Actor
    credential: Credential
    key: KeyUse | None


# Every request runs this, so it is built once and is one statement: the user's columns, the
# key's, and whether any IP rule applies (rules are rare; they are fetched only when there are
# some).
_has_ip_rules = (select(UserIpRule.id)
                 .where(UserIpRule.user_id.in_([User.id, DEFAULT_USER_ID]))
                 .exists())
#: An exchanged token's parent key: revoked or expired, it takes its tokens with it.
_parent = aliased(ApiKey, name="parent")
#: The user's public columns (an ``Actor``'s): the password hash stays in the database.
_USER_ATTRIBUTES = tuple((name, getattr(User, name)) for name in ACTOR_FIELDS)
#: The key's columns and the IP-rule flag, by the names ``_checked`` reads them by.
_KEY_COLUMNS = {"key_id": ApiKey.id, "digest": ApiKey.digest, "revoked_on": ApiKey.revoked_on,
                "expires_on": ApiKey.expires_on, "last_used_on": ApiKey.last_used_on,
                "scopes": ApiKey.scopes, "ip_ranges": ApiKey.ip_ranges,
                "parent_id": ApiKey.parent_id, "parent_revoked_on": _parent.revoked_on,
                "parent_expires_on": _parent.expires_on, "has_ip_rules": _has_ip_rules}
_KEY_LOOKUP = (
    select(*(column.label(f"user_{name}") for name, column in _USER_ATTRIBUTES),
           *(column.label(name) for name, column in _KEY_COLUMNS.items()))
    .join_from(ApiKey, User, ApiKey.user_id == User.id)
    .outerjoin(_parent, _parent.id == ApiKey.parent_id)
    .where(ApiKey.digest == bindparam("digest"))
)
_IP_RULES = select(UserIpRule.ip_addr).where(
    UserIpRule.user_id.in_([bindparam("user_id"), DEFAULT_USER_ID]))


@dataclass(frozen=True)
class FoundKey:
    """A key that may be used, found before the call's transaction began."""

    user: Actor
    key: KeyUse
    has_ip_rules: bool


class KeyLookup:
    """Finds and checks an API key on a bare driver connection, before any session exists.

    Every request starts here, and so does anyone guessing keys. Through the ORM the lookup
    cost a session, a transaction and the loading of an object (0.20 ms in-process on
    SQLite); on the bare connection it costs 0.02 ms, and a refused key costs nothing more.
    The column types' own result processors convert the values, as a query through
    SQLAlchemy would; the caller is plain data (``Actor``) from then on.
    """

    def __init__(self, engine: Engine) -> None:
        # ``engine`` must not begin transactions on its own: SQLite's connections are
        # autocommit at the driver (db.py), PostgreSQL's read engine is in autocommit.
        dialect = engine.dialect
        compiled = _KEY_LOOKUP.compile(dialect=dialect)
        self.engine = engine
        self.sql = str(compiled)
        self.defaults = dict(compiled.params)
        self.order = compiled.positiontup if dialect.positional else None
        self.names = [str(column.key) for column in _KEY_LOOKUP.selected_columns]
        self.converters = [column.type.dialect_impl(dialect).result_processor(dialect, None)
                           for column in _KEY_LOOKUP.selected_columns]

    def find(self, credential: Credential,
             outside: Sequence[Credential] = ()) -> FoundKey | None:
        """The key's row, checked, and every key ``outside`` the body checked to be a valid
        key of the same user (one statement per distinct key: one the same as the body's
        costs none); None when the database could not be asked or the credential is no API
        key (the call's transaction then runs ``authenticate``). Raises ``InvalidApiKey``."""
        if credential.kind != API_KEY:
            return None
        digest = _digest_of(credential.secret)
        others = _outside_digests(digest, outside)
        try:
            found = _found(digest, self._row(digest))
            _check_outside(found, digest, others, self._row)
        except (self.engine.dialect.loaded_dbapi.Error, DBAPIError) as exc:
            # A dead pooled connection (a restarted database server) or none to be had: the
            # call's own transaction looks the key up again and answers ``Database
            # unavailable`` if it cannot, never ``Invalid API key``.
            log.warning("could not look up an API key before the call: %s",
                        type(exc).__name__)
            return None
        return found

    def _row(self, digest: str) -> Mapping[Any, Any] | None:
        raw = self._fetch(digest)
        if raw is None:
            return None
        return {name: value if convert is None else convert(value)
                for name, convert, value in zip(self.names, self.converters, raw, strict=True)}

    def _fetch(self, digest: str) -> Any:
        values = {**self.defaults, "digest": digest}
        params: Any = tuple(values[k] for k in self.order) if self.order else values
        connection = self.engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self.sql, params)
                return cursor.fetchone()
            finally:
                cursor.close()
        except self.engine.dialect.loaded_dbapi.Error as exc:
            connection.invalidate(exc)
            raise
        finally:
            connection.close()


def caller_of(conn: Connection, found: FoundKey, credential: Credential,
              client_ip: str | None) -> Caller:
    """The caller of a key ``KeyLookup`` found, once its address is allowed: by the user's
    rules (and ``default``'s) and by the key's own ``ip_ranges``."""
    user = found.user
    if found.has_ip_rules and not ip_allowed(conn, user.id, client_ip):
        raise InvalidApiKey(f"address {client_ip} not allowed for user id {user.id}")
    ranges = found.key.ip_ranges
    if ranges is not None and not address_in(client_ip, ranges):
        raise InvalidApiKey(f"address {client_ip} not allowed for key id {found.key.id}")
    return Caller(actor=user, credential=credential, key=found.key)


_FIRST_ADMIN = (select(*(column for _name, column in _USER_ATTRIBUTES))
                .where(User.admin.is_(True), User.active.is_(True), User.id != DEFAULT_USER_ID)
                .order_by(User.id).limit(1))


def authenticate(conn: Connection, credential: Credential, client_ip: str | None,
                 outside: Sequence[Credential] = ()) -> Caller:
    """The active user behind ``credential``, asked on ``conn`` in the call's transaction
    (for an API key, ``KeyLookup``'s fallback, which checks the keys ``outside`` the body as
    it does). Raises ``InvalidApiKey``."""
    if credential.kind == LOCAL_CLI:
        admin = conn.execute(_FIRST_ADMIN).first()
        if admin is None:
            raise NoActiveAdmin()
        return Caller(actor=Actor(*admin), credential=credential, key=None)
    digest = _digest_of(credential.secret)
    others = _outside_digests(digest, outside)

    def row_of(digest: str) -> Mapping[Any, Any] | None:
        return conn.execute(_KEY_LOOKUP, {"digest": digest}).mappings().first()

    found = _found(digest, row_of(digest))
    _check_outside(found, digest, others, row_of)
    return caller_of(conn, found, credential, client_ip)


def _found(digest: str, row: Mapping[Any, Any] | None) -> FoundKey:
    if row is None:
        raise InvalidApiKey("unknown key")
    return _checked(digest, row)


def _outside_digests(body_digest: str,
                     outside: Sequence[Credential]) -> list[tuple[Credential, str]]:
    """The distinct keys outside the body that differ from the body's, with their digests;
    a malformed one is refused here, before any statement. Digests are compared, not keys:
    both sides are the request's own, and the stored digest is compared in constant time
    (``_checked``)."""
    if len(outside) > MAX_OUTSIDE_KEYS:
        raise InvalidApiKey(f"{len(outside)} keys outside the body (at most "
                            f"{MAX_OUTSIDE_KEYS})")
    seen = {body_digest}
    others = []
    for credential in outside:
        try:
            digest = _digest_of(credential.secret)
        except InvalidApiKey as exc:
            raise InvalidApiKey(f"{WHERE[credential.kind]}: {exc.reason}") from None
        if credential.kind == BASIC or digest not in seen:
            # Basic's username is checked against the key's user, even for the body's key.
            seen.add(digest)
            others.append((credential, digest))
    return others


def _check_outside(found: FoundKey, body_digest: str,
                   others: Sequence[tuple[Credential, str]],
                   row_of: Callable[[str], Mapping[Any, Any] | None]) -> None:
    """Each key outside the body must be a usable key of the body key's user (the tokens
    issue will let one stand alone); Basic's username must be that user's. A key is looked
    up once, however often it comes."""
    rows = {body_digest: found}
    for credential, digest in others:
        where = WHERE[credential.kind]
        try:
            other = rows.get(digest) or _found(digest, row_of(digest))
        except InvalidApiKey as exc:
            raise InvalidApiKey(f"{where}: {exc.reason}") from None
        rows[digest] = other
        if other.user.id != found.user.id:
            raise InvalidApiKey(f"{where}: a key of user id {other.user.id}, not of the "
                                f"body key's user id {found.user.id}")
        if credential.kind == BASIC and not hmac.compare_digest(
                str(credential.username).encode(), other.user.username.encode()):
            raise InvalidApiKey(f"{where}: the username is not that of the key's user id "
                                f"{found.user.id}")


class NoActiveAdmin(InvalidApiKey):
    """A ``local-cli`` call with no active admin to act as (``rpcserver recover-admin``)."""

    def __init__(self) -> None:
        super().__init__("no active admin for a local-cli call")


def _digest_of(api_key: object) -> str:
    if not isinstance(api_key, str) or not is_key_shaped(api_key):
        raise InvalidApiKey("malformed key")
    return key_digest(api_key)


def _checked(digest: str, row: Mapping[Any, Any]) -> FoundKey:
    """A row of ``_KEY_LOOKUP``, checked; every refusal is the same ``InvalidApiKey``, its
    reason for the log only."""
    user = Actor(*(row[f"user_{name}"] for name, _ in _USER_ATTRIBUTES))
    key_id, stored_digest = row["key_id"], row["digest"]
    revoked_on, expires_on = row["revoked_on"], row["expires_on"]
    user_id = user.id
    # The index found the row; compare anyway in constant time, as a second line of defence.
    if not hmac.compare_digest(stored_digest, digest):
        raise InvalidApiKey("digest mismatch")
    if revoked_on is not None:
        raise InvalidApiKey(f"revoked key id {key_id} of user id {user_id}")
    now = utcnow()
    if expires_on is not None and expires_on <= now:
        raise InvalidApiKey(f"expired key id {key_id} of user id {user_id}")
    if row["parent_id"] is not None and (
            row["parent_revoked_on"] is not None
            or (row["parent_expires_on"] is not None and row["parent_expires_on"] <= now)):
        raise InvalidApiKey(f"token id {key_id}: its key id {row['parent_id']} was revoked "
                            "or expired")
    if not user.active or user_id == DEFAULT_USER_ID:
        raise InvalidApiKey(f"inactive user id {user_id}")
    ranges = row["ip_ranges"]
    key = KeyUse(id=key_id, last_used_on=row["last_used_on"], scopes=_scopes_of(row["scopes"]),
                 ip_ranges=tuple(ranges.split()) if ranges is not None else None,
                 parent_id=row["parent_id"])
    return FoundKey(user=user, key=key, has_ip_rules=bool(row["has_ip_rules"]))


@functools.lru_cache(maxsize=1024)
def _scopes_of(stored: str) -> Scopes:
    """A stored scope list, parsed (most keys share a few forms: parsed once each)."""
    try:
        return parse_scopes(stored)
    except ScopeError:
        # Only this server writes the column, always parsed first: a row that does not parse
        # was changed by hand. It grants nothing rather than everything.
        log.error("an API key's stored scopes do not parse: %r", stored[:100])
        return Scopes(coarse=None)


def ip_allowed(conn: Connection, user_id: int, client_ip: str | None) -> bool:
    """No rule for the user and none for ``default`` (the global list) means any address."""
    rules = conn.scalars(_IP_RULES, {"user_id": user_id}).all()
    return not rules or address_in(client_ip, rules)


def address_in(client_ip: str | None, networks: Sequence[str]) -> bool:
    """Whether ``client_ip`` is inside one of ``networks`` (addresses or CIDR ranges)."""
    if client_ip is None:
        return False
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    return any(address in ipaddress.ip_network(rule, strict=False) for rule in networks)


def needs_touch(key: KeyUse) -> bool:
    return key.last_used_on is None or utcnow() - key.last_used_on >= LAST_USED_RESOLUTION


def hash_password(password: str) -> str | None:
    """argon2id hash; an empty password means "cannot log in with a password"."""
    return _hasher.hash(password) if password else None


def verify_password(password_hash: str | None, password: str) -> bool:
    if not password_hash or not password:
        return False
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
