"""What is inside a repository, read through its backend: get_repo_nodes, get_changesets,
get_changeset.

Revisions may be named as ``tip``, a revision number (Kallithea's 0-based index, oldest
first), a branch, a tag, or a full or abbreviated commit id; anything else is "not found"
and never reaches git (``vcs.backend.Reader.resolve``). Every list is bounded
(docs/repositories.md).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from typing import Any

from sqlalchemy import Row

from rpcserver.core import schemas
from rpcserver.core.errors import ApiError, InvalidArg
from rpcserver.core.registry import Registry
from rpcserver.db.models import Level
from rpcserver.domain import serialize
from rpcserver.domain.context import ReadContext
from rpcserver.domain.permissions import OnRepo
from rpcserver.domain.repositories import reader
from rpcserver.vcs.backend import Reader
from rpcserver.vcs.model import NoSuchPath, TooMany, VcsError

log = logging.getLogger(__name__)
registry = Registry()

#: get_changesets without ``max_revisions`` answers at most this many (the newest ones).
DEFAULT_MAX_REVISIONS = 1_000
#: ... and with it, at most this many.
MAX_REVISIONS = 10_000
#: get_repo_nodes refuses a listing longer than this (ask for a deeper ``root_path``).
MAX_NODES = 100_000
#: get_changeset and get_changesets refuse to list more changed files than this in one answer.
MAX_FILES = 100_000

REPOID = schemas.id_or_name()
REVISION = schemas.string(min_length=1)
DATE_FORMAT = "%Y-%m-%dT%H:%M:%S"
DATE = schemas.nullable(schemas.string(32))
#: An integer, or the same as a digit-only string (Kallithea's clients send strings).
COUNT = {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_REVISIONS},
                   {"type": "string", "pattern": r"^[0-9]{1,9}(?![\s\S])"},
                   {"type": "null"}]}
#: A changeset bound: a commit id, branch, tag or revision number (an integer too).
BOUND = schemas.nullable({"anyOf": [{"type": "integer", "minimum": 0,
                                     "maximum": schemas.MAX_ID},
                                    schemas.string(min_length=1)]})
_PATH_PART = re.compile(r"^[^\x00-\x1f\x7f]+$")


# -- get_repo_nodes -----------------------------------------------------------------------


def _root_path(root_path: str) -> str | None:
    """``root_path`` without surrounding ``/``; None when it cannot name a directory."""
    path = root_path.strip("/")
    if not path:
        return ""
    for part in path.split("/"):
        if part in ("", ".", "..") or not _PATH_PART.fullmatch(part):
            return None
    return path


@registry.method("get_repo_nodes",
                 schema=schemas.obj(required=("repoid", "revision", "root_path"),
                                    repoid=REPOID, revision=REVISION,
                                    root_path=schemas.string(4096),
                                    ret_type=schemas.string(16)),
                 permission=OnRepo("repoid", Level.READ), repository_arg="repoid")
def get_repo_nodes(ctx: ReadContext, repoid: Any, revision: str, root_path: str,
                   ret_type: str = "all") -> list[dict[str, str]]:
    """Every directory and file under ``root_path`` at ``revision``, recursively (paths from
    the repository root); ``ret_type`` ``files`` or ``dirs`` keeps one kind."""
    if ret_type not in ("all", "files", "dirs"):
        raise ApiError("ret_type must be one of all,dirs,files")
    repo_row = ctx.resolved["repoid"]
    failed = ApiError(f"failed to get repo: `{repo_row.name}` nodes")
    path = _root_path(root_path)
    if path is None:
        raise failed
    repo = reader(ctx.config, repo_row)
    try:
        commit = repo.resolve(revision)
        if commit is None:
            log.info("get_repo_nodes %s: no revision %r", repo_row.name, revision[:100])
            raise failed
        tree = repo.tree(commit, path, kinds=ret_type, at_most=MAX_NODES)
    except TooMany:
        log.info("get_repo_nodes %s: more than %d nodes under %r", repo_row.name, MAX_NODES,
                 path[:200])
        raise failed from None
    except NoSuchPath:
        log.info("get_repo_nodes %s: no directory %r at %s", repo_row.name, path[:200],
                 revision[:100])
        raise failed from None
    except VcsError as exc:
        log.warning("get_repo_nodes %s: %s", repo_row.name, exc)
        raise failed from None
    return ([{"name": d, "type": "dir"} for d in tree.dirs]
            + [{"name": f, "type": "file"} for f in tree.files])


# -- get_changesets -----------------------------------------------------------------------


def _on_disk(ctx: ReadContext, repo_row: Row[Any]) -> Reader:
    """The repository, open for reading; a clear answer instead of a git failure (and
    ``Internal server error``) when it was removed from disk behind the server's back."""
    repo = reader(ctx.config, repo_row)
    if not repo.exists():
        log.warning("%s: no %s repository at %s", repo_row.name, repo_row.repo_type,
                    repo.path)
        raise ApiError(f"repository `{repo_row.name}` is missing on disk; run rescan_repos")
    return repo


