"""Permissions: what a method requires of its caller, and what a user may do.

A ``Requirement`` is declared with each method and checked by the dispatcher, in one place,
after the arguments are valid (API.md §1 row 15).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select

from .errors import AccessDenied, ApiError
from .models import GlobalPermission

if TYPE_CHECKING:
    from .dispatch import CallContext

DEFAULT_USER_ID = 1

#: Global permissions ``default`` holds out of the box (API.md §3).
DEFAULT_GLOBAL_PERMISSIONS = (
    "hg.create.repository",
    "hg.fork.repository",
    "hg.extern_activate.auto",
    "hg.register.manual_activate",
    "repository.read",
    "group.read",
    "usergroup.read",
)

#: What ``get_user`` lists for an admin, who may do everything.
ADMIN_GLOBAL_PERMISSIONS = (
    "hg.admin",
    "hg.create.repository",
    "hg.create.write_on_repogroup.true",
    "hg.fork.repository",
    "hg.usergroup.create.true",
    "hg.extern_activate.auto",
    "hg.register.manual_activate",
    "repository.admin",
    "group.admin",
    "usergroup.admin",
)


class Requirement(Protocol):
    """What a method needs of its caller; raises an ``ApiError`` when it is not met."""

    description: str

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None: ...


class _Admin:
    description = "admin"

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        if not ctx.user.admin:
            raise AccessDenied()


class _Anyone:
    description = "any user with a valid key"

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        return None


class SelfOrAdmin:
    """The caller may name itself (by id or by its own name); only an admin anyone else."""

    def __init__(self, arg: str) -> None:
        self.arg = arg
        self.description = f"admin, or any user for itself (`{arg}` omitted or its own)"

    def check(self, ctx: CallContext, args: dict[str, Any]) -> None:
        if ctx.user.admin:
            return
        value = args.get(self.arg)
        if value is None:
            return
        own = {ctx.user.id, str(ctx.user.id), ctx.user.username}
        if value not in own or isinstance(value, bool):
            raise ApiError("userid is not the same as your user")


ADMIN: Requirement = _Admin()
ANYONE: Requirement = _Anyone()


def global_permissions(ctx: CallContext, user_id: int, admin: bool) -> list[str]:
    """A user's global permissions: its own grants plus those of ``default``, sorted."""
    if admin:
        return list(ADMIN_GLOBAL_PERMISSIONS)
    names = ctx.session.scalars(
        select(GlobalPermission.name).where(
            GlobalPermission.user_id.in_((user_id, DEFAULT_USER_ID)))
    ).all()
    return sorted(set(names))
