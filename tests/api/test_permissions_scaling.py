"""Resolving permissions does not get slower as the database grows: for a non-admin, the
number of SQL statements ``get_user_groups``, ``get_user`` and a single-object check run is
the same with 10 and with 1,000 user groups, repositories and repository groups.

Statements are counted with a ``before_cursor_execute`` hook on the engine, around one API
call each (after a warm-up call, so that recording a key's use does not count).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, insert, select

from rpcserver.db.database import Database
from rpcserver.db.models import (
    Level,
    RepoGroup,
    Repository,
    UserGroup,
    UserGroupMember,
    UserGroupRepoGroupPerm,
    UserGroupRepoPerm,
    UserGroupUserGroupPerm,
    UserRepoGroupPerm,
    UserRepoPerm,
    UserUserGroupPerm,
)
from tests.conftest import ApiUser, Rpc

SMALL, LARGE = 10, 1000


@contextmanager
def counting(db: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    for engine in db.engines:
        event.listen(engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        for engine in db.engines:
            event.remove(engine, "before_cursor_execute", count)


def grow(db: Database, start: int, stop: int, user_id: int, other_id: int) -> None:
    """Rows ``start``..``stop-1`` of each kind, every one of them reaching ``user_id`` some way:
    member of every (active, or every third inactive) user group, grants to the user, to its
    groups and to ``default``, some objects owned by the user, some private repositories."""
    rng = range(start, stop)
    with db.transaction(write=True) as session:
        session.execute(insert(UserGroup), [
            {"name": f"team{i}", "owner_id": user_id if i % 7 == 0 else 2,
             "active": i % 3 != 0, "description": ""} for i in rng])
        session.execute(insert(Repository), [
            {"name": f"repo{i}", "owner_id": user_id if i % 11 == 0 else 2,
             "private": i % 5 == 0} for i in rng])
        session.execute(insert(RepoGroup), [
            {"name": f"rg{i}", "owner_id": user_id if i % 13 == 0 else 2} for i in rng])

        def ids(model: Any, prefix: str) -> list[int]:
            names = [f"{prefix}{i}" for i in rng]
            found: dict[str, int] = dict(session.execute(select(model.name, model.id)
                                         .where(model.name.in_(names))).all())
            return [found[name] for name in names]

        groups, repos, repo_groups = (ids(UserGroup, "team"), ids(Repository, "repo"),
                                      ids(RepoGroup, "rg"))
        session.execute(insert(UserGroupMember), [
            {"group_id": g, "user_id": u} for g in groups for u in (user_id, other_id)])
        levels = [Level.READ, Level.WRITE, Level.ADMIN, Level.NONE]
        for user_perm, group_perm, target, objects in (
                (UserRepoPerm, UserGroupRepoPerm, "repo_id", repos),
                (UserRepoGroupPerm, UserGroupRepoGroupPerm, "repo_group_id", repo_groups),
                (UserUserGroupPerm, UserGroupUserGroupPerm, "target_group_id", groups)):
            session.execute(insert(user_perm), [
                {"user_id": who, target: obj, "level": levels[n % 4]}
                for n, obj in enumerate(objects) for who in (1, user_id) if (n + who) % 2])
            # Group n+1 holds a grant on object n (never a group on itself).
            session.execute(insert(group_perm), [
                {"group_id": groups[(n + 1) % len(groups)], target: obj,
                 "level": levels[(n + 1) % 4]}
                for n, obj in enumerate(objects)])


def measure(db: Database, calls: dict[str, Callable[[], dict[str, Any]]]) -> dict[str, int]:
    counts = {}
    for name, do in calls.items():
        assert do()["error"] is None  # warm-up: records the key's use
        with counting(db) as statements:
            answer = do()
        assert answer["error"] is None, answer
        counts[name] = len(statements)
    return counts


def test_statement_counts_do_not_depend_on_rows(
        rpc: Rpc, db: Database, make_user: Callable[..., ApiUser]) -> None:
    user = make_user("carol")
    other = make_user("dave")
    grow(db, 0, SMALL, user.id, other.id)
    calls = {
        "get_user_groups": lambda: rpc("get_user_groups", key=user.key),
        "get_user": lambda: rpc("get_user", key=user.key),
        "get_user_group": lambda: rpc("get_user_group", key=user.key, usergroupid="team1"),
        "update_user_group": lambda: rpc("update_user_group", key=user.key,
                                         usergroupid="team7", description="x"),
        "get_user (admin)": lambda: rpc("get_user", userid="carol"),
        "get_repos": lambda: rpc("get_repos", key=user.key),
        "get_repo": lambda: rpc("get_repo", key=user.key, repoid="repo1"),
    }
    small = measure(db, calls)
    small_groups = len(rpc("get_user_groups", key=user.key)["result"])

    grow(db, SMALL, LARGE, user.id, other.id)
    large = measure(db, calls)
    large_groups = rpc("get_user_groups", key=user.key)["result"]

    print(f"\nSQL statements per call, {SMALL} vs {LARGE} rows of each kind: "
          + ", ".join(f"{name} {small[name]}/{large[name]}" for name in calls))
    assert large == small
    # The filter really had work to do, at both sizes.
    assert 0 < small_groups < SMALL
    assert small_groups < len(large_groups) < LARGE
    assert all(len(g["members"]) == 2 for g in large_groups)
