"""The permission matrix: every registered method, every kind of caller, and {own object,
another's object, missing object} -> the expected answer (API.md §1 row 15, §2, §3, §5).

Callers ("roles"), each with its own key, and the object that is *its own* for each kind
(user group, repository, repository group):

    admin           a global admin; its own objects are owned by it
    owner           owns its objects
    group_admin     holds ``<kind>.admin`` by its own grant on objects `zed` owns
    own_reader      holds ``<kind>.read`` by its own grant
    group_reader    member of the active group `readers`, which holds ``<kind>.read``
    default_reader  the objects grant ``default`` ``<kind>.read``
    stranger        related to its objects only in ways that must not count: member of the
                    inactive group `dormant`, which holds ``<kind>.admin``; member of its own
                    user group (membership is no grant); its repository is private and grants
                    ``default`` write (ignored on a private repository)
    inactive        an inactive user; owns its objects
    expired         its only key has expired; owns its objects

"Another's object" is owned by `zed` with no grant at all; a missing object is a name nobody
has. For methods about a user, the own object is the caller, another's is `nobody`. Methods
without an object argument have one situation.

A method registered without a row here fails ``test_every_method_is_in_the_matrix``. To add
one: pick the profile of what it requires (``READ``, ``WRITE``, ``ADMIN_ON``, ``ADMIN_ONLY``,
``SELF_OR_ADMIN``, ``ANYONE_1``, ``ADMIN_1``), the kind of object its argument names, and a
function from the object's name to the args. The world's repositories and repository groups are
empty git repositories and directories; for a method an empty repository cannot satisfy (a
changeset, a pull without a remote), wrap the profile in ``passing(...)``: an allowed call then
only has to get past the permission check (and never answer ``Internal server error``).
"""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from werkzeug.test import Client

from rpcserver.api import build_registry
from rpcserver.core.config import Config
from rpcserver.core.registry import KALLITHEA, RHODECODE
from rpcserver.db.database import Database
from rpcserver.db.models import (
    Level,
    RepoGroup,
    Repository,
    User,
    UserGroup,
    UserGroupMember,
    UserGroupRepoGroupPerm,
    UserGroupRepoPerm,
    UserGroupUserGroupPerm,
    UserRepoGroupPerm,
    UserRepoPerm,
    UserUserGroupPerm,
)
from rpcserver.domain.auth import issue_api_key
from rpcserver.domain.repositories import store_for, vcs_settings
from rpcserver.vcs.git.backend import GitBackend
from rpcserver.vcs.git.fetch import init_bare

ROLES = ("admin", "owner", "group_admin", "own_reader", "group_reader", "default_reader",
         "stranger", "inactive", "expired")
OWN, OTHER, MISSING = "own", "another's", "missing"

# Outcomes.
OK = "ok"                       # a result, no error
DENIED = "denied"               # Access was denied to this resource.
GONE = "gone"                   # <kind> `<x>` does not exist
NOT_SELF = "not self"           # userid is not the same as your user
INVALID = "invalid key"         # Invalid API key
#: The permission check passed; the handler may still refuse for its own reasons (e.g. a
#: repository row without a git repository on disk): any answer but the refusals above, and
#: never ``Internal server error``.
PASSES = "passes"

TEXTS = {DENIED: "Access was denied to this resource.",
         NOT_SELF: "userid is not the same as your user",
         INVALID: "Invalid API key"}

# --- Expected answers: (own, another's, missing) per role --------------------------------

_BAD_KEY = {"inactive": (INVALID,) * 3, "expired": (INVALID,) * 3}

#: Needs read on the object.
READ = {"admin": (OK, OK, GONE), "owner": (OK, GONE, GONE), "group_admin": (OK, GONE, GONE),
        "own_reader": (OK, GONE, GONE), "group_reader": (OK, GONE, GONE),
        "default_reader": (OK, GONE, GONE), "stranger": (GONE, GONE, GONE), **_BAD_KEY}
#: Needs write on the object (readers can see it, so they are denied, not lied to).
WRITE = {**READ, "own_reader": (DENIED, GONE, GONE), "group_reader": (DENIED, GONE, GONE),
         "default_reader": (DENIED, GONE, GONE)}
#: Needs admin on the object.
ADMIN_ON = WRITE
#: Global admins only; the object is looked up after the caller is known to be an admin.
ADMIN_ONLY = {**{role: (DENIED,) * 3 for role in ROLES}, "admin": (OK, OK, GONE), **_BAD_KEY}
#: get_user: anyone for itself, an admin for anyone.
SELF_OR_ADMIN = {**{role: (OK, NOT_SELF, NOT_SELF) for role in ROLES},
                 "admin": (OK, OK, GONE), **_BAD_KEY}

