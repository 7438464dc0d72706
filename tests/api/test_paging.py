"""Paging the list methods in the registry spec's style (docs/protocol.md, "Paging"): ``n``
items after ``last`` (the name of the last item seen), by name; the whole list without ``n``
in Kallithea 0.7's order, refused beyond ``max_list_items`` instead of cut short; the older
``limit``/``offset`` by id, as before."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import insert, select, update
from werkzeug.test import Client

from rpcserver.api import build_registry, repos
from rpcserver.core.config import Config
from rpcserver.db.database import Database
from rpcserver.db.models import (
    Level,
    RepoGroup,
    Repository,
    User,
    UserGroup,
    UserRepoPerm,
    UserUserGroupPerm,
)
from rpcserver.domain.grants import DEFAULT_USER_ID, REPO, REPO_GROUP, USER_GROUP, Kind
from rpcserver.web.app import create_app
from tests.conftest import ApiUser, Rpc

MakeUser = Callable[..., ApiUser]


def kind_of_model(model: Any) -> Kind:
    return next(kind for kind in (REPO, REPO_GROUP, USER_GROUP) if kind.model is model)

ADMIN_ID = 2

#: Names out of order, in both cases, with the characters names may hold.
USERNAMES = ["zed", "Alpha", "mike", "b.c", "Zoe", "al_x", "b+c", "B-c", "b@c", "9lives"]
NAMES = ["zrepo", "Arepo", "m repo", "b-repo", "g/inner", "a%_", "Zz", "ä-umlaut", "a'q\"",
         "g/Inner", "a", "ab", "g"]


@dataclasses.dataclass(frozen=True)
class Listing:
    method: str
    field: str  # the name's key in each item
    model: Any

    def make(self, db: Database, names: list[str]) -> None:
        with db.transaction(write=True) as session:
            if self.model is User:
                session.execute(insert(User), [
                    {"username": name, "email": f"{name.lower()}@example.com"}
                    for name in names])
                return
            session.execute(insert(self.model), [
                {"name": name, "owner_id": ADMIN_ID} for name in names])
            # ``default`` reads what it is given, as create_* grants it
            kind = kind_of_model(self.model)
            made = session.scalars(select(self.model.id).where(self.model.name.in_(names)))
            session.execute(insert(kind.user_perm), [
                {"user_id": DEFAULT_USER_ID, kind.target: ident, "level": Level.READ}
                for ident in made])

    def in_name_order(self, db: Database) -> list[str]:
        """Every name as the database orders it (what pages must follow)."""
        column = self.model.username if self.model is User else self.model.name
        with db.reading() as conn:
            found = [name for (name,) in conn.execute(select(column).order_by(column))]
        return [name for name in found if name != "default"]


LISTINGS = [Listing("get_users", "username", User),
            Listing("get_repos", "repo_name", Repository),
            Listing("get_user_groups", "group_name", UserGroup),
            Listing("get_repo_groups", "group_name", RepoGroup)]
BY_METHOD = pytest.mark.parametrize("listing", LISTINGS, ids=[x.method for x in LISTINGS])


def names_of(answer: dict[str, Any], field: str) -> list[str]:
    assert answer["error"] is None, answer
    return [item[field] for item in answer["result"]]


def page_through(rpc: Rpc, method: str, field: str, n: int, **args: Any) -> list[list[str]]:
    pages: list[list[str]] = []
    last: str | None = None
    while True:
        page = names_of(rpc(method, n=n, last=last, **args), field)
        assert len(page) <= n
        if not page:
            return pages
        pages.append(page)
        last = page[-1]


def sample(listing: Listing) -> list[str]:
    return USERNAMES if listing.model is User else NAMES


@BY_METHOD
@pytest.mark.parametrize("n", [1, 3, 100])
def test_paging_through_gives_every_item_once_in_name_order(
        rpc: Rpc, db: Database, listing: Listing, n: int) -> None:
    listing.make(db, sample(listing))
    expected = listing.in_name_order(db)
    pages = page_through(rpc, listing.method, listing.field, n)
    seen = [name for page in pages for name in page]
    assert seen == expected
    assert all(len(page) == n for page in pages[:-1])
    whole = names_of(rpc(listing.method), listing.field)
    assert sorted(whole) == sorted(seen)
    if db.engine.dialect.name == "sqlite":
        assert seen == sorted(seen)  # binary order: "Zed" before "admin", as Kallithea's


@BY_METHOD
def test_last_starts_strictly_after_and_need_not_exist(
        rpc: Rpc, db: Database, listing: Listing) -> None:
    listing.make(db, sample(listing))
    expected = listing.in_name_order(db)
    after = expected[3]
    assert names_of(rpc(listing.method, n=2, last=after), listing.field) == expected[4:6]
    # a name no item has: the page starts at the next one there is
    assert names_of(rpc(listing.method, n=2, last=after + "\x01"), listing.field) == \
        expected[4:6]
    # ``last`` alone: the rest of the list
    assert names_of(rpc(listing.method, last=after), listing.field) == expected[4:]
    assert names_of(rpc(listing.method, n=5, last=""), listing.field) == expected[:5]


@BY_METHOD
def test_last_past_the_end_gives_an_empty_page(rpc: Rpc, db: Database, listing: Listing) -> None:
    listing.make(db, sample(listing))
    final = listing.in_name_order(db)[-1]
    assert rpc(listing.method, n=10, last=final)["result"] == []
    assert rpc(listing.method, n=10, last=final + "~")["result"] == []
    assert rpc(listing.method, last=final)["result"] == []


@BY_METHOD
@pytest.mark.parametrize(("args", "error"), [
    ({"n": 0}, "Invalid `n` arg in JSON DATA: must be at least 1"),
    ({"n": -1}, "Invalid `n` arg in JSON DATA: must be at least 1"),
    ({"n": 10_001}, "Invalid `n` arg in JSON DATA: must be at most 10000"),
    ({"n": "5"}, "Invalid `n` arg in JSON DATA: must be an integer"),
    ({"n": 2.5}, "Invalid `n` arg in JSON DATA: must be an integer"),
    ({"n": None}, "Invalid `n` arg in JSON DATA: must be an integer"),
    ({"last": 5}, "Invalid `last` arg in JSON DATA: must be a string"),
    ({"last": "x" * 256}, "Invalid `last` arg in JSON DATA: must be at most 255 characters long"),
    ({"n": 5, "limit": 5}, "Invalid `n` arg in JSON DATA: cannot be combined with `limit` "
                           "or `offset`"),
    ({"last": "a", "offset": 1}, "Invalid `last` arg in JSON DATA: cannot be combined with "
                                 "`limit` or `offset`"),
])
def test_bad_paging_arguments_are_refused(rpc: Rpc, listing: Listing, args: dict[str, Any],
                                          error: str) -> None:
    answer = rpc(listing.method, **args)
    assert answer["error"] == error


def test_whole_lists_keep_kallitheas_order(rpc: Rpc, db: Database) -> None:
    """Kallithea 0.7 lists users by username (ORDER BY, binary on SQLite) and everything else
    with no ORDER BY: in the table's order, by id (tests/differential checks it)."""
    for listing in LISTINGS:
        listing.make(db, sample(listing))
    users = names_of(rpc("get_users"), "username")
    if db.engine.dialect.name == "sqlite":
        assert users[:3] == ["9lives", "Alpha", "B-c"]  # binary order, as Kallithea's
        assert users == sorted([*USERNAMES, "admin"])
    assert users == LISTINGS[0].in_name_order(db)
    for listing in LISTINGS[1:]:
        assert names_of(rpc(listing.method), listing.field) == NAMES


