"""What `rpc-api` tells people without a server: --help, --list-methods, shell completion."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from client.exitcodes import ExitCode
from client.methods import METHODS
from rpcserver.api import build_registry
from tests.client.conftest import REPO_ROOT, RpcApi

#: Every name rpcserver's registry answers (aliases included), sorted: what the table lists.
SERVER_METHODS = sorted({name for name, _method in build_registry()})

#: Kallithea 0.7's methods as API.md §5 lists them (the table must not silently lose one that
#: the server has; gists and pull requests it does not have yet).
KALLITHEA_METHODS = [
    "test",
    "get_server_info",
    "get_ip",
    "show_ip",
    "rescan_repos",
    "invalidate_cache",
    "get_user",
    "get_users",
    "create_user",
    "update_user",
    "delete_user",
    "get_user_group",
    "get_user_groups",
    "create_user_group",
    "update_user_group",
    "delete_user_group",
    "add_user_to_user_group",
    "remove_user_from_user_group",
    "get_repo",
    "get_repos",
    "get_repo_nodes",
    "create_repo",
    "update_repo",
    "fork_repo",
    "delete_repo",
    "pull",
    "get_changesets",
    "get_changeset",
    "grant_user_permission",
    "revoke_user_permission",
    "grant_user_group_permission",
    "revoke_user_group_permission",
    "get_repo_group",
    "get_repo_groups",
    "create_repo_group",
    "update_repo_group",
    "delete_repo_group",
    "grant_user_permission_to_repo_group",
    "revoke_user_permission_from_repo_group",
    "grant_user_group_permission_to_repo_group",
    "revoke_user_group_permission_from_repo_group",
    "get_gist",
    "get_gists",
    "create_gist",
    "delete_gist",
    "get_pullrequest",
    "comment_pullrequest",
    "edit_reviewers",
]


@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_help_shows_options_examples_and_exit_codes(rpc_api: RpcApi, flag: str) -> None:
    done = rpc_api(flag)
    assert done.returncode == ExitCode.OK
    text = done.stdout
    assert text.startswith("Usage: rpc-api [OPTIONS] [METHOD] [key:value | key:=json]...")
    for option in ("--apihost", "--apikey", "--config", "--save-config", "--format",
                   "--profile", "--args-file", "--timeout", "--list-methods"):  # fmt: skip
        assert option in text
    assert "RPC_API_HOST" in text and "RPC_API_KEY" in text
    assert "  rpc-api get_repo repoid:myrepo\n" in text
    assert 'echo \'{"repoid": "mirrors/linux"}\' | rpc-api --args-file - pull' in text
    assert "Exit codes: 0 success, 1 the server answered an error, 2 usage error," in text


def test_version(rpc_api: RpcApi) -> None:
    done = rpc_api("--version")
    assert done.returncode == ExitCode.OK
    assert re.fullmatch(r"rpc-api \S+\n", done.stdout)


def _listed(rpc_api: RpcApi) -> tuple[list[str], str]:
    done = rpc_api("--list-methods")
    assert done.returncode == ExitCode.OK
    names = [line.split()[0] for line in done.stdout.splitlines() if not line.startswith(" ")]
    return names, done.stdout


def test_list_methods_covers_exactly_the_servers_registry(rpc_api: RpcApi) -> None:
    listed, text = _listed(rpc_api)
    assert listed == SERVER_METHODS
    assert "\npull repoid [clone_uri]\n    Fetch every branch and tag" in text
    assert "\nget_repos [limit] [offset] [n] [last]\n    " in text
    assert "\nget_repo_groups [limit] [offset] [n] [last]\n    " in text
    assert "\nshow_ip [userid]\n    " in text
    assert "\ncreate_users_group [group_name] [description] [owner] [active] [name]\n" in text


def test_list_methods_covers_kallithea_07(rpc_api: RpcApi) -> None:
    listed, _text = _listed(rpc_api)
    served = set(SERVER_METHODS)
    assert [name for name in KALLITHEA_METHODS if name in served and name not in listed] == []


def test_list_methods_as_json(rpc_api: RpcApi) -> None:
    methods = rpc_api.json("--list-methods")
    assert [m["name"] for m in methods] == SERVER_METHODS
    assert methods == json.loads((REPO_ROOT / "client" / "methods.json").read_text())["methods"]
    by_name = {m["name"]: m for m in methods}
    assert by_name["create_user"]["required"] == ["username", "email"]
    assert "active" in by_name["create_user"]["optional"]
    assert by_name["get_repos"]["optional"] == ["limit", "offset", "n", "last"]
    assert by_name["show_ip"]["optional"] == ["userid"]
    assert by_name["create_users_group"]["required"] == []
    assert all(m["summary"] for m in methods)


def test_list_one_method(rpc_api: RpcApi) -> None:
    done = rpc_api("--list-methods", "get_repo")
    assert done.returncode == ExitCode.OK
    assert done.stdout.split()[0] == "get_repo"
    assert done.stdout.startswith("get_repo repoid [with_revision_names] [with_pullrequests]\n    ")
    unknown = rpc_api("--list-methods", "get_rpeo")
    assert unknown.returncode == ExitCode.USAGE
    assert "'get_rpeo' is not a method of rpcserver's API" in unknown.stderr
    pullrequest = rpc_api("--list-methods", "get_pullrequest")  # Kallithea's, not (yet) ours
    assert pullrequest.returncode == ExitCode.USAGE


def test_list_methods_needs_no_server_or_config(rpc_api: RpcApi) -> None:
    done = rpc_api("--list-methods", env={"RPC_API_HOST": "http://127.0.0.1:9"})
    assert done.returncode == ExitCode.OK
    assert len(done.stdout.splitlines()) >= len(METHODS)


def test_list_methods_works_without_rpcserver(rpc_api: RpcApi, tmp_path: Path) -> None:
    """The client is for admins' machines: it must not import the server to know its methods."""
    blocker = tmp_path / "blocker"
    (blocker / "rpcserver").mkdir(parents=True)
    (blocker / "rpcserver" / "__init__.py").write_text("raise ImportError('not on this machine')\n")
    env = {"PYTHONPATH": os.pathsep.join([str(blocker), rpc_api.env["PYTHONPATH"]])}
    blocked = subprocess.run([sys.executable, "-c", "import rpcserver"], env={**rpc_api.env, **env},
                             cwd=tmp_path, capture_output=True, check=False)  # fmt: skip
    assert blocked.returncode != 0  # the blocker works
    done = rpc_api("--format", "json", "--list-methods", env=env)
    assert done.returncode == ExitCode.OK, done.stderr
    assert [m["name"] for m in json.loads(done.stdout)] == SERVER_METHODS


