"""No repository or group name may begin with `_` (API.md §8): `/_admin/` and the server's
later paths stay free beside the clone URLs `<base>/<full name>` (docs/serving.md)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Rpc


def error(answer: dict[str, Any]) -> str:
    assert answer["result"] is None, answer["result"]
    return str(answer["error"])


def test_reserved_names_are_refused_with_their_text(rpc: Rpc) -> None:
    assert error(rpc("create_repo", repo_name="_admin")) == "repository name `_admin` is reserved"
    assert error(rpc("create_repo", repo_name="_x")) == "repository name `_x` is reserved"
    assert error(rpc("create_repo_group", group_name="_g")) == \
        "repository name `_g` is reserved"
    assert rpc("create_repo_group", group_name="proj")["error"] is None
    assert error(rpc("create_repo", repo_name="proj/_x")) == \
        "repository name `proj/_x` is reserved"
    assert error(rpc("create_repo_group", group_name="_sub", parent="proj")) == \
        "repository name `_sub` is reserved"
    assert rpc("create_repo", repo_name="proj/web")["error"] is None
    assert error(rpc("update_repo", repoid="proj/web", name="_web")) == \
        "repository name `_web` is reserved"
    assert error(rpc("fork_repo", repoid="proj/web", fork_name="_fork")) == \
        "repository name `_fork` is reserved"
    assert error(rpc("update_repo_group", repogroupid="proj", group_name="_p")) == \
        "repository name `_p` is reserved"
    # Inside a name `_` is an ordinary character.
    assert rpc("create_repo", repo_name="a_b")["error"] is None