def test_a_non_admins_repositories_come_by_name_as_in_kallithea(
        rpc: Rpc, db: Database, make_user: MakeUser) -> None:
    """Kallithea 0.7 selects a non-admin's repositories by ``repo_name IN (...)``, which
    SQLite answers by name; its user groups come by id, as an admin's."""
    bob = make_user("bob")
    LISTINGS[1].make(db, NAMES)
    LISTINGS[2].make(db, NAMES)
    assert names_of(rpc("get_repos", key=bob.key), "repo_name") == \
        LISTINGS[1].in_name_order(db)
    assert names_of(rpc("get_user_groups", key=bob.key), "group_name") == NAMES
    assert names_of(rpc("get_repos", key=bob.key, limit=3), "repo_name") == NAMES[:3]


@BY_METHOD
def test_limit_and_offset_keep_their_meaning(rpc: Rpc, db: Database, listing: Listing) -> None:
    listing.make(db, sample(listing))
    everyone = ["admin", *USERNAMES] if listing.model is User else NAMES  # by id
    assert names_of(rpc(listing.method, limit=3, offset=2), listing.field) == everyone[2:5]
    assert names_of(rpc(listing.method, limit=3), listing.field) == everyone[:3]
    assert names_of(rpc(listing.method, offset=4), listing.field) == everyone[4:]


