"""The permission model (rpcserver.domain.permissions) on a real database: the rules of API.md §3,
the wire names, global permissions, requirements, and that the one-object and the
set-based resolutions always agree."""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Connection, select
from sqlalchemy.orm import Session

from rpcserver.core.errors import AccessDenied, ApiError, NotFound
from rpcserver.db.database import Database
from rpcserver.db.models import (
    GlobalPermission,
    Level,
    RepoGroup,
    Repository,
    User,
    UserGroup,
    UserGroupMember,
)
from rpcserver.domain import access, grants
from rpcserver.domain import permissions as perms
from rpcserver.domain.context import Actor, CallContext
from rpcserver.domain.grants import REPO, REPO_GROUP, USER_GROUP, Kind

R, W, A, N = Level.READ, Level.WRITE, Level.ADMIN, Level.NONE


@pytest.fixture
def session(db: Database) -> Iterator[Session]:
    with db.transaction(write=True) as s:
        yield s


def new_user(session: Session, name: str, **extra: Any) -> User:
    user = User(username=name, email=f"{name}@example.com", **extra)
    session.add(user)
    session.flush()
    return user


def new_object(session: Session, kind: Kind, name: str, owner: User | int = 2,
               **extra: Any) -> Any:
    owner_id = owner if isinstance(owner, int) else owner.id
    obj = kind.model(name=name, owner_id=owner_id, **extra)
    session.add(obj)
    session.flush()
    return obj


def grant(session: Session, kind: Kind, obj: Any, level: Level, *, user: User | int | None = None,
          group: UserGroup | None = None) -> None:
    if group is not None:
        row = kind.group_perm(group_id=group.id, level=level)
    else:
        assert user is not None
        row = kind.user_perm(user_id=user if isinstance(user, int) else user.id, level=level)
    setattr(row, kind.target, obj.id)
    session.add(row)
    session.flush()


def new_group(session: Session, name: str, members: list[User], active: bool = True) -> UserGroup:
    group = UserGroup(name=name, owner_id=2, active=active)
    session.add(group)
    session.flush()
    session.add_all(UserGroupMember(group_id=group.id, user_id=m.id) for m in members)
    session.flush()
    return group


def on(session: Session, user: User) -> tuple[Connection, Actor]:
    """What ``access`` is given: the transaction's connection and the caller as plain data."""
    return session.connection(), Actor.of(user)


def level(session: Session, user: User, kind: Kind, obj: Any) -> Level:
    found = access.resolve(*on(session, user), kind, obj.name)
    assert found is not None and found[0].id == obj.id
    by_id = access.resolve(*on(session, user), kind, obj.id)
    assert by_id is not None and by_id[1] == found[1]
    assert access.level_on(*on(session, user), kind, obj) == found[1]
    return found[1]


class TestWireNames:
    @pytest.mark.parametrize("kind", grants.KINDS, ids=lambda k: k.prefix)
    @pytest.mark.parametrize("lvl", list(Level))
    def test_round_trip(self, kind: Kind, lvl: Level) -> None:
        name = grants.perm_name(kind, lvl)
        assert name == f"{kind.prefix}.{lvl.name.lower()}"
        assert grants.parse_perm(name) == (kind, lvl)

    def test_examples(self) -> None:
        assert grants.perm_name(REPO, R) == "repository.read"
        assert grants.perm_name(REPO_GROUP, W) == "group.write"
        assert grants.perm_name(USER_GROUP, A) == "usergroup.admin"

    @pytest.mark.parametrize("name", ["repository", "repository.", "repository.READ",
                                      "repo.read", "hg.admin", "usergroup.superuser",
                                      "group.read.x", "", ".read"])
    def test_not_a_level(self, name: str) -> None:
        assert grants.parse_perm(name) is None


