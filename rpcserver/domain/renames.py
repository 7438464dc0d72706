"""Renaming or moving a repository, or a repository group with everything inside it: on disk
and in the database, in the call's transaction (the directory moves back if it rolls back).
One service for ``update_repo`` and ``update_repo_group``."""

from __future__ import annotations

import logging

from rpcserver.core.errors import ApiError, InvalidArg
from rpcserver.db.models import RepoGroup, Repository
from rpcserver.domain.context import CallContext
from rpcserver.domain.repositories import (
    disk_changes,
    groups_under,
    hold_locks,
    name_taken,
    repos_under,
    store_for,
)
from rpcserver.vcs import name_problem
from rpcserver.vcs.store import NAME_MAX

log = logging.getLogger(__name__)


def rename(ctx: CallContext, obj: Repository | RepoGroup, new_name: str,
           parent: RepoGroup | None, *, failed: ApiError, arg: str) -> None:
    """Give ``obj`` the full name ``new_name`` under ``parent`` (checked by the caller); a
    group's groups and repositories are renamed with it. ``failed`` is the method's answer
    when the name is taken, a repository inside is being pulled, or the directory cannot
    move; ``arg`` names the argument a too long inner name is blamed on."""
    what = "update_repo" if isinstance(obj, Repository) else "update_repo_group"
    if name_taken(ctx, new_name) is not None:
        log.info("%s %s: %s is taken", what, obj.id, new_name)
        raise failed
    old_name = obj.name
    inner_repos: list[Repository] = [obj] if isinstance(obj, Repository) else repos_under(
        ctx, old_name)
    inner_groups: list[RepoGroup] = [] if isinstance(obj, Repository) else groups_under(
        ctx, old_name)
    inside: list[Repository | RepoGroup] = [*inner_groups, *inner_repos]
    for inner in inside:
        if inner is not obj and name_problem(new_name + inner.name[len(old_name):]):
            raise InvalidArg(arg, f"the full name of `{inner.name}` would be longer than "
                             f"{NAME_MAX} characters")
    store = store_for(ctx.config)
    changes = disk_changes(ctx)
    hold_locks(ctx, changes, [r.id for r in inner_repos], failed)
    try:
        # ``path`` raises ``UnsafePath`` (an OSError) for a name that leads out of the root.
        old_path, new_path = store.path(old_name), store.path(new_name)
        if old_path.exists() or isinstance(obj, Repository):
            changes.move(old_path, new_path)
        else:  # a group whose directory was never made (or was removed): make it now
            new_path.mkdir(parents=True)
            changes.created(new_path)
    except OSError as exc:
        log.warning("%s %s: cannot move %s to %s: %s", what, obj.id, old_name, new_name, exc)
        raise failed from None
    for inner in inside:
        inner.name = new_name + inner.name[len(old_name):]
    if isinstance(obj, Repository):
        obj.group = parent
    else:
        obj.name = new_name
        obj.parent = parent
