"""Repositories and repository groups as the server keeps them: a database row and a
directory, changed together.

The API modules (``api/repos.py``, ``api/repo_groups.py``, ``api/pull.py``, ...) use these
helpers so that every method names, checks, creates and moves things the same way:

- names are checked before they become paths (``check_name``);
- a clone_uri is checked on every use (``checked_source``), refusals answering
  ``Invalid `clone_uri` arg in JSON DATA: <reason>``;
- disk changes are made inside the transaction with ``disk_changes(ctx)``, whose undo runs if
  the transaction rolls back, and whose trash is emptied only when it commits;
- ``last_changeset`` is cached in ``Repository.changeset_cache`` whenever the server changes a
  repository, so reads never run git.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from collections.abc import Iterable, Iterator
from functools import cache
from pathlib import Path
from typing import Any

from sqlalchemy import (
    CompoundSelect,
    Connection,
    Integer,
    Row,
    bindparam,
    literal,
    literal_column,
    select,
    union_all,
)

from rpcserver.core.config import Config
from rpcserver.core.errors import ApiError, InvalidArg, ReservedName
from rpcserver.db.database import Database
from rpcserver.db.models import (
    Gist,
    Level,
    RepoFollower,
    RepoGroup,
    Repository,
    User,
    UserGroup,
)
from rpcserver.db.savepoint import flushed_or
from rpcserver.domain import clone_uri_at_rest, serialize
from rpcserver.domain.access import has_global, resolve
from rpcserver.domain.context import CallContext, Context
from rpcserver.domain.grants import (
    CREATE_REPOSITORY,
    DEFAULT_USER_ID,
    REPO,
    REPO_GROUP,
    Kind,
    add_grants,
    default_grant_for_new,
    grants_on,
)
from rpcserver.domain.lookup import as_id
from rpcserver.vcs import clone_uri, gists
from rpcserver.vcs.backend import (
    DEFAULT_REPO_TYPE,
    Backend,
    Reader,
    Settings,
    backend_for,
    repo_type_at,
)
from rpcserver.vcs.journal import DiskChanges
from rpcserver.vcs.store import Busy, Store, name_problem, parent_of

log = logging.getLogger(__name__)

OWNER_ONLY_FOR_ADMIN = "Only Kallithea admin can specify `owner` param"
TOO_MANY_FETCHES = "too many fetches running for user `{}`, try again later"


# -- configuration-derived tools ----------------------------------------------------------


def known_hosts_file(config: Config) -> Path:
    """The ssh host keys clone URIs may use (``rpcserver known-hosts``)."""
    return _known_hosts(store_for(config))


def _known_hosts(store: Store) -> Path:
    return store.internal / "known_hosts"


def store_for(config: Config) -> Store:
    return Store.at(config.repos_root)


def vcs_settings(config: Config) -> Settings:
    """What every backend is configured with: the store, git's timeouts, ssh host keys."""
    store = store_for(config)
    return Settings(store=store, timeout=config.git_timeout,
                    stall_timeout=config.git_stall_timeout, known_hosts=_known_hosts(store))


def backend(config: Config, repo_type: str) -> Backend:
    """The backend of ``repo_type``: a repository row's, or the one create_repo was asked
    for (``vcs.backend.DEFAULT_REPO_TYPE`` when not); an ``ApiError`` saying what to install
    when this server lacks the backend's tool (a server without Mercurial keeps git)."""
    vcs = backend_for(repo_type, vcs_settings(config))
    reason = vcs.unavailable()
    if reason is not None:
        raise ApiError(f"This server cannot keep {repo_type} repositories: {reason}")
    return vcs


def reader(config: Config, repo: Any) -> Reader:
    """Repository ``repo`` (a row or a ``Repository``: its ``name`` and ``repo_type``) open
    for reading, through the backend of its ``repo_type``."""
    return backend(config, repo.repo_type).open(store_for(config).path(repo.name))


def repository_type_at(config: Config, path: Path) -> str | None:
    """The ``repo_type`` of the repository at ``path``; None when there is none."""
    return repo_type_at(path, vcs_settings(config))