#: Methods without an object: one outcome per role.
ANYONE_1 = {**{role: OK for role in ROLES}, "inactive": INVALID, "expired": INVALID}
ADMIN_1 = {**{role: DENIED for role in ROLES}, "admin": OK, "inactive": INVALID,
           "expired": INVALID}


def passing(expect: dict[str, Any]) -> dict[str, Any]:
    """The same profile, with "ok" relaxed to "passes the permission check"."""
    def relax(outcome: Any) -> Any:
        if isinstance(outcome, tuple):
            return tuple(PASSES if o == OK else o for o in outcome)
        return PASSES if outcome == OK else outcome

    return {role: relax(outcome) for role, outcome in expect.items()}


@dataclass(frozen=True)
class Spec:
    """How to call a method in each situation and what each role gets."""

    #: "user", "user group", "repository", "repository group" or None (no object).
    kind: str | None
    args: Callable[[Any], dict[str, Any]]
    expect: dict[str, Any]
    dialect: str = KALLITHEA
    #: Outcomes for particular (role, situation) that differ from ``expect``: exact errors.
    special: dict[tuple[str, str], str] = field(default_factory=dict)


_names = itertools.count(1)


def _new(prefix: str) -> str:
    return f"{prefix}{next(_names)}"


SPECS: dict[tuple[str, str], Spec] = {
    # server
    ("test", KALLITHEA): Spec(None, lambda _: {"args": {"x": 1}}, ADMIN_1),
    ("get_server_info", KALLITHEA): Spec(None, lambda _: {}, ADMIN_1),
    ("get_ip", KALLITHEA): Spec("user", lambda u: {"userid": u}, ADMIN_ONLY),
    ("show_ip", KALLITHEA): Spec("user", lambda u: {"userid": u}, ADMIN_ONLY),
    # users
    ("get_user", KALLITHEA): Spec("user", lambda u: {"userid": u}, SELF_OR_ADMIN),
    ("get_users", KALLITHEA): Spec(None, lambda _: {}, ADMIN_1),
    ("create_user", KALLITHEA): Spec(
        None, lambda _: {"username": (n := _new("new")), "email": f"{n}@example.com"}, ADMIN_1),
    ("create_user", RHODECODE): Spec(
        None, lambda _: {"username": (n := _new("rc")), "email": f"{n}@example.com"}, ADMIN_1,
        dialect=RHODECODE),
    ("update_user", KALLITHEA): Spec("user", lambda u: {"userid": u, "lastname": "X"},
                                     ADMIN_ONLY),
    ("delete_user", KALLITHEA): Spec(
        "user", lambda u: {"userid": u}, ADMIN_ONLY,
        # The admin is the last admin: refused, with Kallithea's text.
        special={("admin", OWN): "failed to delete user ID:2 admin"}),
    # user groups
    ("get_user_group", KALLITHEA): Spec("user group", lambda g: {"usergroupid": g}, READ),
    ("get_user_groups", KALLITHEA): Spec(None, lambda _: {}, ANYONE_1),
    ("create_user_group", KALLITHEA): Spec(None, lambda _: {"group_name": _new("ng")},
                                           ADMIN_1),
    ("create_users_group", KALLITHEA): Spec(None, lambda _: {"name": _new("ng")}, ADMIN_1),
    ("create_users_group", RHODECODE): Spec(None, lambda _: {"name": _new("rg")}, ADMIN_1,
                                            dialect=RHODECODE),
    ("update_user_group", KALLITHEA): Spec(
        "user group", lambda g: {"usergroupid": g, "description": "changed"}, ADMIN_ON),
    ("delete_user_group", KALLITHEA): Spec("user group", lambda g: {"usergroupid": g},
                                           ADMIN_ON),
    ("add_user_to_user_group", KALLITHEA): Spec(
        "user group", lambda g: {"usergroupid": g, "userid": "nobody"}, ADMIN_ON),
    ("remove_user_from_user_group", KALLITHEA): Spec(
        "user group", lambda g: {"usergroupid": g, "userid": "nobody"}, ADMIN_ON),
    # repositories (empty: methods an empty repository cannot satisfy use passing())
    ("get_repo", KALLITHEA): Spec("repository", lambda r: {"repoid": r}, READ),
    ("get_repos", KALLITHEA): Spec(None, lambda _: {}, ANYONE_1),
    # Everyone holds hg.create.repository through `default`.
    ("create_repo", KALLITHEA): Spec(None, lambda _: {"repo_name": _new("newrepo")},
                                     ANYONE_1),
    ("update_repo", KALLITHEA): Spec(
        "repository", lambda r: {"repoid": r, "description": "changed"}, ADMIN_ON),
    ("delete_repo", KALLITHEA): Spec("repository", lambda r: {"repoid": r}, ADMIN_ON),
    # Everyone holds hg.fork.repository through `default`.
    ("fork_repo", KALLITHEA): Spec(
        "repository", lambda r: {"repoid": r, "fork_name": _new("fork")}, READ),
    ("get_repo_nodes", KALLITHEA): Spec(
        "repository", lambda r: {"repoid": r, "revision": "tip", "root_path": ""},
        passing(READ)),
    ("get_changesets", KALLITHEA): Spec("repository", lambda r: {"repoid": r}, passing(READ)),
    ("get_changeset", KALLITHEA): Spec(
        "repository", lambda r: {"repoid": r, "raw_id": "0" * 40}, passing(READ)),
    ("invalidate_cache", KALLITHEA): Spec("repository", lambda r: {"repoid": r}, WRITE),
    ("pull", KALLITHEA): Spec("repository", lambda r: {"repoid": r}, passing(ADMIN_ONLY)),
    ("pull", RHODECODE): Spec("repository", lambda r: {"repo": r}, passing(ADMIN_ONLY),
                              dialect=RHODECODE),
    ("rescan_repos", KALLITHEA): Spec(None, lambda _: {}, ADMIN_1),
    # API keys and allowed addresses
    ("create_api_key", KALLITHEA): Spec("user", lambda u: {"userid": u, "description": "m"},
                                        SELF_OR_ADMIN),
    ("get_api_keys", KALLITHEA): Spec("user", lambda u: {"userid": u}, SELF_OR_ADMIN),
    # A key nobody has: whoever asks passes the check and is told it does not exist.
    ("revoke_api_key", KALLITHEA): Spec(None, lambda _: {"key_id": 999_999},
                                        passing(ANYONE_1)),
    ("rotate_api_key", KALLITHEA): Spec(None, lambda _: {"key_id": 999_999},
                                        passing(ANYONE_1)),
    # 0.0.0.0/0 keeps the admin's own calls (from 127.0.0.1) allowed after it is added.
    ("add_user_ip", KALLITHEA): Spec("user", lambda u: {"userid": u, "ip_range": "0.0.0.0/0"},
                                     ADMIN_ONLY),
    ("remove_user_ip", KALLITHEA): Spec(
        "user", lambda u: {"userid": u, "ip_range": "192.0.2.0/24"}, passing(ADMIN_ONLY)),
    # gists; a gist nobody has: whoever asks passes the check and is told it does not exist
    ("get_gist", KALLITHEA): Spec(None, lambda _: {"gistid": "nosuchgist"}, passing(ANYONE_1)),
    ("get_gists", KALLITHEA): Spec("user", lambda u: {"userid": u}, SELF_OR_ADMIN),
    ("create_gist", KALLITHEA): Spec(None, lambda _: {"files": {"a.txt": {"content": "a"}}},
                                     ANYONE_1),
    ("delete_gist", KALLITHEA): Spec(None, lambda _: {"gistid": "nosuchgist"},
                                     passing(ANYONE_1)),
    # repository grants; `public` is a user group everyone can read
    ("grant_user_permission", KALLITHEA): Spec(
        "repository", lambda r: {"repoid": r, "userid": "nobody", "perm": "repository.read"},
        ADMIN_ONLY),
    ("revoke_user_permission", KALLITHEA): Spec(
        "repository", lambda r: {"repoid": r, "userid": "nobody"}, ADMIN_ONLY),
    ("grant_user_group_permission", KALLITHEA): Spec(
        "repository",
        lambda r: {"repoid": r, "usergroupid": "public", "perm": "repository.read"}, ADMIN_ON),
    ("revoke_user_group_permission", KALLITHEA): Spec(
        "repository", lambda r: {"repoid": r, "usergroupid": "public"}, ADMIN_ON),
    # repository groups
    ("get_repo_group", KALLITHEA): Spec("repository group", lambda g: {"repogroupid": g},
                                        ADMIN_ONLY),
    ("get_repo_groups", KALLITHEA): Spec(None, lambda _: {}, ADMIN_1),
    ("create_repo_group", KALLITHEA): Spec(None, lambda _: {"group_name": _new("newgroup")},
                                           ADMIN_1),
    ("update_repo_group", KALLITHEA): Spec(
        "repository group", lambda g: {"repogroupid": g, "description": "changed"},
        ADMIN_ONLY),
    ("delete_repo_group", KALLITHEA): Spec("repository group", lambda g: {"repogroupid": g},
                                           ADMIN_ONLY),
    ("grant_user_permission_to_repo_group", KALLITHEA): Spec(
        "repository group",
        lambda g: {"repogroupid": g, "userid": "nobody", "perm": "group.read"}, ADMIN_ON),
    ("revoke_user_permission_from_repo_group", KALLITHEA): Spec(
        "repository group", lambda g: {"repogroupid": g, "userid": "nobody"}, ADMIN_ON),
    ("grant_user_group_permission_to_repo_group", KALLITHEA): Spec(
        "repository group",
        lambda g: {"repogroupid": g, "usergroupid": "public", "perm": "group.read"},
        ADMIN_ON),
    ("revoke_user_group_permission_from_repo_group", KALLITHEA): Spec(
        "repository group", lambda g: {"repogroupid": g, "usergroupid": "public"}, ADMIN_ON),
}


