"""What each method requires of its caller (API.md §3).

A ``Requirement`` is declared with each method and checked by the dispatcher, in one place,
after the arguments are valid (API.md §1 row 15). An object requirement (``OnRepo``,
``OnRepoGroup``, ``OnUserGroup``) answers the object's "does not exist" text when the caller
cannot read it, ``Access was denied to this resource.`` when it can read it but needs more, and
leaves the object's row (``domain.rows``) in ``ctx.resolved[arg]`` for the handler. Levels are
computed by ``domain.access``, on ``ctx.conn``: the same statements for reads and writes.
"""

from __future__ import annotations

from typing import Any

from rpcserver.core.errors import AccessDenied, ApiError
from rpcserver.core.registry import Method, Requirement
from rpcserver.db.models import (
    Level,
)
from rpcserver.domain import rows
from rpcserver.domain.access import (
    find_readable,
    has_global,
    resolve,
)
from rpcserver.domain.context import Context
from rpcserver.domain.grants import (
    REPO,
    REPO_GROUP,
    USER_GROUP,
    Kind,
)
from rpcserver.domain.scopes import ScopeRefused

# --- Scopes: what the key may do below the user's rights -----------------------------------


def check_scope(ctx: Context, method: Method, args: dict[str, Any], called: str) -> None:
    """Refuse the call when the key's scopes do not reach ``method`` (``called``: the name
    the call used, an alias maybe); run after the method's own requirement passed (the
    repository it names is then the caller's to see)."""
    scopes = ctx.scopes
    if scopes.reaches(method):
        return
    repository = None
    if method.repository_arg is not None and method.repository_right is not None:
        row = ctx.resolved.get(method.repository_arg)
        if row is None and args.get(method.repository_arg) is not None:
            found = resolve(ctx.conn, ctx.caller, REPO, args[method.repository_arg])
            row = found[0] if found is not None else None
        repository = row.name if row is not None else None
    if not scopes.allows(method, repository):
        raise ScopeRefused(called)


# --- Requirements: what a method needs -----------------------------------------------------


class _Admin:
    description = "admin"
    #: Only an admin may call the method (``Method.scope``: such a change needs ``admin``).
    admin_only = True

    def check(self, ctx: Context, args: dict[str, Any]) -> None:
        if not ctx.caller.admin:
            raise AccessDenied()


class _Anyone:
    description = "any user with a valid key"

    def check(self, ctx: Context, args: dict[str, Any]) -> None:
        return None


ADMIN: Requirement = _Admin()
ANYONE: Requirement = _Anyone()


class SelfOrAdmin:
    """The caller may name itself (by id or by its own name); only an admin anyone else.

    ``userid`` is resolved the way every look-up resolves it (a digit-only string is an id,
    API.md §2) and the ids are compared: comparing the raw value with the caller's name let a
    user named ``2`` read user id 2. A user that is not the caller, or no user, is refused
    with one text, so a non-admin learns nothing about who exists. Stores the user found in
    ``ctx.resolved[arg]`` (a row).
    """

    def __init__(self, arg: str) -> None:
        self.arg = arg
        self.description = f"admin, or any user for itself (`{arg}` omitted or its own)"

    def check(self, ctx: Context, args: dict[str, Any]) -> None:
        value = args.get(self.arg)
        if value is None:
            return
        if ctx.caller.admin:
            ctx.resolved[self.arg] = rows.get_user(ctx.conn, value)
            return
        found = rows.user_or_none(ctx.conn, value)
        if found is None or found.id != ctx.caller.id:
            raise ApiError("userid is not the same as your user")
        ctx.resolved[self.arg] = found


class HasGlobal:
    """Admin, or a user holding any of the global permissions ``names`` (itself or via
    ``default``); ``Access was denied to this resource.`` otherwise."""

    def __init__(self, *names: str) -> None:
        if not names:
            raise ValueError("HasGlobal needs at least one permission name")
        self.names = names
        self.description = "admin or " + " or ".join(f"`{n}`" for n in names)

    def check(self, ctx: Context, args: dict[str, Any]) -> None:
        if not has_global(ctx.conn, ctx.caller, *self.names):
            raise AccessDenied()


class _OnObject:
    """At least ``level`` on the object named by argument ``arg`` (admins and owners pass).

    Stores the object's row in ``ctx.resolved[arg]``. With ``optional=True`` an absent or null
    argument passes (the handler decides what no object means).
    """

    kind: Kind

    def __init__(self, arg: str, level: Level, *, optional: bool = False) -> None:
        if level is Level.NONE:
            raise ValueError("an object requirement needs at least READ")
        self.arg = arg
        self.level = level
        self.optional = optional
        self.description = f"admin, owner, or `{self.kind.perm_name(level)}` on `{arg}`"

    def check(self, ctx: Context, args: dict[str, Any]) -> None:
        value = args.get(self.arg)
        if value is None and self.optional:
            return
        ctx.resolved[self.arg] = find_readable(ctx.conn, ctx.caller, self.kind, value,
                                               self.level)


class OnRepo(_OnObject):
    kind = REPO


class OnRepoGroup(_OnObject):
    kind = REPO_GROUP


class OnUserGroup(_OnObject):
    kind = USER_GROUP


class AllOf:
    """Every requirement, checked in order; the first one not met answers."""

    def __init__(self, *requirements: Requirement) -> None:
        self.requirements = requirements
        self.admin_only = any(getattr(r, "admin_only", False) for r in requirements)
        # A requirement without a description (an argument check) is not a permission.
        self.description = " and ".join(r.description for r in requirements if r.description)

    def check(self, ctx: Context, args: dict[str, Any]) -> None:
        for requirement in self.requirements:
            requirement.check(ctx, args)


class AnyOf:
    """At least one requirement; when none is met, the last one's error answers."""

    def __init__(self, *requirements: Requirement) -> None:
        if not requirements:
            raise ValueError("AnyOf needs at least one requirement")
        self.requirements = requirements
        self.description = " or ".join(f"({r.description})" for r in requirements)

    def check(self, ctx: Context, args: dict[str, Any]) -> None:
        *alternatives, last = self.requirements
        for requirement in alternatives:
            try:
                requirement.check(ctx, args)
            except ApiError:
                continue
            return
        last.check(ctx, args)