def policy_for(config: Config) -> clone_uri.Policy:
    return clone_uri.Policy(allow_private_hosts=config.clone_uri_allow_private_hosts,
                            allow_local_paths=config.clone_uri_allow_local_paths)


def checked_source(config: Config, uri: str, *, admin: bool,
                   repo_type: str = DEFAULT_REPO_TYPE) -> clone_uri.Source:
    """``uri`` checked against the configured rules, host names resolved now, and against
    what the backend of ``repo_type`` can fetch from.

    Local paths are for admins only, even when allowed: a local clone reads the server's
    disk past every permission (another user's private repository, say)."""
    policy = policy_for(config)
    if not admin:
        policy = dataclasses.replace(policy, allow_local_paths=False)
    try:
        source = clone_uri.check(uri, policy)
    except clone_uri.CloneUriError as exc:
        raise InvalidArg("clone_uri", exc.reason) from None
    refusal = backend(config, repo_type).refusal(source)
    if refusal is not None:
        raise InvalidArg("clone_uri", refusal)
    return source


def name_known(db: Database, name: str) -> bool:
    """Whether a repository or a repository group is named ``name``, or, for a gist's
    directory (``vcs.gists.relative_name``), whether its gist exists (``journal.recover``)."""
    access_id = gists.access_id_of(name)
    with db.transaction(write=False) as session:
        if access_id is not None:
            return session.execute(select(Gist.id).where(Gist.access_id == access_id)
                                   ).first() is not None
        return any(session.execute(select(model.id).where(model.name == name)).first()
                   for model in (Repository, RepoGroup))


def disk_changes(ctx: CallContext) -> DiskChanges:
    """Disk changes tied to this call's transaction: undone on rollback, trash emptied on
    commit, locks released either way."""
    changes = DiskChanges(store_for(ctx.config))
    ctx.on_commit(changes.commit)
    ctx.on_rollback(changes.rollback)
    return changes


def hold_locks(ctx: CallContext, changes: DiskChanges, repo_ids: Iterable[int],
               failed: ApiError) -> None:
    """Take the locks of ``repo_ids`` without waiting (a pull in progress holds one): a
    repository is not moved or deleted under a running fetch."""
    ids = list(repo_ids)
    if not ids:
        return
    lock = store_for(ctx.config).lock(*ids)
    try:
        lock.acquire(0)
    except Busy as exc:
        log.info("%s is being pulled; refusing to move or delete it", exc)
        raise failed from None
    changes.hold(lock)


@contextlib.contextmanager
def fetch_slot(config: Config, fetcher: tuple[int, str] | None,
               source: clone_uri.Source | None) -> Iterator[None]:
    """Hold one of the ``max_fetches_per_user`` slots of ``fetcher`` (user id, name) while
    fetching from ``source`` over the network; refuse at once when all are taken. A remote
    that accepts and stays silent holds a worker thread until ``git_stall_timeout``: without
    this one user could hold them all. Local sources (a fork's parent) take none."""
    limit = config.max_fetches_per_user
    if fetcher is None or source is None or source.scheme == "file" or limit == 0:
        yield
        return
    user_id, username = fetcher
    slot = store_for(config).fetch_slot(user_id, limit)
    try:
        slot.acquire()
    except Busy:
        log.info("user id %s already runs %d fetches; refusing another", user_id, limit)
        raise ApiError(TOO_MANY_FETCHES.format(username)) from None
    try:
        yield
    finally:
        slot.release()


# -- names --------------------------------------------------------------------------------


def short_name(name: str) -> str:
    """The last part of a full name: ``proj/web`` -> ``web``."""
    return name.rpartition("/")[2]


def check_name(arg: str, name: str) -> None:
    """``Invalid `<arg>` arg in JSON DATA: <reason>`` for a name that cannot be a path;
    ``repository name `<name>` is reserved`` (groups too) when a part begins with ``_``: the
    server's own paths (``/_admin/``) begin so, beside the clone URLs (docs/serving.md)."""
    if any(part.startswith("_") for part in name.split("/")):
        raise ReservedName(name)
    problem = name_problem(name)
    if problem is None and as_id(name) is not None:
        problem = "must not be only digits (it would read as an id)"
    if problem is not None:
        raise InvalidArg(arg, problem)