def _date(arg: str, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        return dt.datetime.strptime(value, DATE_FORMAT)
    except ValueError:
        raise InvalidArg(arg, "must be a date and time like 2024-01-31T23:59:59") from None


@registry.method("get_changesets",
                 schema=schemas.obj(required=("repoid",), repoid=REPOID, start=BOUND,
                                    end=BOUND, start_date=DATE, end_date=DATE,
                                    branch_name=schemas.nullable(REVISION),
                                    reverse=schemas.boolean(),
                                    with_file_list=schemas.boolean(), max_revisions=COUNT),
                 permission=OnRepo("repoid", Level.READ), repository_arg="repoid")
def get_changesets(ctx: ReadContext, repoid: Any, start: Any = None, end: Any = None,
                   start_date: str | None = None, end_date: str | None = None,
                   branch_name: str | None = None, reverse: bool = False,
                   with_file_list: bool = False,
                   max_revisions: Any = None) -> list[dict[str, Any]]:
    """Changesets oldest first (``reverse``: newest first): those between ``start`` and
    ``end`` (revisions, inclusive), committed between ``start_date`` and ``end_date`` (UTC,
    ``YYYY-MM-DDTHH:MM:SS``, inclusive), on ``branch_name``; of those, the newest
    ``max_revisions`` (default 1,000, at most 10,000)."""
    repo_row = ctx.resolved["repoid"]
    limit = DEFAULT_MAX_REVISIONS if max_revisions is None else int(max_revisions)
    if not 1 <= limit <= MAX_REVISIONS:
        raise InvalidArg("max_revisions", f"must be between 1 and {MAX_REVISIONS}")
    since, until = _date("start_date", start_date), _date("end_date", end_date)
    repo = _on_disk(ctx, repo_row)
    revisions: list[tuple[str, dt.datetime | None]]
    if since is not None or until is not None:
        revisions = list(repo.revisions_dated())
    else:
        revisions = [(sha, None) for sha in repo.revisions()]
    if not revisions:
        raise ApiError("Repository is empty")
    ids = [sha for sha, _when in revisions]
    index = {sha: i for i, sha in enumerate(ids)}
    refs = repo.refs()
    low, high = 0, len(ids) - 1
    for arg, bound in (("start", start), ("end", end)):
        if bound is None:
            continue
        found = repo.resolve(str(bound), refs, ids)
        if found is None or found not in index:
            raise ApiError(f"Changeset {bound} does not exist")
        if arg == "start":
            low = index[found]
        else:
            high = index[found]
    if low > high:
        raise InvalidArg("start", "must not come after `end`")
    selected = revisions[low:high + 1]
    if branch_name is not None:
        if branch_name not in refs.branches:
            raise ApiError(f"branch `{branch_name}` does not exist")
        on_branch = repo.on_branch(branch_name)
        selected = [r for r in selected if r[0] in on_branch]
    if since is not None or until is not None:
        selected = [(sha, when) for sha, when in selected if when is not None
                    and (since is None or when >= since) and (until is None or when <= until)]
    chosen = [sha for sha, _when in selected[-limit:]]
    try:
        commits = repo.commits(chosen, with_files=with_file_list, max_files=MAX_FILES)
    except TooMany:
        raise ApiError(f"these changesets change more than {MAX_FILES} files; "
                       "ask for fewer (max_revisions) or without with_file_list") from None
    found_changesets = [serialize.changeset(c, index[c.raw_id], with_file_list=with_file_list)
                        for c in commits]
    if reverse:
        found_changesets.reverse()
    return found_changesets


@registry.method("get_changeset",
                 schema=schemas.obj(required=("repoid", "raw_id"), repoid=REPOID,
                                    raw_id=REVISION, with_reviews=schemas.boolean()),
                 permission=OnRepo("repoid", Level.READ), repository_arg="repoid")
def get_changeset(ctx: ReadContext, repoid: Any, raw_id: str,
                  with_reviews: bool = False) -> dict[str, Any]:
    """One changeset with its author split into name and email and its changed files;
    ``raw_id`` may also be an abbreviated id, a branch, a tag, ``tip`` or a revision number."""
    repo_row = ctx.resolved["repoid"]
    repo = _on_disk(ctx, repo_row)
    ids = repo.revisions()
    found = repo.resolve(raw_id, None, ids)
    if found is None or found not in ids:
        raise ApiError(f"Changeset {raw_id} does not exist")
    try:
        commit = repo.commits([found], with_files=True, max_files=MAX_FILES)[0]
    except TooMany:
        raise ApiError(f"Changeset {raw_id} changes more than {MAX_FILES} files; "
                       "this server does not list them in one answer") from None
    data = serialize.changeset_detail(commit, ids.index(found))
    if with_reviews:
        data["reviews"] = []  # this server keeps no reviews (yet)
    return data
