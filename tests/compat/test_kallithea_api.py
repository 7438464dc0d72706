"""Kallithea 0.7.0's own `kallithea-api` (from PyPI) against a real rpcserver.

Every command is the real executable, run as Kallithea's documentation shows
(docs/api/api.rst of Kallithea 0.7.0), with HOME in a temporary directory. The assertions are
on what its user sees: stdout, the exit code, the config file.

kallithea-api's own habits, asserted as they are (docs/compatibility.md lists them): it exits 0
whatever the server answers; `--format=json` prints an error text on stdout like a result;
`pretty` sorts keys; it sends every argument as a string.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from tests.compat.conftest import KallitheaApi, Mirrors
from tests.server_process import ServerProcess

pytestmark = pytest.mark.e2e


def pretty(method: str, url: str, body: object, *, error: bool = False) -> str:
    """kallithea-api's `pretty` output, as kallithea/bin/kallithea_api.py prints it."""
    text = json.dumps(body, indent=4, sort_keys=True)
    return (f"Calling method {method} => {url}\n"
            f"Server response \n{'ERROR:' if error else ''}{text}\n")


def save_config(kallithea_api: KallitheaApi, server: ServerProcess) -> None:
    done = kallithea_api(f"--apihost={server.url}", f"--apikey={server.admin_key}",
                         "--save-config")
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"Created new config in {kallithea_api.config_file}\n"


# -- the config file -------------------------------------------------------------------------


def test_save_config_writes_the_file_and_later_calls_use_it(
    kallithea_api: KallitheaApi, live_server: ServerProcess
) -> None:
    save_config(kallithea_api, live_server)
    text = kallithea_api.config_file.read_text()
    assert json.loads(text) == {"apikey": live_server.admin_key, "apihost": live_server.url}
    assert text == json.dumps({"apikey": live_server.admin_key, "apihost": live_server.url},
                              indent=4) + "\n"

    me = kallithea_api.result("get_user")
    assert (me["username"], me["admin"]) == ("admin", True)

    again = kallithea_api(f"--apihost={live_server.url}", f"--apikey={live_server.admin_key}",
                          "--save-config")
    assert again.stdout == f"Updated config in {kallithea_api.config_file}\n"


def test_options_override_the_saved_config(
    kallithea_api: KallitheaApi, live_server: ServerProcess
) -> None:
    save_config(kallithea_api, live_server)
    assert kallithea_api.json("--apikey=rpck_not-a-real-key", "get_user") == "Invalid API key"
    # A host with a trailing slash: kallithea-api strips it.
    assert kallithea_api.result(f"--apihost={live_server.url}/", "get_user")["user_id"] == 2


def test_save_config_without_config_directory(
    kallithea_api: KallitheaApi, live_server: ServerProcess
) -> None:
    """kallithea-api's own behaviour: it does not create ~/.config and dies with a traceback."""
    (kallithea_api.home / ".config").rmdir()
    done = kallithea_api(f"--apihost={live_server.url}", f"--apikey={live_server.admin_key}",
                         "--save-config")
    assert done.returncode == 1
    assert "FileNotFoundError" in done.stderr


def test_without_config_or_options_is_a_usage_error(kallithea_api: KallitheaApi) -> None:
    done = kallithea_api("get_user")
    assert done.returncode == 2
    assert "Could not find config file and missing --apikey or --apihost" in done.stderr


# -- the documented examples -----------------------------------------------------------------