def registered() -> list[tuple[str, str]]:
    return sorted({(name, method.dialect) for name, method in build_registry()})


def test_every_method_is_in_the_matrix() -> None:
    missing = [key for key in registered() if key not in SPECS]
    assert not missing, f"methods without a row in the permission matrix: {missing}"
    stale = [key for key in SPECS if key not in registered()]
    assert not stale, f"matrix rows for methods that are not registered: {stale}"


# --- The world every case runs in -------------------------------------------------------

#: model, user grant model, group grant model, grant target column, name prefix
_KINDS = {
    "user group": (UserGroup, UserUserGroupPerm, UserGroupUserGroupPerm, "target_group_id",
                   "ug"),
    "repository": (Repository, UserRepoPerm, UserGroupRepoPerm, "repo_id", "repo"),
    "repository group": (RepoGroup, UserRepoGroupPerm, UserGroupRepoGroupPerm,
                         "repo_group_id", "rg"),
}
USERNAMES = {"owner": "olga", "group_admin": "gadi", "own_reader": "oren",
             "group_reader": "greta", "default_reader": "dora", "stranger": "sam",
             "inactive": "ina", "expired": "exa"}


@dataclass
class World:
    keys: dict[str, str]
    #: (role, kind) -> the name of the role's own object of that kind.
    own: dict[tuple[str, str], str]
    other: dict[str, str]


