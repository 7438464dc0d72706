"""docs/cli.md stays true: every option and exit code is documented, and the recipes run."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from client.cli import main
from client.exitcodes import ExitCode
from tests.client.conftest import REPO_ROOT, RpcApi
from tests.server_process import ServerProcess

DOC = (REPO_ROOT / "docs" / "cli.md").read_text()


def shell_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, flags=re.DOTALL)


def section(title: str) -> str:
    start = DOC.index(f"\n### {title}\n")
    following = re.compile(r"\n##+ ").search(DOC, start + 1)
    return DOC[start : following.start() if following else len(DOC)]


def test_every_option_is_documented() -> None:
    for param in main.params:
        for name in param.opts:
            if name.startswith("--"):
                assert f"`{name}" in DOC, f"{name} is missing from docs/cli.md"
        for var in [param.envvar] if isinstance(param.envvar, str) else []:
            assert f"`{var}`" in DOC, f"{var} is missing from docs/cli.md"


def test_every_exit_code_is_documented() -> None:
    table = DOC[DOC.index("## Exit codes") :]
    for code in ExitCode:
        assert f"\n| {code.value} | " in table, f"exit code {code.value} is undocumented"


def test_shell_recipes_are_valid_shell() -> None:
    blocks = shell_blocks(DOC)
    assert len(blocks) >= 10
    for block in blocks:
        done = subprocess.run(["bash", "-n"], input=block, capture_output=True, text=True)
        assert done.returncode == 0, f"{done.stderr}\n{block}"


def test_the_three_recipes_are_there() -> None:
    assert "get_repos" in section("Refresh every mirror with `pull`")
    assert " pull " in section("Refresh every mirror with `pull`")
    grant = section("Grant a user group read access on every repository of a repository group")
    assert "grant_user_group_permission" in grant and "repository.read" in grant


@pytest.fixture
def shell(rpc_api: RpcApi, live_server: ServerProcess,
          tmp_path: Path) -> Callable[[str], subprocess.CompletedProcess[str]]:
    """Run a doc snippet in bash with rpc-api on PATH and the live server configured."""
    env = dict(rpc_api.env)
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    env["RPC_API_HOST"] = live_server.url
    env["RPC_API_KEY"] = live_server.admin_key

    def run(script: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["bash", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=120, check=False,
        )  # fmt: skip

    return run


def test_csv_recipe_creates_the_users(
    shell: Callable[[str], subprocess.CompletedProcess[str]],
    rpc_api: RpcApi,
    live_server: ServerProcess,
    tmp_path: Path,
    unique: Callable[[str], str],
) -> None:
    a, b, c = unique("csv"), unique("csv"), unique("csv")
    rows = [f"{a},{a}@example.com,Alice,Liddell", f"{b},{b}@example.com,Bob,Builder",
            f"{a},{a}@example.com,Alice,Again", f"{c},{c}@example.com,Carol,"]  # fmt: skip
    # Written by a spreadsheet: CRLF line ends.
    (tmp_path / "users.csv").write_text(
        "\r\n".join(["username,email,firstname,lastname", *rows]) + "\r\n", newline=""
    )
    done = shell(shell_blocks(section("Create users in bulk from a CSV file"))[0])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"created {a}\ncreated {b}\ncreated {c}\n"
    assert done.stderr == f"ERROR: user `{a}` already exist\n"
    rpc_api.env.update(RPC_API_HOST=live_server.url, RPC_API_KEY=live_server.admin_key)
    user = rpc_api.json("get_user", f"userid:{b}")
    assert (user["firstname"], user["lastname"], user["active"]) == ("Bob", "Builder", True)


@pytest.mark.skipif(shutil.which("jq") is None, reason="the recipe uses jq")
def test_csv_recipe_with_quoted_fields(
    shell: Callable[[str], subprocess.CompletedProcess[str]],
    rpc_api: RpcApi,
    live_server: ServerProcess,
    tmp_path: Path,
    unique: Callable[[str], str],
) -> None:
    name = unique("quoted")
    (tmp_path / "users.csv").write_text(
        f'username,email,firstname,lastname\n{name},{name}@example.com,"Smith, Jr.",Ann\n'
    )
    done = shell(shell_blocks(section("Create users in bulk from a CSV file"))[1])
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"created new user `{name}`\n"
    rpc_api.env.update(RPC_API_HOST=live_server.url, RPC_API_KEY=live_server.admin_key)
    assert rpc_api.json("get_user", f"userid:{name}")["firstname"] == "Smith, Jr."