#: What ``name_taken`` says holds a name.
REPO_NAMED, FORK_NAMED, GROUP_NAMED = "repo", "fork", "group"
_REPO_NAMED = select(Repository.fork_of_id).where(Repository.name == bindparam("name"))
_GROUP_NAMED = select(RepoGroup.id).where(RepoGroup.name == bindparam("name"))


def name_taken(ctx: Context, name: str) -> str | None:
    """What already has the name ``name``: ``REPO_NAMED``, ``FORK_NAMED`` (a repository that
    is a fork), ``GROUP_NAMED``, or None."""
    found = ctx.conn.execute(_REPO_NAMED, {"name": name}).first()
    if found is not None:
        return REPO_NAMED if found.fork_of_id is None else FORK_NAMED
    if ctx.conn.execute(_GROUP_NAMED, {"name": name}).first() is not None:
        return GROUP_NAMED
    return None


def destination_group(ctx: Context, name: str, *, top_level_permission: str | None =
                      CREATE_REPOSITORY) -> Row[Any] | None:
    """The group a new repository ``name`` goes into, if the caller may create there.

    Top level: ``top_level_permission`` (``hg.create.repository``; None: no check). Inside a
    group: the group must exist and be readable (``repo group `<g>` not found``) and the caller
    needs write on it (``no permission to create repo in <g>``). Admins may do anything.
    Answers the group's row.
    """
    parent = parent_of(name)
    if parent is None:
        if (top_level_permission is not None and not ctx.caller.admin
                and not has_global(ctx.conn, ctx.caller, top_level_permission)):
            raise ApiError("no permission to create top level repo")
        return None
    found = resolve(ctx.conn, ctx.caller, REPO_GROUP, parent)
    if found is None or found[1] < Level.READ or found[0].name != parent:
        raise ApiError(f"repo group `{parent}` not found")
    group, level = found
    if level < Level.WRITE:
        raise ApiError(f"no permission to create repo in {parent}")
    return group


def lock_group_row(ctx: CallContext, group_id: int | None) -> RepoGroup | None:
    """Re-read a group in this transaction, locking its row (PostgreSQL): a concurrent rename
    of the group then finishes before we use its path, or waits for us."""
    if group_id is None:
        return None
    return ctx.session.scalars(
        select(RepoGroup).where(RepoGroup.id == group_id).with_for_update()).first()


# -- creating rows ------------------------------------------------------------------------


def add_repository(ctx: CallContext, *, name: str, group: RepoGroup | None, owner: User,
                   private: bool, description: str, clone_uri_value: str | None,
                   landing_rev: str, enable_statistics: bool, enable_downloads: bool,
                   cache: dict[str, Any], repo_type: str, fork_of: Repository | None = None,
                   copy_from: Repository | RepoGroup | None = None) -> Repository:
    """Insert a repository with its grants and its owner as follower (as Kallithea: the
    creator, when someone else, does not follow).

    Grants: copied from ``copy_from`` (a fork's source, or the group with copy_permissions),
    else ``default`` gets the level its global ``repository.*`` permission names (none when
    private: the row is there, as in Kallithea, but ignored). ``repo `<name>` already exist``
    when the name was taken meanwhile. ``repo_type`` names the backend that made it. An empty
    description is stored as the repository's short name (Kallithea's default), so a later
    rename or move keeps it.
    """
    session = ctx.session
    try:
        stored_uri, encrypted = clone_uri_at_rest.columns(ctx.config, clone_uri_value)
    except clone_uri_at_rest.Unavailable as exc:
        log.error("creating %s: cannot encrypt its clone_uri: %s", name, exc)
        raise ApiError(f"failed to create repository `{name}`") from None
    repo = Repository(name=name, group=group, owner=owner, private=private,
                      description=description or short_name(name), clone_uri=stored_uri,
                      clone_uri_encrypted=encrypted,
                      landing_rev=landing_rev, enable_statistics=enable_statistics,
                      enable_downloads=enable_downloads, fork_of=fork_of,
                      changeset_cache=cache, repo_type=repo_type)
    with flushed_or(session, ApiError(f"repo `{name}` already exist")):
        session.add(repo)
    user_levels, group_levels = _initial_grants(ctx, REPO, copy_from, private)
    add_grants(session, REPO, repo.id, user_levels, group_levels)
    session.add(RepoFollower(repo_id=repo.id, user_id=owner.id))
    session.flush()
    return repo