# -- the bound ---------------------------------------------------------------------------------

BOUND = 4


@pytest.fixture
def small_rpc(config: Config, db: Database, admin_key: str) -> Rpc:
    """``rpc`` on a server configured with ``max_list_items = 4``."""
    app = create_app(dataclasses.replace(config, max_list_items=BOUND),
                     registry=build_registry(), db=db)
    client = Client(app)

    def call(method: str, *, key: str | None = None, **args: Any) -> dict[str, Any]:
        body = {"id": 1, "api_key": admin_key if key is None else key, "method": method,
                "args": args}
        answer: dict[str, Any] = client.post("/_admin/api", json=body,
                                             environ_base={"REMOTE_ADDR": "127.0.0.1"}).get_json()
        return answer

    return call


@BY_METHOD
def test_a_whole_list_over_the_bound_is_refused_never_cut(
        small_rpc: Rpc, db: Database, listing: Listing) -> None:
    """The admin counts as a user, so get_users has one item more than the others."""
    present = 1 if listing.model is User else 0
    listing.make(db, [f"item{i}" for i in range(BOUND - present)])
    assert len(small_rpc(listing.method)["result"]) == BOUND  # exactly the bound: answered
    listing.make(db, ["one-more"])
    refused = (f"{listing.method} would answer more than {BOUND} items: page with `n` and "
               "`last`")
    assert small_rpc(listing.method) == {"id": 1, "result": None, "error": refused}
    assert small_rpc(listing.method, offset=0)["error"] == refused
    assert small_rpc(listing.method, last="")["error"] == refused
    # what the caller asked to be cut is answered
    assert len(small_rpc(listing.method, n=BOUND + 1)["result"]) == BOUND + 1
    assert len(small_rpc(listing.method, limit=BOUND + 1)["result"]) == BOUND + 1
    assert len(small_rpc(listing.method, last="item0")["result"]) == BOUND - present


def test_the_bound_is_a_setting() -> None:
    assert Config.load(env={}).max_list_items == 10_000
    assert Config.load(env={"RPCSERVER_MAX_LIST_ITEMS": "50"}).max_list_items == 50
    with pytest.raises(Exception, match="max_list_items must be at least 1"):
        Config.load(env={"RPCSERVER_MAX_LIST_ITEMS": "0"})


# -- non-admins --------------------------------------------------------------------------------


