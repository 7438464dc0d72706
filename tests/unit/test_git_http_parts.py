"""The pure parts of git serving: CGI headers, the CGI environment, git configuration in the
environment, the smart-HTTP routes, the scope mapping, the password cache."""

from __future__ import annotations

import pytest

from rpcserver.domain.scopes import parse
from rpcserver.vcs.git.http_backend import (
    CgiError,
    CgiRequest,
    merged_config_env,
    parse_cgi_headers,
    split_headers,
)
from rpcserver.web.git_http import git_route


def test_cgi_headers() -> None:
    assert parse_cgi_headers(b"Content-Type: a/b\r\nExpires: x") == \
        ("200 OK", [("Content-Type", "a/b"), ("Expires", "x")])
    assert parse_cgi_headers(b"Status: 403 Forbidden\nContent-Type: text/plain\n") == \
        ("403 Forbidden", [("Content-Type", "text/plain")])
    assert parse_cgi_headers(b"Status: 404")[0] == "404 Status"
    for bad in (b"no colon here", b"Status: abc", b"Bad Name: x"):
        with pytest.raises(CgiError):
            parse_cgi_headers(bad)


def test_split_headers() -> None:
    assert split_headers(b"A: b\r\n\r\nbody\r\n\r\nmore") == (b"A: b", b"body\r\n\r\nmore")
    assert split_headers(b"A: b\n\nbody") == (b"A: b", b"body")
    assert split_headers(b"A: b\r\nC: d\r\n") is None


def test_cgi_environment() -> None:
    env = CgiRequest(method="POST", path_info="/p/git-receive-pack", content_length=5,
                     content_type="application/x-git-receive-pack-request",
                     content_encoding="gzip", git_protocol="version=2",
                     remote_user="alice").environment("/root")
    assert env["GIT_PROJECT_ROOT"] == "/root"
    assert env["PATH_INFO"] == "/p/git-receive-pack"
    assert env["CONTENT_LENGTH"] == "5"
    assert env["HTTP_CONTENT_ENCODING"] == "gzip"
    assert env["HTTP_GIT_PROTOCOL"] == "version=2"
    assert env["REMOTE_USER"] == "alice"
    anonymous = CgiRequest(method="GET", path_info="/p/info/refs",
                           git_protocol="version=2\nEVIL=1").environment("/root")
    assert "REMOTE_USER" not in anonymous and "HTTP_GIT_PROTOCOL" not in anonymous


def test_extra_git_configuration_comes_after_ours() -> None:
    env = merged_config_env([("core.hooksPath", "/dev/null")],
                            {"X": "1", "GIT_CONFIG_COUNT": "1",
                             "GIT_CONFIG_KEY_0": "core.hooksPath",
                             "GIT_CONFIG_VALUE_0": "/hooks"})
    assert env == {"X": "1", "GIT_CONFIG_COUNT": "2",
                   "GIT_CONFIG_KEY_0": "core.hooksPath", "GIT_CONFIG_VALUE_0": "/dev/null",
                   "GIT_CONFIG_KEY_1": "core.hooksPath", "GIT_CONFIG_VALUE_1": "/hooks"}


def test_routes() -> None:
    assert git_route("/proj/web/info/refs") == ("proj/web", "info/refs")
    assert git_route("/r/git-upload-pack") == ("r", "git-upload-pack")
    assert git_route("/r/git-receive-pack") == ("r", "git-receive-pack")
    for path in ("/_admin/api", "/_admin/x/info/refs", "/info/refs", "/r/HEAD",
                 "/r/objects/info/packs", "/", ""):
        assert git_route(path) is None, path


@pytest.mark.parametrize(("scopes", "pull", "push"), [
    ("all", True, True), ("admin", True, True), ("write", True, True), ("read", True, False),
    ("none", False, False),
    ("repository:proj/web:pull", True, False), ("repository:proj/web:pull,push", True, True),
    ("repository:proj/*:pull", True, False), ("repository:other:pull,push", False, False),
    ("repo_group:proj:pull,push", True, True), ("repo_group:projx:pull", False, False),
    ("read repository:proj/web:pull,push", True, True),
])
def test_scope_mapping(scopes: str, pull: bool, push: bool) -> None:
    parsed = parse(scopes)
    assert parsed.reaches_repository("proj/web", push=False) is pull
    assert parsed.reaches_repository("proj/web", push=True) is push