@pytest.mark.parametrize("kind", grants.KINDS, ids=lambda k: k.prefix)
class TestRules:
    def test_no_grant_is_none(self, session: Session, kind: Kind) -> None:
        bob = new_user(session, "bob")
        assert level(session, bob, kind, new_object(session, kind, "x")) is N

    def test_admin_is_admin_everywhere(self, session: Session, kind: Kind) -> None:
        root = new_user(session, "root", admin=True)
        obj = new_object(session, kind, "x")
        grant(session, kind, obj, R, user=root)
        assert level(session, root, kind, obj) is A

    def test_owner_is_admin(self, session: Session, kind: Kind) -> None:
        bob = new_user(session, "bob")
        obj = new_object(session, kind, "x", owner=bob)
        grant(session, kind, obj, R, user=bob)
        assert level(session, bob, kind, obj) is A

    @pytest.mark.parametrize("lvl", list(Level))
    def test_own_grant(self, session: Session, kind: Kind, lvl: Level) -> None:
        bob = new_user(session, "bob")
        obj = new_object(session, kind, "x")
        grant(session, kind, obj, lvl, user=bob)
        assert level(session, bob, kind, obj) is lvl

    def test_active_group_grant_counts(self, session: Session, kind: Kind) -> None:
        bob = new_user(session, "bob")
        obj = new_object(session, kind, "x")
        grant(session, kind, obj, W, group=new_group(session, "team", [bob]))
        assert level(session, bob, kind, obj) is W

    def test_inactive_group_grant_is_ignored(self, session: Session, kind: Kind) -> None:
        bob = new_user(session, "bob")
        obj = new_object(session, kind, "x")
        grant(session, kind, obj, A, group=new_group(session, "team", [bob], active=False))
        assert level(session, bob, kind, obj) is N

    def test_grant_to_a_group_one_is_not_in(self, session: Session, kind: Kind) -> None:
        bob, amy = new_user(session, "bob"), new_user(session, "amy")
        obj = new_object(session, kind, "x")
        grant(session, kind, obj, A, group=new_group(session, "team", [amy]))
        assert level(session, bob, kind, obj) is N

    def test_highest_of_several_groups(self, session: Session, kind: Kind) -> None:
        bob = new_user(session, "bob")
        obj = new_object(session, kind, "x")
        grant(session, kind, obj, R, group=new_group(session, "g1", [bob]))
        grant(session, kind, obj, A, group=new_group(session, "g2", [bob]))
        grant(session, kind, obj, W, group=new_group(session, "g3", [bob]))
        grant(session, kind, obj, A, group=new_group(session, "g4", [bob], active=False))
        assert level(session, bob, kind, obj) is A

    def test_default_grant_counts(self, session: Session, kind: Kind) -> None:
        bob = new_user(session, "bob")
        obj = new_object(session, kind, "x")
        grant(session, kind, obj, R, user=grants.DEFAULT_USER_ID)
        assert level(session, bob, kind, obj) is R

    @pytest.mark.parametrize(("own", "group", "default", "want"), [
        (R, W, N, W), (W, R, N, W), (R, N, A, A), (N, N, R, R), (N, R, R, R), (A, R, W, A),
        # A lower own grant does not take away what default gives: the highest wins.
        (N, N, W, W), (R, N, W, W),
    ])
    def test_highest_wins(self, session: Session, kind: Kind, own: Level, group: Level,
                          default: Level, want: Level) -> None:
        bob = new_user(session, "bob")
        obj = new_object(session, kind, "x")
        grant(session, kind, obj, own, user=bob)
        grant(session, kind, obj, group, group=new_group(session, "team", [bob]))
        grant(session, kind, obj, default, user=grants.DEFAULT_USER_ID)
        assert level(session, bob, kind, obj) is want

    def test_missing_object(self, session: Session, kind: Kind) -> None:
        bob = new_user(session, "bob")
        for value in ("nope", 99, "99", 2**40):
            assert access.resolve(*on(session, bob), kind, value) is None


class TestPrivateRepositories:
    def test_default_grant_is_ignored(self, session: Session) -> None:
        bob = new_user(session, "bob")
        repo = new_object(session, REPO, "r", private=True)
        grant(session, REPO, repo, A, user=grants.DEFAULT_USER_ID)
        assert level(session, bob, REPO, repo) is N
        assert access.effective_permissions(*on(session, bob), REPO) == {}

    def test_default_itself_gets_nothing_either(self, session: Session) -> None:
        repo = new_object(session, REPO, "r", private=True)
        grant(session, REPO, repo, A, user=grants.DEFAULT_USER_ID)
        default = session.get(User, grants.DEFAULT_USER_ID)
        assert default is not None
        assert level(session, default, REPO, repo) is N
        assert access.effective_permissions(*on(session, default), REPO) == {}

    def test_own_and_group_grants_still_count(self, session: Session) -> None:
        bob, amy = new_user(session, "bob"), new_user(session, "amy")
        repo = new_object(session, REPO, "r", private=True)
        grant(session, REPO, repo, A, user=grants.DEFAULT_USER_ID)
        grant(session, REPO, repo, R, user=bob)
        grant(session, REPO, repo, W, group=new_group(session, "team", [amy]))
        assert level(session, bob, REPO, repo) is R
        assert level(session, amy, REPO, repo) is W


