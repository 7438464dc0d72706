"""A caller who may not create in a group learns nothing about the names inside it: a taken
name and a free one answer the same refusal (create_repo, fork_repo, update_repo)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.conftest import ApiUser, Rpc
from tests.security.conftest import err, ok

MakeUser = Callable[..., ApiUser]
NO_RIGHT = "no permission to create repo in grp"


@pytest.fixture
def bob(rpc: Rpc, make_user: MakeUser) -> ApiUser:
    """bob may read `grp` (default group.read) but not write in it; `grp/hidden` is private,
    `pub` is readable, bob owns the top-level `hidden` and `free`."""
    user = make_user("bob")
    ok(rpc("create_repo_group", group_name="grp"))
    ok(rpc("create_repo", repo_name="grp/hidden", private=True))
    ok(rpc("create_repo", repo_name="pub"))
    for name in ("hidden", "free"):
        ok(rpc("create_repo", repo_name=name, key=user.key))
    return user


@pytest.mark.parametrize("name", ["grp/hidden", "grp/free"])
def test_create_repo(rpc: Rpc, bob: ApiUser, name: str) -> None:
    assert err(rpc("create_repo", repo_name=name, key=bob.key)) == NO_RIGHT


@pytest.mark.parametrize("name", ["grp/hidden", "grp/free"])
def test_fork_repo(rpc: Rpc, bob: ApiUser, name: str) -> None:
    assert err(rpc("fork_repo", repoid="pub", fork_name=name, key=bob.key)) == NO_RIGHT


@pytest.mark.parametrize("name", ["grp/hidden", "grp/free"])
def test_update_repo_name(rpc: Rpc, bob: ApiUser, name: str) -> None:
    assert err(rpc("update_repo", repoid="free", name=name, key=bob.key)) == NO_RIGHT


@pytest.mark.parametrize("repo", ["hidden", "free"])
def test_update_repo_group(rpc: Rpc, bob: ApiUser, repo: str) -> None:
    # Moving `hidden` into grp would be grp/hidden (taken); `free` would be grp/free.
    assert err(rpc("update_repo", repoid=repo, group="grp", key=bob.key)) == NO_RIGHT


def test_one_who_may_create_there_is_told_the_name_is_taken(rpc: Rpc, bob: ApiUser) -> None:
    ok(rpc("grant_user_permission_to_repo_group", repogroupid="grp", userid="bob",
           perm="group.write"))
    assert err(rpc("create_repo", repo_name="grp/hidden", key=bob.key)) == \
        "repo `grp/hidden` already exist"
    assert err(rpc("update_repo", repoid="hidden", group="grp", key=bob.key)) == \
        "failed to update repo `hidden`"
    assert err(rpc("fork_repo", repoid="pub", fork_name="grp/hidden", key=bob.key)) == \
        "repo `grp/hidden` already exist"
