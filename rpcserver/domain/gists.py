"""Gists as the server keeps them: a row (``db.models.Gist``) and a git repository in the
store's gist directory (``vcs.gists``), created, answered and removed together.

Kallithea's rules: a public gist's ``access_id`` is its id as text, a private one's 20 random
characters; ``expires`` is a unix time or -1 (never); only the owner or an admin sees a gist.
Ours besides: an expired gist is gone (answered as missing, and its repository removed by the
next create_gist or delete_gist, ``purge_expired``), and files are bounded (``checked_files``).
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from sqlalchemy import Connection, Float, Integer, Row, bindparam, select

from rpcserver.core.config import Config
from rpcserver.core.errors import ApiError, InvalidArg, NotFound
from rpcserver.db.models import Gist
from rpcserver.domain.context import CallContext, Context
from rpcserver.domain.lookup import by_id_or_name
from rpcserver.domain.repositories import disk_changes, store_for, vcs_settings
from rpcserver.domain.serialize import iso_date
from rpcserver.vcs import gists as disk
from rpcserver.vcs.model import VcsError

log = logging.getLogger(__name__)

PUBLIC, PRIVATE = "public", "private"
#: Kallithea's alphabet for private access ids (no 0, 1, I, O, i, o: easy to read out).
ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghjklmnpqrstuvwxyz"
ACCESS_ID_LENGTH = 20
#: Bounds on one gist, checked before anything is written (a gist is never cut short). The
#: request itself is bounded by ``max_body_bytes`` (1 MiB by default) before it gets here.
MAX_FILES = 100
MAX_FILE_BYTES = 1024 * 1024
MAX_TOTAL_BYTES = 10 * 1024 * 1024
#: How many expired gists one write removes (the rest go with the next ones).
PURGE_BATCH = 100
#: The longest lifetime, in minutes (100 years).
MAX_LIFETIME = 100 * 365 * 24 * 60

FAILED_CREATE = "failed to create gist"


def new_access_id() -> str:
    """20 characters from ``ALPHABET`` (``secrets``: unguessable); never all digits, which
    would read as a public gist's id."""
    while True:
        access_id = "".join(secrets.choice(ALPHABET) for _ in range(ACCESS_ID_LENGTH))
        if not access_id.isdigit():
            return access_id


