"""The pure parts of hg serving: which wire commands read and which push, the CGI
environment hgweb gets, the routes, and the push rules' decisions."""

from __future__ import annotations

import pytest

from rpcserver.vcs.hg.hgweb import (
    PUSH_COMMANDS,
    READ_COMMANDS,
    HgCgiRequest,
    UnknownCommand,
    classify,
    config_for,
)
from rpcserver.vcs.hg.push_hook import ZERO, refusal_of_heads, refusal_of_pushkey, updates
from rpcserver.web.hg_http import hg_route


@pytest.mark.parametrize(("query", "headers", "kind"), [
    ("cmd=capabilities", [], "pull"),
    ("cmd=getbundle", [("X-HgArg-1", "common=0000&heads=ff")], "pull"),
    ("cmd=unbundle", [("X-HgArg-1", "heads=686173686564")], "push"),
    ("cmd=pushkey", [("X-HgArg-1", "namespace=bookmarks&key=@&old=&new=ab")], "push"),
    ("cmd=batch", [("X-HgArg-1", "cmds=heads+%3Bknown+nodes%3D")], "pull"),
    # the argument in pieces, sent out of order: read as hgweb joins them
    ("cmd=batch", [("X-HgArg-2", "hkey+namespace%3Dx"), ("X-HgArg-1", "cmds=heads+%3Bpus")],
     "push"),
    # hgweb stops at the first missing piece, and so does the classification
    ("cmd=batch", [("X-HgArg-1", "cmds=heads+"), ("X-HgArg-3", "%3Bpushkey+x%3Dy")], "pull"),
    ("cmd=batch&cmds=heads+%3Bpushkey+namespace%3Dx", [], "push"),
    ("cmd=batch&cmds=heads+", [("x-hgarg-1", "cmds=unbundle+heads%3D")], "push"),
])
def test_commands_are_told_apart(query: str, headers: list[tuple[str, str]],
                                 kind: str) -> None:
    assert classify(query, headers) == kind


@pytest.mark.parametrize("query", [
    "", "cmd=", "cmd=changelog", "cmd=file", "cmd=archive", "cmd=static",
    "cmd=capabilities&cmd=unbundle", "cmd=batch&cmds=heads+%3Bfile+x%3Dy",
    "cmd=batch&cmds=batch+cmds%3Dunbundle",
])
def test_anything_else_is_unknown(query: str) -> None:
    with pytest.raises(UnknownCommand):
        classify(query, [])


def test_the_command_lists_are_mercurials() -> None:
    """Every command Mercurial's wire protocol has is listed once, pushes as pushes."""
    wireprotov1server = pytest.importorskip("mercurial.wireprotov1server")
    known = {name.decode() for name in wireprotov1server.commands}
    assert known == READ_COMMANDS | PUSH_COMMANDS
    assert {name for name in known
            if wireprotov1server.commands[name.encode()].permission == b"push"} == PUSH_COMMANDS


def test_cgi_environment_passes_only_what_hgweb_reads() -> None:
    env = HgCgiRequest(method="POST", script_name="/proj/h", query="cmd=unbundle",
                       headers=(("Authorization", "Basic eDp5"), ("Cookie", "s=1"),
                                ("X-HgArg-1", "heads=x"), ("X-HgProto-1", "0.1 comp=zlib"),
                                ("X-HgArgs-Post", "9"), ("Accept", "application/mercurial-0.1"),
                                ("Expect", "100-continue"), ("X-HgArg-2", "bad\0value")),
                       content_type="application/mercurial-0.1", content_length=7,
                       remote_user="alice").environment()
    assert env["SCRIPT_NAME"] == "/proj/h" and env["PATH_INFO"] == ""
    assert env["QUERY_STRING"] == "cmd=unbundle" and env["CONTENT_LENGTH"] == "7"
    assert env["REMOTE_USER"] == "alice"
    http = {k for k in env if k.startswith("HTTP_")}
    assert http == {"HTTP_X_HGARG_1", "HTTP_X_HGPROTO_1", "HTTP_ACCEPT"}
    anonymous = HgCgiRequest(method="GET", script_name="/h", query="cmd=heads").environment()
    assert "REMOTE_USER" not in anonymous


def test_hgweb_may_push_only_when_told() -> None:
    assert ("web.allow-push", "*") in config_for(push=True)
    assert ("web.allow-push", "") in config_for(push=False)
    assert ("web.push_ssl", "false") in config_for(push=False)


def test_routes() -> None:
    assert hg_route("/proj/h", "cmd=capabilities") == "proj/h"
    assert hg_route("/proj/h/", "x=1&cmd=heads") == "proj/h"
    for path, query in (("/_admin/api", "cmd=heads"), ("/_admin", "cmd=x"), ("/h", ""),
                        ("/h", "xcmd=heads"), ("/", "cmd=heads")):
        assert hg_route(path, query) is None, (path, query)


def is_ancestor(old: str, new: str) -> bool:
    return old == "a" * 40 and new == "b" * 40


A, B = "a" * 40, "b" * 40


@pytest.mark.parametrize(("args", "admin", "refusal"), [
    (("bookmarks", "@", A, B), False, None),  # forward
    (("bookmarks", "@", B, A), False, "refusing to move the default bookmark @"),
    (("bookmarks", "@", B, A), True, None),
    (("bookmarks", "@", A, ""), False, "refusing to delete the default bookmark @"),
    (("bookmarks", "@", A, ""), True, None),
    (("bookmarks", "@", "", A), False, None),  # created
    (("bookmarks", "topic", B, ""), False, None),
    (("phases", A, "1", "0"), False, None),
    (("obsolete", "dump0", "", "x"), True, "refusing pushkey namespace obsolete"),
])
def test_pushkey_rules(args: tuple[str, str, str, str], admin: bool,
                       refusal: str | None) -> None:
    found = refusal_of_pushkey(*args, may_rewrite=admin, is_ancestor=is_ancestor)
    assert (found is None) if refusal is None else (found or "").startswith(refusal)


def test_closing_the_default_branch_is_for_admins() -> None:
    open_default = {"branch/default": A}
    assert refusal_of_heads(open_default, {}, False)
    assert refusal_of_heads(open_default, {}, True) is None
    assert refusal_of_heads(open_default, {"branch/default": B}, False) is None
    assert refusal_of_heads({"branch/other": A}, {}, False) is None


def test_updates_name_each_changed_ref() -> None:
    assert updates({"branch/default": A, "tag/v1": A},
                   {"branch/default": B, "bookmark/@": B, "tag/v1": A}) == [
        {"ref": "bookmark/@", "old": ZERO, "new": B},
        {"ref": "branch/default", "old": A, "new": B},
    ]
