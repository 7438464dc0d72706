"""Fill a running server through its own API, as an admin script would.

1,000 users (the admin and 999 created here, one of them ``reader``); 50 user groups of 20
members; 4 repository groups and 200 private repositories, 20 of them inside the groups;
``reader`` gets read on 10 repositories, so it sees exactly those. A method the server does
not have yet is skipped and remembered, so that the calls that depend on it are reported as
"n/a (method missing)" instead of failing the run.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.server_process import ServerProcess

USERS = 1000  # the admin included
READER = "reader"
USER_GROUPS = 50
GROUP_MEMBERS = 20
REPOS = 200
REPO_GROUPS = 4
REPOS_IN_GROUPS = 20
READABLE = 10
#: Populating runs this many calls at once (the server has two workers).
PARALLEL = 4


class MethodMissing(Exception):
    pass


@dataclass
class Population:
    admin_key: str
    reader_key: str = ""
    #: A repository the admin reads with get_repo (inside a repository group).
    repo_name: str = ""
    usernames: list[str] = field(default_factory=list)
    #: Methods the server answered "No such method" for.
    missing: set[str] = field(default_factory=set)


Post = Callable[[dict[str, Any]], dict[str, Any]]


def http_post(url: str) -> Post:
    """POST an envelope to a server: one keep-alive session per thread."""
    local = threading.local()

    def post(body: dict[str, Any]) -> dict[str, Any]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        answer: dict[str, Any] = session.post(url, json=body, timeout=120).json()
        return answer

    return post


class Api:
    """Calls through ``post``; every error but "No such method" is fatal."""

    def __init__(self, post: Post) -> None:
        self.post = post

    def call(self, key: str, method: str, **args: Any) -> Any:
        answer = self.post({"id": 1, "api_key": key, "method": method, "args": args})
        error = answer["error"]
        if error is not None:
            if error.startswith("No such method"):
                raise MethodMissing(method)
            raise RuntimeError(f"{method}({args}) failed: {error}")
        return answer["result"]


def repo_names() -> list[str]:
    """200 names; the last 20 spread over the four repository groups."""
    top = REPOS - REPOS_IN_GROUPS
    names = [f"repo-{i:04d}" for i in range(1, top + 1)]
    names += [f"team-{(i % REPO_GROUPS) + 1}/repo-{i:04d}" for i in range(top + 1, REPOS + 1)]
    return names


def readable_repos() -> list[str]:
    """Ten of the repositories, some top-level and some inside groups, for ``reader``."""
    names = repo_names()
    step = len(names) // READABLE
    return names[step - 1::step][:READABLE]


def _all(pool: ThreadPoolExecutor, work: Callable[[Any], Any], items: Iterable[Any]) -> list[Any]:
    return list(pool.map(work, items))


def populate(server: ServerProcess) -> Population:
    """Populate a running server; ``reader``'s key comes from ``rpcserver create-api-key``."""
    def reader_key() -> str:
        return server.rpcserver("create-api-key", READER, "--description", "bench").stdout.strip()

    return populate_with(Api(http_post(server.api_url)), server.admin_key, reader_key)


def populate_with(api: Api, admin: str, reader_key: Callable[[], str], *,
                  parallel: int = PARALLEL) -> Population:
    pop = Population(admin_key=admin)
    with ThreadPoolExecutor(parallel) as pool:
        _users(api, admin, pool, pop)
        pop.reader_key = reader_key()
        _step(pop, lambda: _user_groups(api, admin, pool, pop))
        _step(pop, lambda: _repos(api, admin, pool, pop))
    return pop


def _step(pop: Population, work: Callable[[], None]) -> None:
    try:
        work()
    except MethodMissing as exc:
        pop.missing.add(str(exc))


def _users(api: Api, admin: str, pool: ThreadPoolExecutor, pop: Population) -> None:
    names = [READER] + [f"user-{i:04d}" for i in range(1, USERS - 1)]

    def create(name: str) -> None:
        api.call(admin, "create_user", username=name, email=f"{name}@bench.test",
                 firstname=name.capitalize(), lastname="Bench")

    _all(pool, create, names)
    pop.usernames = ["admin", *names]


def _user_groups(api: Api, admin: str, pool: ThreadPoolExecutor, pop: Population) -> None:
    groups = [f"ugroup-{i:02d}" for i in range(1, USER_GROUPS + 1)]
    _all(pool, lambda g: api.call(admin, "create_user_group", group_name=g,
                                  description=f"bench group {g}"), groups)
    # Consecutive users fill each group; ``reader`` (the second user) is in the first one.
    pairs = [(g, pop.usernames[i * GROUP_MEMBERS + j])
             for i, g in enumerate(groups) for j in range(GROUP_MEMBERS)]
    _all(pool, lambda p: api.call(admin, "add_user_to_user_group", usergroupid=p[0],
                                  userid=p[1]), pairs)


def _repos(api: Api, admin: str, pool: ThreadPoolExecutor, pop: Population) -> None:
    for i in range(1, REPO_GROUPS + 1):
        api.call(admin, "create_repo_group", group_name=f"team-{i}",
                 description=f"bench team {i}")
    names = repo_names()
    _all(pool, lambda name: api.call(admin, "create_repo", repo_name=name, repo_type="git",
                                     description=f"bench repository {name}", private=True),
         names)
    pop.repo_name = names[-1]
    _all(pool, lambda name: api.call(admin, "grant_user_permission", repoid=name,
                                     userid=READER, perm="repository.read"),
         readable_repos())