def checked_files(files: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """``files`` (``{name: {"content": text, "lexer": ...}}``) as (name, content) pairs in
    the order given; ``Invalid `files` arg`` naming the first problem."""
    if not files:
        raise InvalidArg("files", "must name at least one file")
    if len(files) > MAX_FILES:
        raise InvalidArg("files", f"must name at most {MAX_FILES} files")
    checked, total = [], 0
    for name, spec in files.items():
        problem = disk.file_name_problem(name)
        if problem is not None:
            raise InvalidArg("files", problem)
        content = spec.get("content") if isinstance(spec, dict) else None
        if not isinstance(content, str):
            raise InvalidArg("files", f"file `{name}` needs a `content` string")
        try:
            size = len(content.encode())
        except UnicodeEncodeError:
            raise InvalidArg("files", f"file `{name}`: content must be valid Unicode text") \
                from None
        if size > MAX_FILE_BYTES:
            raise InvalidArg("files", f"file `{name}` is larger than {MAX_FILE_BYTES} bytes")
        total += size
        if total > MAX_TOTAL_BYTES:
            raise InvalidArg("files", f"the files are larger than {MAX_TOTAL_BYTES} bytes "
                             "together")
        checked.append((name, content))
    return tuple(checked)


def commit_message(names: list[str]) -> str:
    """Kallithea's message: ``added file: a``, or ``added files: a, b``."""
    return ("added files: " if len(names) > 1 else "added file: ") + ", ".join(names)


def expires_at(lifetime: int) -> float:
    """``lifetime`` minutes from now as a unix time; -1 (forever) stays -1."""
    return -1.0 if lifetime == -1 else time.time() + lifetime * 60


def url(config: Config, access_id: str) -> str:
    return f"{config.public_base()}/_admin/gists/{access_id}"


# -- rows and answers ---------------------------------------------------------------------

_COLUMNS = (Gist.id, Gist.gist_type, Gist.access_id, Gist.description, Gist.expires,
            Gist.created_on, Gist.owner_id)
_BY_ID = select(*_COLUMNS).where(Gist.id == bindparam("ident", type_=Integer))
_BY_ACCESS_ID = select(*_COLUMNS).where(Gist.access_id == bindparam("access_id"))
_LIVE = (Gist.expires == -1) | (Gist.expires > bindparam("now", type_=Float))
#: A user's live gists, newest first (Kallithea's order).
OWNED = (select(*_COLUMNS).where(Gist.owner_id == bindparam("owner_id"), _LIVE)
         .order_by(Gist.created_on.desc(), Gist.id.desc())
         .limit(bindparam("n", type_=Integer)))


def record(config: Config, row: Any) -> dict[str, Any]:
    """A gist as Kallithea answers it, in its key order; never the files."""
    return {
        "gist_id": row.id,
        "type": row.gist_type,
        "access_id": row.access_id,
        "description": row.description,
        "url": url(config, row.access_id),
        "expires": row.expires,
        "created_on": iso_date(row.created_on),
    }


def expired(row: Any) -> bool:
    return row.expires != -1 and row.expires < time.time()


def find(conn: Connection, gistid: Any) -> Row[*tuple[Any, ...]] | None:
    """The gist ``gistid`` names: its id (a number, or digits), else its access id."""
    params = by_id_or_name(gistid)
    if params is None:
        return None
    if "ident" in params:
        return conn.execute(_BY_ID, params).first()
    return conn.execute(_BY_ACCESS_ID, {"access_id": params["name"]}).first()


def visible(ctx: Context, gistid: Any, *, expired_too: bool = False) -> Row[*tuple[Any, ...]]:
    """The gist, if the caller may see it (its owner, an admin) and it has not expired
    (unless ``expired_too``); else ``gist `<x>` does not exist``, one text for all."""
    row = find(ctx.conn, gistid)
    if row is None or (expired(row) and not expired_too) or (
            row.owner_id != ctx.caller.id and not ctx.caller.admin):
        raise NotFound("gist", gistid)
    return row


def files_of(config: Config, access_id: str) -> dict[str, str]:
    """The gist's files by name, as RhodeCode's ``content`` answers them."""
    found = disk.read(vcs_settings(config), disk.path(store_for(config), access_id))
    return {name: content.decode("utf-8", "replace") for name, content in found}


# -- changing them ------------------------------------------------------------------------


@dataclass(frozen=True)
class CreateGist:
    """Build a gist's repository in scratch space (create_gist's slow part): one commit of
    ``files`` (name, content) by ``author`` (name, email) saying ``message``."""

    kind: ClassVar[str] = "create_gist"
    files: tuple[tuple[str, str], ...]
    author: tuple[str, str]
    message: str

    @contextlib.contextmanager
    def run(self, config: Config) -> Iterator[Path]:
        store = store_for(config)
        store.sweep()
        with store.scratch("gist") as scratch:
            try:
                disk.write(vcs_settings(config), scratch,
                           [(name, content.encode()) for name, content in self.files],
                           message=self.message, author=self.author)
            except (VcsError, OSError) as exc:
                log.warning("building a gist failed: %s", exc)
                raise ApiError(FAILED_CREATE) from None
            yield scratch


def put_in_place(ctx: CallContext, gist: Gist, built: Path) -> None:
    """Move a built repository to ``gist``'s place, undone if the transaction rolls back."""
    try:
        disk_changes(ctx).move(built, disk.path(store_for(ctx.config), gist.access_id))
    except OSError as exc:
        log.warning("creating gist %s: cannot move it into place: %s", gist.access_id, exc)
        raise ApiError(FAILED_CREATE) from None


def remove(ctx: CallContext, gist: Gist) -> None:
    """Delete the row and (once the transaction commits) the repository; a repository
    already gone from disk is no error."""
    target = disk.path(store_for(ctx.config), gist.access_id)
    ctx.session.delete(gist)
    if target.exists():
        disk_changes(ctx).discard(target)


def purge_expired(ctx: CallContext) -> None:
    """Remove up to ``PURGE_BATCH`` expired gists, rows and repositories (anyone's)."""
    now = time.time()
    found = ctx.session.scalars(
        select(Gist).where(Gist.expires != -1, Gist.expires < now).order_by(Gist.id)
        .limit(PURGE_BATCH)).all()
    for gist in found:
        log.info("gist %s (id %s) expired: removed", gist.access_id, gist.id)
        remove(ctx, gist)
