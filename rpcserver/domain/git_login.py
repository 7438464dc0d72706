"""Who a git client is: HTTP Basic with a username and either a password, an API key or a
token exchanged at ``/_admin/token`` (docs/serving.md).

Keys and tokens are checked as for the API (``auth.KeyLookup``, ``auth.caller_of``: revoked,
expired, inactive user, the key's ``ip_ranges`` and the user's IP rules). A password is
checked against its argon2 hash; one clone makes several requests, so a success is
remembered for ``password_cache_seconds`` under an HMAC of the username, the password and the
stored hash (with a key made per process): the password itself is never kept, and a changed
password (a new hash) misses the cache at once.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import bindparam, select, update

from rpcserver.core.credentials import API_KEY, BASIC, Credential, is_api_key_like
from rpcserver.core.errors import InvalidApiKey
from rpcserver.db.database import Database
from rpcserver.db.models import ApiKey, User, utcnow
from rpcserver.domain.auth import (
    DEFAULT_USER_ID,
    KeyLookup,
    authenticate,
    caller_of,
    hash_password,
    ip_allowed,
    needs_touch,
    verify_password,
)
from rpcserver.domain.context import ACTOR_FIELDS, Actor
from rpcserver.domain.scopes import Scopes

#: The most remembered password checks (the oldest are forgotten first).
MAX_CACHED = 10_000

_USER_BY_NAME = (select(*(getattr(User, name) for name in ACTOR_FIELDS), User.password_hash)
                 .where(User.username == bindparam("username")))
_TOUCH = update(ApiKey).where(ApiKey.id == bindparam("key_id"))


@dataclass(frozen=True)
class GitCaller:
    """An authenticated git client: its user, and its key's scopes (None for a password:
    the user's own rights)."""

    actor: Actor
    scopes: Scopes | None


class GitLogin:
    def __init__(self, db: Database, keys: KeyLookup, cache_seconds: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.db = db
        self.keys = keys
        self.cache_seconds = cache_seconds
        self.clock = clock
        self._secret = secrets.token_bytes(32)
        self._cache: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()

    @functools.cached_property
    def _dummy_hash(self) -> str | None:
        """Verified when the username is unknown, so that an unknown user costs as long;
        made on first need (every app is built with one, most never see a password)."""
        return hash_password(secrets.token_urlsafe(16))

    def authenticate(self, username: str | None, secret: str,
                     client_ip: str | None) -> GitCaller:
        """The caller behind a Basic (``username`` given) or Bearer credential; raises
        ``InvalidApiKey`` (its reason is for the log)."""
        if is_api_key_like(secret):
            return self._by_key(username, secret, client_ip)
        if username is None:
            raise InvalidApiKey("a Bearer credential that is no API key")
        return self._by_password(username, secret, client_ip)

    def _by_key(self, username: str | None, secret: str, client_ip: str | None) -> GitCaller:
        credential = Credential(API_KEY, secret=secret)
        outside = () if username is None else (
            Credential(BASIC, secret=secret, username=username),)
        found = self.keys.find(credential, outside)
        with self.db.reading() as conn:
            caller = (caller_of(conn, found, credential, client_ip) if found is not None
                      else authenticate(conn, credential, client_ip, outside))
        key = caller.key
        if key is not None and needs_touch(key):
            with self.db.transaction(write=True) as session:
                session.execute(_TOUCH, {"key_id": key.id, "last_used_on": utcnow()})
        return GitCaller(actor=caller.actor, scopes=key.scopes if key is not None else None)

    def _by_password(self, username: str, password: str,
                     client_ip: str | None) -> GitCaller:
        with self.db.reading() as conn:
            row = conn.execute(_USER_BY_NAME, {"username": username}).first()
        if row is None:
            verify_password(self._dummy_hash, password)
            raise InvalidApiKey("unknown username (password)")
        actor = Actor(*row[:len(ACTOR_FIELDS)])
        stored = row.password_hash
        digest = self._digest(username, password, stored or "")
        if not self._remembered(digest):
            if not verify_password(stored, password):
                raise InvalidApiKey(f"wrong password for user id {actor.id}")
            self._remember(digest)
        if not actor.active or actor.id == DEFAULT_USER_ID:
            raise InvalidApiKey(f"inactive user id {actor.id}")
        with self.db.reading() as conn:
            if not ip_allowed(conn, actor.id, client_ip):
                raise InvalidApiKey(f"address {client_ip} not allowed for user id {actor.id}")
        return GitCaller(actor=actor, scopes=None)

    def _digest(self, username: str, password: str, stored: str) -> bytes:
        message = b"\0".join(part.encode("utf-8", "surrogatepass")
                             for part in (username, password, stored))
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def _remembered(self, digest: bytes) -> bool:
        if self.cache_seconds <= 0:
            return False
        with self._lock:
            until = self._cache.get(digest)
            if until is None:
                return False
            if until <= self.clock():
                del self._cache[digest]
                return False
            return True

    def _remember(self, digest: bytes) -> None:
        if self.cache_seconds <= 0:
            return
        with self._lock:
            self._cache[digest] = self.clock() + self.cache_seconds
            self._cache.move_to_end(digest)
            while len(self._cache) > MAX_CACHED:
                self._cache.popitem(last=False)