class TestSetBased:
    def test_effective_permissions_by_name_without_none(self, session: Session) -> None:
        bob = new_user(session, "bob")
        objs = {name: new_object(session, REPO, name) for name in ("b", "a", "c", "d")}
        grant(session, REPO, objs["b"], W, user=bob)
        grant(session, REPO, objs["a"], R, user=grants.DEFAULT_USER_ID)
        grant(session, REPO, objs["c"], N, user=bob)
        assert access.effective_permissions(*on(session, bob), REPO) == {
            "a": "repository.read", "b": "repository.write"}
        assert list(access.effective_permissions(*on(session, bob), REPO)) == ["a", "b"]

    def test_admin_sees_everything_at_admin(self, session: Session) -> None:
        root = new_user(session, "root", admin=True)
        new_object(session, REPO_GROUP, "g")
        new_object(session, REPO_GROUP, "h", owner=root)
        assert access.effective_permissions(*on(session, root), REPO_GROUP) == {
            "g": "group.admin", "h": "group.admin"}

    def test_readable_ids_with_a_level(self, session: Session) -> None:
        bob = new_user(session, "bob")
        objs = [new_object(session, USER_GROUP, f"g{n}") for n in range(4)]
        grant(session, USER_GROUP, objs[0], R, user=bob)
        grant(session, USER_GROUP, objs[1], W, user=bob)
        grant(session, USER_GROUP, objs[2], A, user=bob)

        def ids(need: Level) -> set[int]:
            return set(session.scalars(access.readable_ids(USER_GROUP, need),
                                       {access.USER_PARAM: bob.id}))

        assert ids(R) == {objs[0].id, objs[1].id, objs[2].id}
        assert ids(W) == {objs[1].id, objs[2].id}
        assert ids(A) == {objs[2].id}

    @pytest.mark.parametrize("seed", range(4))
    def test_agrees_with_one_object_resolution(self, session: Session, seed: int) -> None:
        """Random grants of every kind: the set-based levels equal the per-object ones."""
        rng = random.Random(seed)  # noqa: S311 - test data, not a secret
        users = [new_user(session, f"u{n}") for n in range(5)]
        owners: list[User | int] = [*users, 2]
        grantees: list[User | int] = [*users, grants.DEFAULT_USER_ID]
        groups = [new_group(session, f"team{n}", rng.sample(users, rng.randint(0, 4)),
                            active=rng.random() > 0.3) for n in range(4)]
        for kind in grants.KINDS:
            extra = (lambda: {"private": rng.random() < 0.3}) if kind.has_private else dict
            objs = [new_object(session, kind, f"{kind.prefix}-{n}",
                               owner=rng.choice(owners), **extra()) for n in range(12)]
            for obj in objs:
                for who in rng.sample(grantees, 3):
                    grant(session, kind, obj, rng.choice(list(Level)), user=who)
                for group in rng.sample(groups, 2):
                    if kind is USER_GROUP and group.id == obj.id:
                        continue
                    grant(session, kind, obj, rng.choice(list(Level)), group=group)
            for user in users:
                listed = access.effective_permissions(*on(session, user), kind)
                one_by_one = {obj.name: kind.perm_name(lvl) for obj in objs
                              if (lvl := level(session, user, kind, obj)) > N}
                assert listed == one_by_one


class TestGlobal:
    def test_seeded_default(self, session: Session) -> None:
        bob = new_user(session, "bob")
        expected = sorted(grants.DEFAULT_GLOBAL_PERMISSIONS)
        assert access.global_permissions(*on(session, bob)) == expected
        assert access.has_global(*on(session, bob), "hg.create.repository")
        assert access.has_global(*on(session, bob), "hg.fork.repository")
        assert not access.has_global(*on(session, bob), "hg.usergroup.create.true")

    def test_own_grant_adds_to_default(self, session: Session) -> None:
        bob, amy = new_user(session, "bob"), new_user(session, "amy")
        session.add(GlobalPermission(user_id=bob.id, name="hg.usergroup.create.true"))
        session.flush()
        assert "hg.usergroup.create.true" in access.global_permissions(*on(session, bob))
        assert access.has_global(*on(session, bob), "hg.usergroup.create.true")
        assert not access.has_global(*on(session, amy), "hg.usergroup.create.true")

    def test_admin_holds_everything(self, session: Session) -> None:
        root = new_user(session, "root", admin=True)
        assert access.has_global(*on(session, root), "anything.at.all")
        assert access.global_permissions(*on(session, root))[0] == "hg.admin"

    def test_default_grant_for_new_objects(self, session: Session) -> None:
        for kind in grants.KINDS:
            assert grants.default_grant_for_new(session, kind) is R
        for row in session.scalars(select(GlobalPermission).where(
                GlobalPermission.user_id == grants.DEFAULT_USER_ID)):
            if row.name == "group.read":
                row.name = "group.write"
            elif row.name == "usergroup.read":
                session.delete(row)
        session.flush()
        assert grants.default_grant_for_new(session, REPO_GROUP) is W
        assert grants.default_grant_for_new(session, USER_GROUP) is N


