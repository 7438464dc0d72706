"""Grants on repositories and repository groups: grant_/revoke_user_permission,
grant_/revoke_user_group_permission, and the four repository-group variants.

A grant sets one user's (or user group's) level on one object, replacing any earlier grant;
a revoke removes it. On a repository group, ``apply_to_children`` also applies it to what is
inside, at any depth, as Kallithea does: ``none`` (the group only), ``repos`` (and every
repository inside), ``groups`` (and every group inside), ``all``. A repository gets the
repository level of the same rank (``group.write`` -> ``repository.write``); the ``default``
user's grant is never applied to a private repository.
"""

from __future__ import annotations

from typing import Any

from rpcserver.core import schemas
from rpcserver.core.errors import ApiError
from rpcserver.core.registry import Registry
from rpcserver.db.models import (
    Level,
    RepoGroup,
    Repository,
    User,
    UserGroup,
)
from rpcserver.domain.context import CallContext
from rpcserver.domain.grants import (
    DEFAULT_USER_ID,
    REPO,
    REPO_GROUP,
    Grantee,
    Kind,
    parse_perm,
    revoke,
    set_grant,
)
from rpcserver.domain.lookup import get_user as find_user
from rpcserver.domain.permissions import ADMIN, AllOf, OnRepo, OnRepoGroup, OnUserGroup
from rpcserver.domain.repositories import groups_under, repos_under

registry = Registry()

REPOID = schemas.id_or_name()
REPOGROUPID = schemas.id_or_name()
USERID = schemas.id_or_name()
USERGROUPID = schemas.id_or_name()
PERM = schemas.string(64, min_length=1)
CHILDREN = schemas.one_of_values("none", "repos", "groups", "all")



def _level(perm: str, kind: Kind) -> Level:
    parsed = parse_perm(perm)
    if parsed is None:
        raise ApiError(f"permission `{perm}` does not exist")
    if parsed[0] is not kind:
        raise ApiError(f"permission `{perm}` is invalid, should start with {kind.prefix}.")
    return parsed[1]


def _targets(ctx: CallContext, group: RepoGroup, who: Grantee,
             apply_to_children: str) -> list[Repository | RepoGroup]:
    """The group and, as ``apply_to_children`` says, what is inside it."""
    targets: list[Repository | RepoGroup] = [group]
    if apply_to_children in ("groups", "all"):
        targets += groups_under(ctx, group.name)
    if apply_to_children in ("repos", "all"):
        is_default = isinstance(who, User) and who.id == DEFAULT_USER_ID
        targets += [r for r in repos_under(ctx, group.name) if not (is_default and r.private)]
    return targets


# -- repositories -------------------------------------------------------------------------


@registry.method("grant_user_permission",
                 schema=schemas.obj(required=("repoid", "userid", "perm"), repoid=REPOID,
                                    userid=USERID, perm=PERM),
                 permission=AllOf(ADMIN, OnRepo("repoid", Level.READ)), writes=True)
def grant_user_permission(ctx: CallContext, repoid: Any, userid: Any,
                          perm: str) -> dict[str, Any]:
    """Grant a user ``repository.none|read|write|admin`` on a repository (replacing an
    earlier grant)."""
    repo = ctx.object_of("repoid", Repository)
    user = find_user(ctx.session, userid)
    set_grant(ctx.session, user, repo, _level(perm, REPO))
    return {"msg": f"Granted perm: `{perm}` for user: `{user.username}` in repo: "
                   f"`{repo.name}`", "success": True}


@registry.method("revoke_user_permission",
                 schema=schemas.obj(required=("repoid", "userid"), repoid=REPOID,
                                    userid=USERID),
                 permission=AllOf(ADMIN, OnRepo("repoid", Level.READ)), writes=True)
def revoke_user_permission(ctx: CallContext, repoid: Any, userid: Any) -> dict[str, Any]:
    """Remove a user's grant on a repository."""
    repo = ctx.object_of("repoid", Repository)
    user = find_user(ctx.session, userid)
    revoke(ctx.session, user, repo)
    return {"msg": f"Revoked perm for user: `{user.username}` in repo: `{repo.name}`",
            "success": True}


_REPO_ADMIN_AND_GROUP_READ = AllOf(OnRepo("repoid", Level.ADMIN),
                                   OnUserGroup("usergroupid", Level.READ))


@registry.method("grant_user_group_permission",
                 schema=schemas.obj(required=("repoid", "usergroupid", "perm"), repoid=REPOID,
                                    usergroupid=USERGROUPID, perm=PERM),
                 permission=_REPO_ADMIN_AND_GROUP_READ, writes=True)
def grant_user_group_permission(ctx: CallContext, repoid: Any, usergroupid: Any,
                                perm: str) -> dict[str, Any]:
    """Grant a user group ``repository.none|read|write|admin`` on a repository."""
    repo = ctx.object_of("repoid", Repository)
    group = ctx.object_of("usergroupid", UserGroup)
    set_grant(ctx.session, group, repo, _level(perm, REPO))
    return {"msg": f"Granted perm: `{perm}` for user group: `{group.name}` in repo: "
                   f"`{repo.name}`", "success": True}


