"""Names that try to leave repos_root, collide, or grow past their bounds."""

from __future__ import annotations

from pathlib import Path

from rpcserver.core.config import Config
from tests.conftest import Rpc
from tests.gitremotes import on_disk
from tests.security.conftest import err, ok


def test_moving_a_group_cannot_make_a_name_inside_longer_than_allowed(rpc: Rpc,
                                                                     config: Config) -> None:
    # Names are at most 255 characters; a rename or move of a group rewrites every name
    # inside, which must then still fit (PostgreSQL: an internal error; SQLite: a repository
    # whose name no longer maps to a path, so every later call on it failed).
    x, y, r = "x" * 100, "y" * 100, "r" * 100
    ok(rpc("create_repo_group", group_name=x))
    ok(rpc("create_repo_group", group_name="g"))
    ok(rpc("create_repo_group", group_name=y, parent="g"))
    ok(rpc("create_repo", repo_name=f"g/{y}/{r}"))
    too_long = "would be longer than 255 characters"
    assert err(rpc("update_repo_group", repogroupid="g", parent=x)) == (
        f"Invalid `parent` arg in JSON DATA: the full name of `g/{y}/{r}` {too_long}")
    assert err(rpc("update_repo_group", repogroupid="g", group_name=f"{x}/g")) == (
        f"Invalid `group_name` arg in JSON DATA: the full name of `g/{y}/{r}` {too_long}")
    assert err(rpc("update_repo_group", repogroupid="g", group_name="g" * 60)) == (
        f"Invalid `group_name` arg in JSON DATA: the full name of `g/{y}/{r}` {too_long}")
    assert [g["group_name"] for g in ok(rpc("get_repo_groups"))] == [x, "g", f"g/{y}"]
    assert on_disk(config.repos_root) == [f"g/{y}/{r}"]
    assert ok(rpc("get_repo", repoid=f"g/{y}/{r}"))["repo_name"] == f"g/{y}/{r}"
    # What fits still moves.
    ok(rpc("update_repo_group", repogroupid="g", group_name="g" * 50))
    assert on_disk(config.repos_root) == [f"{'g' * 50}/{y}/{r}"]
    assert Path(config.repos_root, "g" * 50, y, r, "HEAD").is_file()


def test_symlinks_in_repos_root_lead_nowhere(rpc: Rpc, config: Config, tmp_path: Path) -> None:
    # Symlinks an operator left in repos_root: one leading out, one into the server's own
    # .rpcserver directory (locks, scratch, trash). Names through them are refused with the
    # method's own failure text (not an internal error), and nothing is written there.
    root = Path(config.repos_root)
    ok(rpc("create_repo", repo_name="first"))  # makes repos_root and .rpcserver
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "out").symlink_to(outside)
    (root / "inner").symlink_to(root / ".rpcserver")
    (root / "tmp").symlink_to(root / ".rpcserver" / "tmp")
    internal_before = sorted(p.name for p in (root / ".rpcserver").iterdir())
    for name in ("out", "inner", "tmp"):
        assert err(rpc("create_repo_group", group_name=name)) == \
            f"failed to create repo group `{name}`"
        assert err(rpc("create_repo", repo_name=name)) == \
            f"failed to create repository `{name}`"
        assert err(rpc("fork_repo", repoid="first", fork_name=name)) == \
            f"failed to fork repository `first` as `{name}`"
        assert err(rpc("update_repo", repoid="first", name=name)) == \
            "failed to update repo `first`"
    ok(rpc("create_repo_group", group_name="g"))
    assert err(rpc("update_repo_group", repogroupid="g", group_name="inner")) == \
        "failed to update repository group `g`"
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in (root / ".rpcserver").iterdir()) == internal_before
    assert list((root / ".rpcserver" / "tmp").iterdir()) == []
    assert [r["repo_name"] for r in ok(rpc("get_repos"))] == ["first"]
    assert [g["group_name"] for g in ok(rpc("get_repo_groups"))] == ["g"]
    assert on_disk(config.repos_root) == ["first"]