def context(session: Session, user: User) -> CallContext:
    return CallContext(session=session, caller=Actor.of(user),
                       config=None,  # type: ignore[arg-type]
                       client_ip=None, registry=None)  # type: ignore[arg-type]


class TestRequirements:
    def test_object_requirement_resolves_and_stores(self, session: Session) -> None:
        bob = new_user(session, "bob")
        repo = new_object(session, REPO, "g/r")
        grant(session, REPO, repo, W, user=bob)
        ctx = context(session, bob)
        perms.OnRepo("repoid", W).check(ctx, {"repoid": "g/r"})
        assert ctx.resolved["repoid"].id == repo.id  # the repository's row

    def test_unreadable_is_missing_and_readable_is_denied(self, session: Session) -> None:
        bob = new_user(session, "bob")
        group = new_object(session, REPO_GROUP, "g")
        ctx = context(session, bob)
        with pytest.raises(NotFound) as missing:
            perms.OnRepoGroup("repogroupid", R).check(ctx, {"repogroupid": "g"})
        assert missing.value.text == "repository group `g` does not exist"
        grant(session, REPO_GROUP, group, R, user=bob)
        with pytest.raises(AccessDenied):
            perms.OnRepoGroup("repogroupid", W).check(ctx, {"repogroupid": group.id})
        assert "repogroupid" not in ctx.resolved

    def test_optional_object(self, session: Session) -> None:
        ctx = context(session, new_user(session, "bob"))
        perms.OnRepoGroup("parent", W, optional=True).check(ctx, {})
        perms.OnRepoGroup("parent", W, optional=True).check(ctx, {"parent": None})
        with pytest.raises(NotFound):
            perms.OnRepoGroup("parent", W, optional=True).check(ctx, {"parent": "p"})

    def test_none_level_is_a_mistake(self) -> None:
        with pytest.raises(ValueError, match="at least READ"):
            perms.OnRepo("repoid", N)

    def test_has_global(self, session: Session) -> None:
        bob = new_user(session, "bob")
        ctx = context(session, bob)
        perms.HasGlobal("hg.fork.repository").check(ctx, {})
        with pytest.raises(AccessDenied):
            perms.HasGlobal("hg.usergroup.create.true").check(ctx, {})
        perms.HasGlobal("hg.usergroup.create.true", "hg.fork.repository").check(ctx, {})
        assert perms.HasGlobal("a", "b").description == "admin or `a` or `b`"

    def test_all_of_and_any_of(self, session: Session) -> None:
        bob = new_user(session, "bob")
        repo = new_object(session, REPO, "r")
        grant(session, REPO, repo, R, user=bob)
        ctx = context(session, bob)
        read, admin = perms.OnRepo("repoid", R), perms.OnRepo("repoid", A)
        fork = perms.HasGlobal("hg.fork.repository")
        perms.AllOf(read, fork).check(ctx, {"repoid": "r"})
        with pytest.raises(AccessDenied):
            perms.AllOf(fork, admin).check(ctx, {"repoid": "r"})
        perms.AnyOf(perms.ADMIN, read).check(ctx, {"repoid": "r"})
        # None met: the last alternative's error answers.
        with pytest.raises(NotFound):
            perms.AnyOf(perms.ADMIN, perms.OnRepo("repoid", R)).check(ctx, {"repoid": "x"})
        with pytest.raises(AccessDenied):
            perms.AnyOf(perms.OnRepo("repoid", R), perms.ADMIN).check(ctx, {"repoid": "x"})

    def test_self_or_admin(self, session: Session) -> None:
        bob = new_user(session, "bob")
        ctx = context(session, bob)
        for value in (None, bob.id, str(bob.id), "bob"):
            perms.SelfOrAdmin("userid").check(ctx, {"userid": value})
        for value in ("Bob", 2, True):
            with pytest.raises(ApiError, match="userid is not the same as your user"):
                perms.SelfOrAdmin("userid").check(ctx, {"userid": value})


def test_resolve_is_one_statement(db: Database, session: Session) -> None:
    from sqlalchemy import event

    bob = new_user(session, "bob")
    repo = new_object(session, REPO, "r")
    grant(session, REPO, repo, R, group=new_group(session, "team", [bob]))
    session.expunge_all()
    bob = session.get(User, bob.id)  # type: ignore[assignment]
    seen: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        found = access.resolve(*on(session, bob), REPO, "r")
        assert found is not None
        assert found[0].owner_name == "admin"  # read with it
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert found[1] is R
    assert len(seen) == 1


def test_repository_and_group_models_are_the_kinds() -> None:
    assert REPO.model is Repository and REPO_GROUP.model is RepoGroup
    assert USER_GROUP.model is UserGroup
