"""The real ``hg`` clones, pulls and pushes through a real ``rpcserver serve``
(docs/serving.md, Mercurial): each credential kind, each refusal and each push rule once, on
one server for the module (hg commands cost ~0.4 s each, so the matrix is git's to run).

On the SQLite pass the server runs on SQLite, on the PostgreSQL pass on PostgreSQL
(``tests.databases.server_url``).
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.databases import scratch_database, server_url
from tests.hgremotes import HG, hg_env, hg_snapshot
from tests.server_process import ServerProcess

pytestmark = pytest.mark.e2e

PASSWORD = "pw-of-u-0123"
READER_PASSWORD = "pw-of-r-0123"


def rpc(server: ServerProcess, method: str, **args: Any) -> Any:
    answer = server.call(method, **args)
    assert answer["error"] is None, answer
    return answer["result"]


def hg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The hg client, with no configuration but ours (``HGRCPATH`` empty)."""
    return subprocess.run([HG, *args], cwd=cwd, env=hg_env(), capture_output=True, text=True,
                          check=False, timeout=120)


def ok(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stderr
    return done.stdout


def said(done: subprocess.CompletedProcess[str]) -> str:
    """What hg printed: ``remote:`` lines go to stdout, its own abort to stderr."""
    return done.stdout + done.stderr


def token(server: ServerProcess, username: str, key: str, scope: str) -> str:
    response = requests.get(server.url + "/_admin/token", params={"scope": scope},
                            auth=(username, key), timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


@dataclass(frozen=True)
class World:
    server: ServerProcess
    u_key: str
    stranger_key: str

    def url(self, repo: str, username: str | None = None, secret: str | None = None) -> str:
        if username is None:
            return f"{self.server.url}/{repo}"
        return self.server.url.replace("http://", f"http://{username}:{secret}@") + f"/{repo}"

    def admin(self, repo: str) -> str:
        return self.url(repo, "admin", self.server.admin_key)

    def repo_path(self, name: str) -> Path:
        return self.server.instance / "repos" / name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """``h``: private hg, u may write, r may read; ``hpub``: public hg (anonymous clones are
    on); ``g``: a git repository."""
    base = tmp_path_factory.mktemp("hg-serving")
    with scratch_database(base, "hgserve", server_url()) as url:
        server = ServerProcess(instance=base / "instance", database_url=url,
                               extra_env={"RPCSERVER_MAX_FAILED_LOGINS": "1000",
                                          "RPCSERVER_ANONYMOUS_CLONE": "true"}).start()
        try:
            rpc(server, "create_user", username="u", email="u@example.com", password=PASSWORD)
            rpc(server, "create_user", username="r", email="r@example.com",
                password=READER_PASSWORD)
            rpc(server, "create_user", username="stranger", email="s@example.com")
            rpc(server, "create_repo", repo_name="h", repo_type="hg", private=True)
            rpc(server, "grant_user_permission", repoid="h", userid="u",
                perm="repository.write")
            rpc(server, "grant_user_permission", repoid="h", userid="r",
                perm="repository.read")
            rpc(server, "create_repo", repo_name="hpub", repo_type="hg")
            rpc(server, "create_repo", repo_name="g")
            yield World(server, rpc(server, "create_api_key", userid="u")["api_key"],
                        rpc(server, "create_api_key", userid="stranger")["api_key"])
        finally:
            server.stop()


def commit(work: Path, text: str, *extra: str) -> str:
    (work / "f").write_text(text)
    ok(hg("commit", "-A", "-m", text, *extra, cwd=work))
    return ok(hg("log", "-r", ".", "-T", "{node}", cwd=work))


def test_clone_push_pull_and_the_cache(world: World, tmp_path: Path) -> None:
    """A writer clones with its password, pushes, and another clone pulls the push;
    get_repo shows it at once; the push log names the caller; the repository's own hgrc
    hooks never run."""
    marker = tmp_path / "repository-hook-ran"
    (world.repo_path("h") / ".hg" / "hgrc").write_text(
        f"[hooks]\nchangegroup = touch {marker}\npretxnchangegroup = touch {marker}\n"
        f"incoming = touch {marker}\n")
    writer = world.url("h", "u", PASSWORD)
    ok(hg("clone", writer, str(tmp_path / "a")))
    ok(hg("clone", writer, str(tmp_path / "b")))
    node = commit(tmp_path / "a", "one")
    ok(hg("push", writer, cwd=tmp_path / "a"))
    ok(hg("pull", "-u", writer, cwd=tmp_path / "b"))
    assert (tmp_path / "b" / "f").read_text() == "one"
    assert rpc(world.server, "get_repo", repoid="h")["last_changeset"]["raw_id"] == node
    assert not marker.exists()
    log = world.server.read_log()
    assert f"push to h by u: branch/default 000000000000..{node[:12]}" in log
    assert PASSWORD not in log


def test_a_reader_may_clone_but_not_push(world: World, tmp_path: Path) -> None:
    reader = world.url("h", "r", READER_PASSWORD)
    ok(hg("clone", reader, str(tmp_path / "c")))
    commit(tmp_path / "c", "from the reader")
    before = hg_snapshot(world.repo_path("h"))
    done = hg("push", "-f", reader, cwd=tmp_path / "c")
    assert done.returncode != 0
    assert "HTTP Error 403: You may not push to `h`" in done.stderr
    assert hg_snapshot(world.repo_path("h")) == before


def test_who_is_refused_and_how(world: World, tmp_path: Path) -> None:
    """No read: 404, like a repository that does not exist; no or wrong credentials: 401
    (hg's "authorization failed"); anonymous clones of what ``default`` may read."""
    hidden = hg("clone", world.url("h", "stranger", world.stranger_key), str(tmp_path / "x"))
    absent = hg("clone", world.url("nothere", "stranger", world.stranger_key),
                str(tmp_path / "y"))
    assert hidden.returncode != 0 and "HTTP Error 404: Repository not found" in hidden.stderr
    assert absent.stderr.replace("nothere", "h") == hidden.stderr
    wrong = hg("clone", world.url("h", "u", "not-the-password"), str(tmp_path / "z"))
    assert wrong.returncode != 0 and "authorization failed" in wrong.stderr
    anonymous = hg("clone", world.url("h"), str(tmp_path / "w"))
    assert anonymous.returncode != 0 and "authorization" in anonymous.stderr
    ok(hg("clone", world.url("hpub"), str(tmp_path / "pub")))
    commit(tmp_path / "pub", "anonymous")
    pushed = hg("push", world.url("hpub"), cwd=tmp_path / "pub")
    assert pushed.returncode != 0 and "authorization" in pushed.stderr
    response = requests.get(world.url("h") + "?cmd=capabilities", timeout=30)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="rpcserver"'


def test_keys_and_tokens(world: World, tmp_path: Path) -> None:
    """An API key as the password has the user's rights; a token only its scope's
    (``hg identify`` reads the repository without a whole clone)."""
    work = tmp_path / "k"
    ok(hg("clone", world.url("h", "u", world.u_key), str(work)))
    commit(work, "with a key's clone")
    for scope in ("read", "repository:h:pull"):
        limited = world.url("h", "u", token(world.server, "u", world.u_key, scope))
        ok(hg("identify", "-r", "tip", limited))
        done = hg("push", limited, cwd=work)
        assert done.returncode != 0 and "HTTP Error 403" in done.stderr, (scope, done.stderr)
    other = token(world.server, "u", world.u_key, "repository:hpub:pull")
    done = hg("identify", world.url("h", "u", other))
    assert "HTTP Error 404" in done.stderr
    pushing = token(world.server, "u", world.u_key, "repository:h:pull,push")
    ok(hg("push", world.url("h", "u", pushing), cwd=work))


def test_push_rules(world: World, tmp_path: Path) -> None:
    """Named branch ``default`` closed, bookmark ``@`` moved back, and a pushkey outside
    bookmarks and phases: refused for a writer, each with its message; an admin may."""
    rpc(world.server, "create_user", username="w", email="w@example.com", password=PASSWORD)
    rpc(world.server, "create_repo", repo_name="rules", repo_type="hg")
    rpc(world.server, "grant_user_permission", repoid="rules", userid="w",
        perm="repository.write")
    admin, writer = world.admin("rules"), world.url("rules", "w", PASSWORD)
    work = tmp_path / "work"
    ok(hg("init", str(work)))
    first = commit(work, "one")
    ok(hg("bookmark", "-r", first, "@", cwd=work))
    ok(hg("push", "-B", "@", admin, cwd=work))
    second = commit(work, "two")
    ok(hg("bookmark", "-f", "-r", second, "@", cwd=work))
    ok(hg("push", "-B", "@", writer, cwd=work))
    ok(hg("bookmark", "-f", "-r", first, "@", cwd=work))
    back = hg("push", "-B", "@", writer, cwd=work)
    assert back.returncode != 0
    assert ("remote: refusing to move the default bookmark @ (not a descendant: from "
            f"{second[:12]} to {first[:12]}): only an admin") in said(back)
    ok(hg("update", "-r", second, cwd=work))
    commit(work, "closed", "--close-branch")
    before = hg_snapshot(world.repo_path("rules"))
    closing = hg("push", "-r", ".", writer, cwd=work)
    assert closing.returncode != 0
    assert "remote: refusing to close the default branch default: only an admin" in \
        said(closing)
    assert hg_snapshot(world.repo_path("rules")) == before
    odd = hg("debugpushkey", writer, "namespaces", "x", "", "1")
    assert "refusing pushkey namespace namespaces" in said(odd), said(odd)
    ok(hg("push", "-r", ".", admin, cwd=work))
    moved = hg("push", "-B", "@", admin, cwd=work)  # 1: no changesets, the bookmark moved
    assert moved.returncode in (0, 1) and "updating bookmark @" in said(moved), said(moved)
    remote = ok(hg("bookmarks", "-R", str(world.repo_path("rules")), "-T",
                   "{bookmark} {node}\n"))
    assert remote == f"@ {first}\n"
    log = world.server.read_log()
    assert f"push to rules by w: bookmark/@ {first[:12]}..{second[:12]}" in log


def test_only_the_wire_protocol_is_served(world: World) -> None:
    auth = ("admin", world.server.admin_key)
    page = requests.get(world.url("h"), auth=auth, timeout=30)
    assert page.status_code == 404 and "mercurial" not in page.text.lower()  # the app's 404
    for command in ("changelog", "file", "archive", "static", "nonsense"):
        refused = requests.get(world.url("h") + f"?cmd={command}", auth=auth, timeout=30)
        assert refused.status_code == 400, command
    caps = requests.get(world.url("h") + "?cmd=capabilities", auth=auth, timeout=30)
    assert caps.status_code == 200 and "unbundle" in caps.text
    git_repo = requests.get(world.url("g") + "?cmd=capabilities", auth=auth, timeout=30)
    assert git_repo.status_code == 404 and "is a git repository" in git_repo.text
    as_git = requests.get(world.url("h") + "/info/refs?service=git-upload-pack", auth=auth,
                          timeout=30)
    assert as_git.status_code == 404 and "is an hg repository" in as_git.text