def build_world(db: Database, admin_key: str, config: Config) -> World:
    past = dt.datetime(2000, 1, 1)
    keys = {"admin": admin_key}
    own: dict[tuple[str, str], str] = {}
    other: dict[str, str] = {}
    with db.transaction(write=True) as session:
        users: dict[str, User] = {}
        for role, name in {**USERNAMES, "zed": "zed", "nobody": "nobody"}.items():
            user = User(username=name, email=f"{name}@example.com", active=role != "inactive")
            session.add(user)
            users[role] = user
        session.flush()
        for role in USERNAMES:
            expires = past if role == "expired" else None
            keys[role], _ = issue_api_key(session, users[role], expires_on=expires)
        readers = UserGroup(name="readers", owner_id=2)
        dormant = UserGroup(name="dormant", owner_id=2, active=False)
        public = UserGroup(name="public", owner_id=2)
        session.add_all([readers, dormant, public])
        session.flush()
        session.add(UserUserGroupPerm(user_id=1, target_group_id=public.id, level=Level.READ))
        session.add_all([UserGroupMember(group_id=readers.id, user_id=users["group_reader"].id),
                         UserGroupMember(group_id=dormant.id, user_id=users["stranger"].id)])
        zed = users["zed"].id
        for kind, (model, user_perm, group_perm, target, prefix) in _KINDS.items():
            def add(name: str, owner_id: int, **extra: Any) -> Any:
                obj = model(name=name, owner_id=owner_id, **extra)  # noqa: B023
                session.add(obj)
                session.flush()
                return obj

            other[kind] = add(f"{prefix}-zed", zed).name
            for role in ROLES:
                name = f"{prefix}-{role}"
                own[(role, kind)] = name
                owner_id = {"admin": 2, "owner": users["owner"].id,
                            "inactive": users["inactive"].id,
                            "expired": users["expired"].id}.get(role, zed)
                extra = {"private": True} if role == "stranger" and kind == "repository" else {}
                obj = add(name, owner_id, **extra)
                by_role: dict[str, list[Any]] = {
                    "group_admin": [user_perm(user_id=users["group_admin"].id, level=Level.ADMIN)],
                    "own_reader": [user_perm(user_id=users["own_reader"].id, level=Level.READ)],
                    "group_reader": [group_perm(group_id=readers.id, level=Level.READ)],
                    "default_reader": [user_perm(user_id=1, level=Level.READ)],
                    "stranger": [group_perm(group_id=dormant.id, level=Level.ADMIN),
                                 user_perm(user_id=1, level=Level.WRITE)
                                 if kind == "repository" else None],
                }
                for grant in by_role.get(role, []):
                    if grant is not None:
                        setattr(grant, target, obj.id)
                        session.add(grant)
                if role == "stranger" and kind == "user group":
                    session.add(UserGroupMember(group_id=obj.id, user_id=users["stranger"].id))
    # Repositories and groups exist on disk too (empty), as the server would have made them.
    store, git = store_for(config), GitBackend(vcs_settings(config)).git
    for (_role, kind), name in [*own.items(), *((("", k), n) for k, n in other.items())]:
        if kind == "repository":
            init_bare(git, store.path(name))
        elif kind == "repository group":
            store.path(name).mkdir(parents=True)
    return World(keys=keys, own=own, other=other)