def test_non_admins_page_only_through_repositories_they_can_read(
        rpc: Rpc, db: Database, make_user: MakeUser) -> None:
    bob = make_user("bob")
    LISTINGS[1].make(db, NAMES)
    hidden = {"Arepo", "g/inner", "a", "ä-umlaut"}
    granted = "g/inner"
    with db.transaction(write=True) as session:
        session.execute(update(Repository).where(Repository.name.in_(hidden))
                        .values(private=True))
        repo_id = session.scalar(select(Repository.id).where(Repository.name == granted))
        session.add(UserRepoPerm(user_id=bob.id, repo_id=repo_id, level=Level.READ))
    readable = [name for name in LISTINGS[1].in_name_order(db)
                if name not in hidden or name == granted]
    for n in (1, 2, 5):
        pages = page_through(rpc, "get_repos", "repo_name", n, key=bob.key)
        assert [name for page in pages for name in page] == readable
    assert names_of(rpc("get_repos", key=bob.key), "repo_name") == readable
    # ``last`` names an item the caller cannot see: the page still starts after it
    assert names_of(rpc("get_repos", key=bob.key, n=2, last="a"), "repo_name") == \
        [name for name in readable if name > "a"][:2]


def test_non_admins_page_only_through_user_groups_they_can_read(
        rpc: Rpc, db: Database, make_user: MakeUser) -> None:
    bob = make_user("bob")
    LISTINGS[2].make(db, NAMES)
    with db.transaction(write=True) as session:
        ids = dict(session.execute(select(UserGroup.name, UserGroup.id)).all())
        # ``default`` reads every group (Kallithea's default); take it away from some.
        session.execute(update(UserUserGroupPerm)
                        .where(UserUserGroupPerm.target_group_id.in_(
                            [ids["zrepo"], ids["ab"], ids["g/Inner"]]))
                        .values(level=Level.NONE))
        session.add(UserUserGroupPerm(user_id=bob.id, target_group_id=ids["ab"],
                                      level=Level.READ))
    readable = [name for name in LISTINGS[2].in_name_order(db) if name not in ("zrepo", "g/Inner")]
    pages = page_through(rpc, "get_user_groups", "group_name", 3, key=bob.key)
    assert [name for page in pages for name in page] == readable
    # the bound counts what the caller can read
    assert names_of(rpc("get_user_groups", key=bob.key, last="g"), "group_name") == \
        [name for name in readable if name > "g"]


def test_non_admins_whole_list_over_the_bound_is_refused(
        small_rpc: Rpc, db: Database, make_user: MakeUser) -> None:
    bob = make_user("bob")
    LISTINGS[1].make(db, [f"r{i}" for i in range(BOUND + 3)])
    with db.transaction(write=True) as session:
        session.execute(update(Repository).where(Repository.name.in_(["r0", "r1", "r2"]))
                        .values(private=True))
    assert len(small_rpc("get_repos", key=bob.key)["result"]) == BOUND  # 4 of 7 readable
    with db.transaction(write=True) as session:
        session.execute(update(Repository).where(Repository.name == "r0").values(private=False))
    assert small_rpc("get_repos", key=bob.key)["error"] == (
        f"get_repos would answer more than {BOUND} items: page with `n` and `last`")
    assert len(small_rpc("get_repos", key=bob.key, n=10)["result"]) == BOUND + 1


# -- cost --------------------------------------------------------------------------------------


def test_an_admins_page_is_a_range_of_the_name_index(db: Database) -> None:
    """The keyset statement reads the page from the unique index on the name, not the whole
    table sorted (SQLite's plan; PostgreSQL's depends on the table's size, see the bench)."""
    if db.engine.dialect.name != "sqlite":
        pytest.skip("SQLite's query plan")
    statement = repos._repositories_pages(True).after
    compiled = statement.compile(db.engine, compile_kwargs={"render_postcompile": True})
    values = {**compiled.params, "page_last": "a", "page_limit": 10}
    assert compiled.positiontup is not None
    with db.reading() as conn:
        plan = " | ".join(str(row[-1]) for row in conn.exec_driver_sql(
            "EXPLAIN QUERY PLAN " + str(compiled),
            tuple(values[name] for name in compiled.positiontup)))
    assert "USING INDEX sqlite_autoindex_repositories_1 (name>?)" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