@registry.method("revoke_user_group_permission",
                 schema=schemas.obj(required=("repoid", "usergroupid"), repoid=REPOID,
                                    usergroupid=USERGROUPID),
                 permission=_REPO_ADMIN_AND_GROUP_READ, writes=True)
def revoke_user_group_permission(ctx: CallContext, repoid: Any,
                                 usergroupid: Any) -> dict[str, Any]:
    """Remove a user group's grant on a repository."""
    repo = ctx.object_of("repoid", Repository)
    group = ctx.object_of("usergroupid", UserGroup)
    revoke(ctx.session, group, repo)
    return {"msg": f"Revoked perm for user group: `{group.name}` in repo: `{repo.name}`",
            "success": True}


# -- repository groups --------------------------------------------------------------------


def _apply(ctx: CallContext, group: RepoGroup, who: Grantee, level: Level | None,
           apply_to_children: str) -> None:
    for target in _targets(ctx, group, who, apply_to_children):
        if level is None:
            revoke(ctx.session, who, target)
        else:
            set_grant(ctx.session, who, target, level)


@registry.method("grant_user_permission_to_repo_group",
                 schema=schemas.obj(required=("repogroupid", "userid", "perm"),
                                    repogroupid=REPOGROUPID, userid=USERID, perm=PERM,
                                    apply_to_children=CHILDREN),
                 permission=OnRepoGroup("repogroupid", Level.ADMIN), writes=True)
def grant_user_permission_to_repo_group(ctx: CallContext, repogroupid: Any, userid: Any,
                                        perm: str,
                                        apply_to_children: str = "none") -> dict[str, Any]:
    """Grant a user ``group.none|read|write|admin`` on a repository group and, with
    ``apply_to_children``, on what is inside."""
    group = ctx.object_of("repogroupid", RepoGroup)
    user = find_user(ctx.session, userid)
    _apply(ctx, group, user, _level(perm, REPO_GROUP), apply_to_children)
    return {"msg": f"Granted perm: `{perm}` (recursive:{apply_to_children}) for user: "
                   f"`{user.username}` in repo group: `{group.name}`", "success": True}


@registry.method("revoke_user_permission_from_repo_group",
                 schema=schemas.obj(required=("repogroupid", "userid"),
                                    repogroupid=REPOGROUPID, userid=USERID,
                                    apply_to_children=CHILDREN),
                 permission=OnRepoGroup("repogroupid", Level.ADMIN), writes=True)
def revoke_user_permission_from_repo_group(ctx: CallContext, repogroupid: Any, userid: Any,
                                           apply_to_children: str = "none") -> dict[str, Any]:
    """Remove a user's grant on a repository group and, with ``apply_to_children``, on what
    is inside."""
    group = ctx.object_of("repogroupid", RepoGroup)
    user = find_user(ctx.session, userid)
    _apply(ctx, group, user, None, apply_to_children)
    return {"msg": f"Revoked perm (recursive:{apply_to_children}) for user: "
                   f"`{user.username}` in repo group: `{group.name}`", "success": True}


_GROUP_ADMIN_AND_USER_GROUP_READ = AllOf(OnRepoGroup("repogroupid", Level.ADMIN),
                                         OnUserGroup("usergroupid", Level.READ))


@registry.method("grant_user_group_permission_to_repo_group",
                 schema=schemas.obj(required=("repogroupid", "usergroupid", "perm"),
                                    repogroupid=REPOGROUPID, usergroupid=USERGROUPID,
                                    perm=PERM, apply_to_children=CHILDREN),
                 permission=_GROUP_ADMIN_AND_USER_GROUP_READ, writes=True)
def grant_user_group_permission_to_repo_group(
        ctx: CallContext, repogroupid: Any, usergroupid: Any, perm: str,
        apply_to_children: str = "none") -> dict[str, Any]:
    """Grant a user group ``group.none|read|write|admin`` on a repository group and, with
    ``apply_to_children``, on what is inside."""
    group = ctx.object_of("repogroupid", RepoGroup)
    user_group = ctx.object_of("usergroupid", UserGroup)
    _apply(ctx, group, user_group, _level(perm, REPO_GROUP), apply_to_children)
    return {"msg": f"Granted perm: `{perm}` (recursive:{apply_to_children}) for user group: "
                   f"`{user_group.name}` in repo group: `{group.name}`", "success": True}


@registry.method("revoke_user_group_permission_from_repo_group",
                 schema=schemas.obj(required=("repogroupid", "usergroupid"),
                                    repogroupid=REPOGROUPID, usergroupid=USERGROUPID,
                                    apply_to_children=CHILDREN),
                 permission=_GROUP_ADMIN_AND_USER_GROUP_READ, writes=True)
def revoke_user_group_permission_from_repo_group(
        ctx: CallContext, repogroupid: Any, usergroupid: Any,
        apply_to_children: str = "none") -> dict[str, Any]:
    """Remove a user group's grant on a repository group and, with ``apply_to_children``,
    on what is inside."""
    group = ctx.object_of("repogroupid", RepoGroup)
    user_group = ctx.object_of("usergroupid", UserGroup)
    _apply(ctx, group, user_group, None, apply_to_children)
    return {"msg": f"Revoked perm (recursive:{apply_to_children}) for user group: "
                   f"`{user_group.name}` in repo group: `{group.name}`", "success": True}