@pytest.fixture
def world(db: Database, admin_key: str, config: Config) -> World:
    return build_world(db, admin_key, config)


def call(client: Client, key: str, method: str, args: dict[str, Any],
         dialect: str) -> dict[str, Any]:
    body: dict[str, Any] = {"api_key": key, "method": method, "args": args}
    if dialect == KALLITHEA:
        body["id"] = 1
    response = client.post("/_admin/api", json=body)
    assert response.status_code == 200
    answer: dict[str, Any] = response.get_json()
    return answer


def target(spec: Spec, world: World, role: str, situation: str) -> Any:
    if spec.kind == "user":
        own_name = "admin" if role == "admin" else USERNAMES[role]
        return {OWN: own_name, OTHER: "nobody", MISSING: "ghost"}[situation]
    assert spec.kind is not None
    return {OWN: world.own.get((role, spec.kind)), OTHER: world.other[spec.kind],
            MISSING: f"no-such-{spec.kind.replace(' ', '-')}"}[situation]


def refusals(spec: Spec, sent: Any) -> set[str]:
    texts = set(TEXTS.values())
    if spec.kind is not None:
        texts.add(f"{spec.kind} `{sent}` does not exist")
    return texts


def expected_error(spec: Spec, outcome: str, sent: Any) -> str | None:
    if outcome in (OK, PASSES):
        return None
    if outcome == GONE:
        return f"{spec.kind} `{sent}` does not exist"
    return TEXTS[outcome]


#: The admin goes last: it is the only caller that may change another's object, and each other
#: role's own objects are its alone, so one world serves every role of a method.
ROLE_ORDER = (*(role for role in ROLES if role != "admin"), "admin")


@pytest.mark.parametrize("key", sorted(SPECS), ids=lambda k: "-".join(k))
def test_matrix(client: Client, world: World, key: tuple[str, str]) -> None:
    name, _dialect = key
    spec = SPECS[key]
    situations = (OWN, OTHER, MISSING) if spec.kind is not None else (None,)
    failures = []
    for role in ROLE_ORDER:
        outcomes = spec.expect[role] if spec.kind is not None else (spec.expect[role],)
        for situation, outcome in zip(situations, outcomes, strict=True):
            sent = target(spec, world, role, situation) if situation else None
            answer = call(client, world.keys[role], name, spec.args(sent), spec.dialect)
            want = spec.special.get((role, situation or ""),
                                    expected_error(spec, outcome, sent))
            where = f"{role}, {situation or 'call'} {sent!r}"
            if outcome == PASSES and (role, situation or "") not in spec.special:
                if answer["error"] in refusals(spec, sent) | {"Internal server error"}:
                    failures.append(f"{where}: wanted the check to pass, got "
                                    f"{answer['error']!r}")
            elif answer["error"] != want:
                failures.append(f"{where}: wanted {want!r}, got {answer['error']!r}")
            elif want is None and answer["result"] is None:
                failures.append(f"{where}: no result")
    assert not failures, f"{name}:\n  " + "\n  ".join(failures)
