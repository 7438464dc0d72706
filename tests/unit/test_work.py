"""The kinds of work a Deferred carries are plain data: a queue could store and rebuild them."""

from __future__ import annotations

import dataclasses
import json

import pytest

from rpcserver.domain.context import Work
from rpcserver.domain.gists import CreateGist
from rpcserver.domain.repo_work import (
    CreateRepo,
    ForkRepo,
    KnownRepo,
    PullRepo,
    RefreshCache,
    RescanRepos,
)
from rpcserver.domain.work import WORK_KINDS, from_data, to_data
from rpcserver.vcs.clone_uri import Source

SOURCE = Source(url="https://bob:s3cret@192.0.2.7/r.git", scheme="https",
                protocols=("https",), pins=("example.org:443:192.0.2.7",),
                secrets=("s3cret",), ssh_host_key_alias=None)

EXAMPLES: list[Work] = [
    CreateRepo(name="g/new", repo_type="git", failed_text="failed to create repository `g/new`"),
    CreateRepo(name="g/copy", repo_type="git", failed_text="failed", source=SOURCE,
               fetcher=(7, "bob")),
    ForkRepo(name="bob/fork", repo_type="git", parent_name="g/new", failed_text="failed"),
    PullRepo(repo_id=3, name="g/copy", repo_type="git", source=SOURCE,
             cache={"raw_id": "ab" * 20, "revision": 4, "message": "x"}, fetcher=(7, "bob")),
    PullRepo(repo_id=3, name="g/copy", repo_type="git", source=SOURCE),
    RefreshCache(repo_id=3, name="g/copy", repo_type="git"),
    RescanRepos(known=frozenset({"b", "a/c"})),
    RescanRepos(known=frozenset({"b", "a/c"}),
                existing=(KnownRepo(1, "b", "git", {"raw_id": "cd" * 20, "revision": 0}),
                          KnownRepo(2, "a/c", "git", None))),
    CreateGist(files=(("a.txt", "one\n"), ("b.py", "print(2)\n")),
               author=("Ann Lee", "ann@example.com"), message="added files: a.txt, b.py"),
]


@pytest.mark.parametrize("work", EXAMPLES, ids=lambda w: w.kind)
def test_work_survives_json(work: Work) -> None:
    data = json.loads(json.dumps(to_data(work)))
    assert data["kind"] == work.kind
    assert from_data(data) == work


def test_every_kind_is_registered_under_its_name() -> None:
    assert {type(work) for work in EXAMPLES} == set(WORK_KINDS.values())
    for kind, cls in WORK_KINDS.items():
        assert cls.kind == kind
        assert dataclasses.is_dataclass(cls)
        assert cls.__dataclass_params__.frozen


def test_only_registered_work_becomes_data() -> None:
    @dataclasses.dataclass(frozen=True)
    class Stray:
        kind = "create_repo"

    with pytest.raises(TypeError):
        to_data(Stray())  # type: ignore[arg-type]
    with pytest.raises(KeyError):
        from_data({"kind": "nothing", "params": {}})