def add_repo_group(ctx: CallContext, *, name: str, parent: RepoGroup | None, owner: User,
                   description: str, copy_permissions: bool) -> RepoGroup:
    """Insert a repository group with its grants. As Kallithea: an empty description is
    stored as the short name, and an owner who is no admin is granted ``group.admin``
    explicitly (``members`` lists it; it wins over a copied grant)."""
    session = ctx.session
    group = RepoGroup(name=name, parent=parent, owner=owner,
                      description=description or short_name(name))
    with flushed_or(session, ApiError(f"repo group `{name}` already exist")):
        session.add(group)
    source = parent if copy_permissions else None
    user_levels, group_levels = _initial_grants(ctx, REPO_GROUP, source, False)
    if not owner.admin:
        user_levels[owner.id] = Level.ADMIN
    add_grants(session, REPO_GROUP, group.id, user_levels, group_levels)
    session.flush()
    return group


def _initial_grants(ctx: CallContext, kind: Any, source: Repository | RepoGroup | None,
                    private: bool) -> tuple[dict[int, Level], dict[int, Level]]:
    if source is not None:
        return grants_on(ctx.session, source)
    level = Level.NONE if private else default_grant_for_new(ctx.session, kind)
    return {DEFAULT_USER_ID: level}, {}


# -- reading ------------------------------------------------------------------------------


def last_changeset(repo: Reader, *, refresh: bool = False) -> dict[str, Any]:
    """``last_changeset`` read from disk (for ``Repository.changeset_cache``); ``refresh``
    also brings the backend's caches up to date (git: the commit-graph, after a pull)."""
    tip, count = repo.tip_and_count(refresh=refresh)
    if tip is None:
        return dict(serialize.EMPTY_CHANGESET)
    return serialize.changeset(tip, count - 1)


def members(conn: Connection, kind: Kind, obj_id: int) -> list[dict[str, Any]]:
    """``members`` of get_repo / get_repo_group: user grants, then user-group grants."""
    found = conn.execute(_members_statement(kind), {"target_id": obj_id})
    return [serialize.member(name, "user_group" if from_group else "user",
                            kind.perm_name(level))
            for from_group, _id, name, level in found.all()]


@cache
def _members_statement(kind: Kind) -> CompoundSelect[Any]:
    """Both kinds of grant in one statement (built once), users' first, each in grant order."""
    target = bindparam("target_id", type_=Integer)
    users = (select(literal(0).label("from_group"), kind.user_perm.id.label("grant_id"),
                    User.username, kind.user_perm.level)
             .join(User, User.id == kind.user_perm.user_id)
             .where(getattr(kind.user_perm, kind.target) == target))
    groups = (select(literal(1).label("from_group"), kind.group_perm.id.label("grant_id"),
                     UserGroup.name, kind.group_perm.level)
              .join(UserGroup, UserGroup.id == kind.group_perm.group_id)
              .where(getattr(kind.group_perm, kind.target) == target))
    return union_all(users, groups).order_by(literal_column("from_group"),
                                                literal_column("grant_id"))


def repos_under(ctx: CallContext, prefix: str) -> list[Repository]:
    """Every repository whose name starts with ``prefix/``, at any depth."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
    return list(ctx.session.scalars(
        select(Repository).where(Repository.name.like(pattern, escape="\\"))
        .order_by(Repository.name)))


def groups_under(ctx: CallContext, prefix: str) -> list[RepoGroup]:
    """Every group whose path starts with ``prefix/``, at any depth, parents first."""
    pattern = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "/%"
    return sorted(ctx.session.scalars(
        select(RepoGroup).where(RepoGroup.name.like(pattern, escape="\\"))),
        key=lambda g: g.name.count("/"))
