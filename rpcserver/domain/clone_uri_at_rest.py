"""How a clone_uri is kept in the database: its password never in plain text.

A clone_uri without a password is stored as it is, in ``repositories.clone_uri``. One with a
password is stored twice: masked in ``clone_uri`` (``https://user:***@host/r``, exactly what
the API answers, so admins and SQL still see where a repository pulls from), and whole in
``clone_uri_encrypted``, encrypted with the first of the server's secret keys
(``secret_keys``). Only a fetch decrypts it (``for_git``), and the password then travels to
git through the environment, as before.

Databases from before encryption hold plain passwords: ``seal_plaintext`` encrypts them
(``rpcserver db upgrade``, ``init`` and ``serve`` run it through ``prepare``), and
``rotate`` encrypts every stored password again with a new first key.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Engine, select, text
from sqlalchemy.orm import Session

from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.db.models import Repository
from rpcserver.domain import secret_keys
from rpcserver.vcs import clone_uri

log = logging.getLogger(__name__)


class Unavailable(Exception):
    """The stored clone_uri cannot be read back; the message (for the log) says why."""


def keyring(config: Config, *, create: bool = False) -> secret_keys.Keyring:
    try:
        return secret_keys.current(config.secret_key_file, create=create)
    except (secret_keys.KeyFileError, OSError) as exc:
        raise Unavailable(str(exc)) from None


def columns(config: Config, uri: str | None) -> tuple[str | None, str | None]:
    """``(clone_uri, clone_uri_encrypted)`` to store for ``uri`` (None or ``""``: none).

    ``Unavailable`` when the key file can neither be read nor made."""
    if not uri:
        return None, None
    masked = clone_uri.mask(uri)
    if masked == uri:
        return uri, None
    return masked, keyring(config, create=True).encrypt(uri)


def store(config: Config, repo: Repository, uri: str | None) -> None:
    repo.clone_uri, repo.clone_uri_encrypted = columns(config, uri)


def for_git(config: Config, clone_uri: str | None, encrypted: str | None) -> str | None:
    """A repository's clone_uri with its password (from its ``clone_uri`` and
    ``clone_uri_encrypted`` columns), to fetch from; ``Unavailable`` when no configured key
    decrypts it (the key file was lost or its key removed too early)."""
    if encrypted is None:
        return clone_uri
    try:
        return keyring(config).decrypt(encrypted)
    except secret_keys.Undecryptable as exc:
        raise Unavailable(str(exc)) from None


# -- whole-table work: upgrade, start-up and rotation -------------------------------------


@dataclass
class Rotation:
    reencrypted: int = 0
    sealed: int = 0
    #: names of the repositories whose stored password no configured key decrypts
    undecryptable: list[str] = field(default_factory=list)


def seal_plaintext(session: Session, keys: secret_keys.Keyring) -> int:
    """Encrypt every password still stored in plain text; how many there were."""
    sealed = 0
    rows = session.scalars(select(Repository).where(Repository.clone_uri_encrypted.is_(None),
                                                    Repository.clone_uri.contains("@")))
    for repo in rows:
        uri = repo.clone_uri or ""
        masked = clone_uri.mask(uri)
        if masked != uri:
            repo.clone_uri, repo.clone_uri_encrypted = masked, keys.encrypt(uri)
            sealed += 1
    session.flush()
    return sealed


def rotate(session: Session, keys: secret_keys.Keyring) -> Rotation:
    """Every stored password encrypted again with the first key (plain ones too)."""
    result = Rotation(sealed=seal_plaintext(session, keys))
    rows = session.scalars(select(Repository).where(Repository.clone_uri_encrypted.is_not(None))
                           .order_by(Repository.id))
    for repo in rows:
        try:
            repo.clone_uri_encrypted = keys.reencrypt(repo.clone_uri_encrypted or "")
        except secret_keys.Undecryptable:
            result.undecryptable.append(repo.name)
            continue
        result.reencrypted += 1
    session.flush()
    return result


def compact(engine: Engine) -> None:
    """Rewrite the repositories' storage so that replaced values (plain passwords, tokens of
    a retired key) do not linger in free space: SQLite ``VACUUM`` (and its WAL emptied),
    PostgreSQL ``VACUUM FULL repositories`` (which locks the table for a moment)."""
    if engine.dialect.name == "sqlite":
        # The driver's own connection: the engine's "begin" hook would wrap VACUUM in a
        # transaction, which SQLite refuses.
        raw = engine.raw_connection()
        try:
            raw.execute("VACUUM")
            raw.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            raw.close()
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM FULL repositories"))


def prepare(config: Config, database: Database) -> tuple[bool, int]:
    """Before serving: the key file exists, and no password is stored in plain text.
    Returns (whether the key file was made now, how many passwords were encrypted)."""
    try:
        created = secret_keys.ensure(config.secret_key_file)
        keys = secret_keys.current(config.secret_key_file)
    except OSError as exc:
        raise Unavailable(f"secret key file {config.secret_key_file} cannot be made: "
                          f"{exc.strerror}") from None
    except secret_keys.KeyFileError as exc:
        raise Unavailable(str(exc)) from None
    with database.transaction(write=True) as session:
        sealed = seal_plaintext(session, keys)
    if sealed:
        compact(database.engine)
        log.info("encrypted %d clone_uri password(s) stored in plain text", sealed)
    return created, sealed