def test_documented_get_repo_examples(
    kallithea_api: KallitheaApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    """docs/api/api.rst: `get_repo` without an argument, then with `repoid:myrepo`."""
    url, key = live_server.url, live_server.admin_key
    missing = kallithea_api(f"--apihost={url}", f"--apikey={key}", "get_repo")
    assert (missing.returncode, missing.stderr) == (0, "")
    assert missing.stdout == pretty("get_repo", url,
                                    "Missing non optional `repoid` arg in JSON DATA", error=True)

    myrepo = unique("myrepo")
    live_server.call("create_repo", repo_name=myrepo, repo_type="git")
    found = kallithea_api(f"--apihost={url}", f"--apikey={key}", "get_repo", f"repoid:{myrepo}")
    assert (found.returncode, found.stderr) == (0, "")
    head, _, body = found.stdout.partition("Server response \n")
    assert head == f"Calling method get_repo => {url}\n"
    repo = json.loads(body)
    assert body == json.dumps(repo, indent=4, sort_keys=True) + "\n"
    assert (repo["repo_name"], repo["clone_uri"]) == (myrepo, None)
    assert repo["landing_rev"] == ["rev", "tip"]


def test_documented_create_user_example(
    kallithea_api: KallitheaApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    """docs/api/api.rst's example, with an `=` and `,` in a value (split at the first `:`)."""
    save_config(kallithea_api, live_server)
    bent = unique("bent")
    made = kallithea_api.result(
        "create_user", f"username:{bent}", f"email:{bent}@example.com", "firstname:Bent",
        "lastname:Bentsen", "extern_type:ldap", f"extern_name:uid={bent},dc=example,dc=com")
    assert made["msg"] == f"created new user `{bent}`"
    assert {k: made["user"][k] for k in ("username", "firstname", "lastname", "email")} == {
        "username": bent, "firstname": "Bent", "lastname": "Bentsen",
        "email": f"{bent}@example.com"}


# -- a whole admin session -------------------------------------------------------------------


def test_admin_session(
    kallithea_api: KallitheaApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    save_config(kallithea_api, live_server)
    api = kallithea_api.result
    user, group, repo = unique("alice"), unique("devs"), unique("tools")

    created = api("create_user", f"username:{user}", f"email:{user}@Example.com",
                  "firstname:Alice", "password:s3cret-pass")
    assert created["msg"] == f"created new user `{user}`"
    assert list(created["user"]) == ["user_id", "username", "firstname", "lastname", "email",
                                     "emails", "active", "admin"]
    assert created["user"]["email"] == f"{user}@example.com"
    user_id = created["user"]["user_id"]

    # Ids come as strings from kallithea-api: a digit-only string is an id, else a name.
    by_id = api("get_user", f"userid:{user_id}")
    assert by_id == api("get_user", f"userid:{user}")
    assert by_id["username"] == user
    assert set(by_id["permissions"]) == {"global", "repositories", "repositories_groups",
                                         "user_groups"}

    made = api("create_user_group", f"group_name:{group}", "description:Developers")
    assert made["msg"] == f"created new user group `{group}`"
    assert (made["user_group"]["group_description"], made["user_group"]["owner"]) == (
        "Developers", "admin")
    group_id = made["user_group"]["users_group_id"]

    added = api("add_user_to_user_group", f"usergroupid:{group}", f"userid:{user}")
    assert added == {"success": True, "msg": f"added member `{user}` to user group `{group}`"}
    again = api("add_user_to_user_group", f"usergroupid:{group_id}", f"userid:{user_id}")
    assert again == {"success": False, "msg": "User is already in that group"}
    members = api("get_user_group", f"usergroupid:{group}")["members"]
    assert [m["username"] for m in members] == [user]

    new_repo = api("create_repo", f"repo_name:{repo}", "repo_type:git",
                   "description:Our tools")
    assert new_repo["msg"] == f"Created new repository `{repo}`"

    granted = api("grant_user_permission", f"repoid:{repo}", f"userid:{user}",
                  "perm:repository.write")
    assert granted["msg"] == (
        f"Granted perm: `repository.write` for user: `{user}` in repo: `{repo}`")
    granted = api("grant_user_group_permission", f"repoid:{repo}", f"usergroupid:{group}",
                  "perm:repository.read")
    assert granted["msg"] == (
        f"Granted perm: `repository.read` for user group: `{group}` in repo: `{repo}`")

    fetched = api("get_repo", f"repoid:{repo}")
    assert (fetched["repo_name"], fetched["repo_type"], fetched["description"]) == (
        repo, "git", "Our tools")
    assert fetched["last_changeset"]["revision"] == -1  # empty
    assert {"name": user, "type": "user", "permission": "repository.write"} in fetched["members"]
    assert {"name": group, "type": "user_group",
            "permission": "repository.read"} in fetched["members"]
    assert api("get_repo", f"repoid:{fetched['repo_id']}")["repo_name"] == repo

    listed = api("get_repos")
    assert repo in [r["repo_name"] for r in listed]
    assert api("get_user", f"userid:{user}")["permissions"]["repositories"][repo] == (
        "repository.write")


# -- output formats --------------------------------------------------------------------------


def test_pretty_and_json_formats(
    kallithea_api: KallitheaApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    save_config(kallithea_api, live_server)
    name = unique("zoe")
    as_json = kallithea_api("--format", "json", "create_user", f"username:{name}",
                            f"email:{name}@example.com", "firstname:Zoë")
    assert (as_json.returncode, as_json.stderr) == (0, "")
    assert "\\u00eb" in as_json.stdout  # kallithea-api escapes non-ASCII itself
    created = json.loads(as_json.stdout)
    assert created["user"]["firstname"] == "Zoë"
    assert as_json.stdout == json.dumps(created) + "\n"  # one line, the server's key order

    shown = kallithea_api("--format=pretty", "get_user", f"userid:{name}")
    assert (shown.returncode, shown.stderr) == (0, "")
    user = kallithea_api.result("get_user", f"userid:{name}")
    assert shown.stdout == pretty("get_user", live_server.url, user)

    default = kallithea_api("get_user", f"userid:{name}")
    assert default.stdout == shown.stdout


# -- errors ----------------------------------------------------------------------------------


def test_error_answers_are_printed_and_exit_zero(
    kallithea_api: KallitheaApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    """kallithea-api exits 0 on an error answer (Kallithea's behaviour); the text is ours."""
    url = live_server.url
    save_config(kallithea_api, live_server)

    bad_key = kallithea_api("--apikey=rpck_not-a-real-key", "get_user")
    assert (bad_key.returncode, bad_key.stderr) == (0, "")
    assert bad_key.stdout == pretty("get_user", url, "Invalid API key", error=True)
    assert kallithea_api.json("--apikey=not even a key", "get_user") == "Invalid API key"

    unknown = kallithea_api("no_such_method", "x:1")
    assert unknown.returncode == 0
    assert unknown.stdout == pretty("no_such_method", url, "No such method: no_such_method",
                                    error=True)
    assert kallithea_api.json("no_such_method") == "No such method: no_such_method"
    assert kallithea_api.json("_private") == "Method not allowed"

    name = unique("dup")
    kallithea_api.result("create_user", f"username:{name}", f"email:{name}@example.com")
    assert kallithea_api.json("create_user", f"username:{name}",
                              f"email:{name}2@example.com") == f"user `{name}` already exist"
    assert kallithea_api.json("create_user", f"username:{name}") == (
        "Missing non optional `email` arg in JSON DATA")
    assert kallithea_api.json("get_user", f"userid:{name}", "colour:blue") == (
        "Unknown `colour` arg in JSON DATA")
    assert kallithea_api.json("get_repo", "repoid:no/such/repo") == (
        "repository `no/such/repo` does not exist")
    assert kallithea_api.json("get_user", "userid:999999") == "user `999999` does not exist"


def test_malformed_argument_is_reported_and_exits_zero(kallithea_api: KallitheaApi,
                                                       live_server: ServerProcess) -> None:
    """kallithea-api's own check; nothing reaches the server."""
    save_config(kallithea_api, live_server)
    done = kallithea_api("get_user", "userid")
    assert (done.returncode, done.stdout) == (0, "")
    assert done.stderr == "Error parsing arguments \n"


def test_a_non_admin_sees_access_denied(
    kallithea_api: KallitheaApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    name = unique("carol")
    live_server.call("create_user", username=name, email=f"{name}@example.com")
    key = live_server.rpcserver("create-api-key", name).stdout.strip()
    host = f"--apihost={live_server.url}"
    assert kallithea_api.result(host, f"--apikey={key}", "get_user")["username"] == name
    assert kallithea_api.json(host, f"--apikey={key}", "get_users") == (
        "Access was denied to this resource.")


# -- pull, against a mirror on loopback ------------------------------------------------------


def test_pull(kallithea_api: KallitheaApi, mirror_server: ServerProcess, mirrors: Mirrors,
              unique: Callable[[str], str]) -> None:
    save_config(kallithea_api, mirror_server)
    repo = unique("mirror")
    made = kallithea_api.result("create_repo", f"repo_name:{repo}", "repo_type:git",
                                f"clone_uri:{mirrors.url}")
    assert made["msg"] == f"Created new repository `{repo}`"

    pulled = kallithea_api.result("pull", f"repoid:{repo}")
    assert pulled["msg"] == f"Pulled from `{repo}`"
    tip = kallithea_api.result("get_repo", f"repoid:{repo}")["last_changeset"]
    assert (tip["revision"], tip["raw_id"]) == (2, mirrors.upstream.ref("refs/heads/master"))

    empty = unique("plain")
    kallithea_api.result("create_repo", f"repo_name:{empty}", "repo_type:git")
    assert kallithea_api.json("pull", f"repoid:{empty}") == (
        f"Unable to pull changes from `{empty}`")


# -- what kallithea-api cannot express -------------------------------------------------------


def test_booleans_as_kallithea_api_sends_them(
    kallithea_api: KallitheaApi, mirror_server: ServerProcess, mirrors: Mirrors,
    unique: Callable[[str], str],
) -> None:
    save_config(kallithea_api, mirror_server)
    repo, name = unique("flags"), unique("dora")
    kallithea_api.result("create_repo", f"repo_name:{repo}", "repo_type:git",
                         f"clone_uri:{mirrors.url}")
    kallithea_api.result("pull", f"repoid:{repo}")

    # Flags Kallithea took as true (any non-empty string is truthy there).
    named = kallithea_api.json("get_repo", f"repoid:{repo}", "with_revision_names:true")
    assert list(named["branches"]) == ["master"]
    newest = kallithea_api.result("get_changesets", f"repoid:{repo}", "reverse:true",
                                  "with_file_list:true", "max_revisions:2")
    assert [c["revision"] for c in newest] == [2, 1]
    assert newest[0]["added"] == []

    # Stored booleans, which Kallithea 0.7 could not take as strings at all.
    made = kallithea_api.result("create_user", f"username:{name}",
                                f"email:{name}@example.com", "active:false")
    assert made["user"]["active"] is False
    assert kallithea_api.result("update_repo", f"repoid:{repo}", "private:true")["repository"][
        "private"] is True