def _complete(rpc_api: RpcApi, words: str, shell: str = "bash") -> list[str]:
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    done = rpc_api(
        env={
            "_RPC_API_COMPLETE": f"{shell}_complete",
            "COMP_WORDS": words,
            "COMP_CWORD": str(cword),
        }
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


def test_completion_script_is_clicks(rpc_api: RpcApi) -> None:
    done = rpc_api(env={"_RPC_API_COMPLETE": "bash_source"})
    assert done.returncode == 0
    assert "complete -o nosort -F _rpc_api_completion rpc-api" in done.stdout


def test_completion_of_method_names(rpc_api: RpcApi) -> None:
    assert _complete(rpc_api, "rpc-api get_repo_gr") == [
        "plain,get_repo_group",
        "plain,get_repo_groups",
    ]
    assert _complete(rpc_api, "rpc-api create_user") == [
        "plain,create_user",
        "plain,create_user_group",
        "plain,create_users_group",
    ]
    assert _complete(rpc_api, "rpc-api show") == ["plain,show_ip"]


def test_completion_of_argument_names_skips_given_ones(rpc_api: RpcApi) -> None:
    assert _complete(rpc_api, "rpc-api get_repo ") == [
        "plain,repoid:",
        "plain,with_revision_names:",
        "plain,with_pullrequests:",
    ]
    assert _complete(rpc_api, "rpc-api --format json pull repoid:r ") == ["plain,clone_uri:"]
    assert _complete(rpc_api, "rpc-api get_repos ") == ["plain,limit:", "plain,offset:",
                                                         "plain,n:", "plain,last:"]
    assert _complete(rpc_api, "rpc-api get_repo_groups offset:=5 ") == ["plain,limit:",
                                                                         "plain,n:",
                                                                         "plain,last:"]


def test_completion_of_options(rpc_api: RpcApi) -> None:
    assert "plain,--save-config" in _complete(rpc_api, "rpc-api --sa")
