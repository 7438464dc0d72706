"""The real ``git`` clones, fetches and pushes through a real ``rpcserver serve``
(docs/serving.md): every caller x {clone, push} x every kind of repository access, with each
kind of credential (password in the URL and from a credential helper, API key, exchanged
token); nothing is allowed that the permission model does not allow. Then a ~100 MB push and
its clone, with the workers' memory measured while they run.

On the SQLite pass the server runs on SQLite, on the PostgreSQL pass on PostgreSQL
(``tests.databases.server_url``), as tests/e2e/test_auth_matrix.py does.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.databases import scratch_database, server_url
from tests.server_process import ServerProcess

pytestmark = pytest.mark.e2e

PASSWORD = "pw-of-u-0123"
OLGA_PASSWORD = "pw-of-olga-0123"
#: repository -> (private, u's grant, granted through the user group)
REPOS = {
    "pub": (False, None, None),
    "priv": (True, None, None),
    "gread": (True, "repository.read", None),
    "gwrite": (True, "repository.write", None),
    "ggroup": (True, None, "repository.write"),
}
READ, WRITE, ADMIN = 1, 2, 3


@dataclass(frozen=True)
class Caller:
    name: str
    username: str | None
    secret: str | None
    #: None: the user's own rights; else (may pull, may push) by scope.
    scope: tuple[bool, bool] | None = None
    helper: bool = False


def rpc(server: ServerProcess, method: str, **args: Any) -> Any:
    answer = server.call(method, **args)
    assert answer["error"] is None, answer
    return answer["result"]


def git_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
            "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.com",
            "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.com"}


def git(home: Path, *args: str, cwd: Path | None = None,
        check: bool = False) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, env=git_env(home), capture_output=True,
                          text=True, check=check, timeout=120)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    base = tmp_path_factory.mktemp("git-serving")
    with scratch_database(base, "gitserve", server_url()) as url:
        process = ServerProcess(instance=base / "instance", database_url=url,
                                extra_env={"RPCSERVER_MAX_FAILED_LOGINS": "1000"}).start()
        try:
            yield process
        finally:
            process.stop()


def token(server: ServerProcess, username: str, key: str, scope: str) -> str:
    response = requests.get(server.url + "/_admin/token", params={"scope": scope},
                            auth=(username, key), timeout=30)
    assert response.status_code == 200, response.text
    return str(response.json()["token"])


def populate(server: ServerProcess) -> list[Caller]:
    rpc(server, "create_user", username="u", email="u@example.com", password=PASSWORD)
    rpc(server, "create_user", username="olga", email="olga@example.com",
        password=OLGA_PASSWORD)
    rpc(server, "create_user", username="stranger", email="s@example.com")
    rpc(server, "create_user_group", group_name="team")
    rpc(server, "add_user_to_user_group", usergroupid="team", userid="u")
    for name, (private, grant, group_grant) in REPOS.items():
        rpc(server, "create_repo", repo_name=name, owner="olga", private=private)
        if grant:
            rpc(server, "grant_user_permission", repoid=name, userid="u", perm=grant)
        if group_grant:
            rpc(server, "grant_user_group_permission", repoid=name, usergroupid="team",
                perm=group_grant)
    u_key = rpc(server, "create_api_key", userid="u")["api_key"]
    stranger_key = rpc(server, "create_api_key", userid="stranger")["api_key"]
    olga_key = rpc(server, "create_api_key", userid="olga")["api_key"]
    return [
        Caller("anonymous", None, None),
        Caller("stranger key", "stranger", stranger_key),
        Caller("u password", "u", PASSWORD),
        Caller("u password via helper", "u", PASSWORD, helper=True),
        Caller("u key", "u", u_key),
        Caller("u key via helper", "u", u_key, helper=True),
        Caller("u token repository:*:pull", "u",
               token(server, "u", u_key, "repository:*:pull"), scope=(True, False)),
        Caller("u token repository:*:pull,push", "u",
               token(server, "u", u_key, "repository:*:pull,push"), scope=(True, True)),
        Caller("u token read", "u", token(server, "u", u_key, "read"), scope=(True, False)),
        Caller("u token write", "u", token(server, "u", u_key, "write"), scope=(True, True)),
        Caller("owner password via helper", "olga", OLGA_PASSWORD, helper=True),
        Caller("owner token repository:pub:pull", "olga",
               token(server, "olga", olga_key, "repository:pub:pull"), scope=(True, False)),
        Caller("admin key", "admin", server.admin_key),
    ]


def level(caller: Caller, repo: str) -> int:
    """What the permission model gives (API.md §3), written out independently."""
    private, grant, group_grant = REPOS[repo]
    user = caller.username
    if user in ("admin", "olga"):
        return ADMIN
    if user is None:
        return 0  # anonymous_clone is off
    levels = [0 if private else READ]  # default's read on a public repository
    if user == "u":
        levels += [{"repository.read": READ, "repository.write": WRITE}.get(g or "", 0)
                   for g in (grant, group_grant)]
    return max(levels)


def expected(caller: Caller, repo: str, action: str) -> bool:
    have = level(caller, repo)
    if caller.scope is not None:
        pull, push = caller.scope
        if caller.name == "owner token repository:pub:pull" and repo != "pub":
            pull = False
        if not pull:
            return False
        if action == "push" and not push:
            return False
    return have >= (WRITE if action == "push" else READ)


def url_of(server: ServerProcess, caller: Caller, repo: str) -> str:
    if caller.username is None or caller.helper:
        return f"{server.url}/{repo}"
    return server.url.replace("http://", f"http://{caller.username}:{caller.secret}@") + \
        f"/{repo}"


def helper_args(caller: Caller) -> list[str]:
    if not caller.helper:
        return []
    script = f"!f() {{ echo username={caller.username}; echo password={caller.secret}; }}; f"
    return ["-c", f"credential.helper={script}"]


def test_every_caller_on_every_repository(server: ServerProcess, tmp_path: Path) -> None:
    callers = populate(server)
    home = tmp_path / "home"
    home.mkdir()
    source = tmp_path / "source"
    git(home, "init", "-q", "-b", "master", str(source), check=True)
    (source / "f").write_text("one\n")
    git(home, "add", "f", cwd=source, check=True)
    git(home, "commit", "-qm", "one", cwd=source, check=True)
    repos_root = server.instance / "repos"
    cases = list(itertools.product(callers, REPOS, ("clone", "push")))
    print(f"git serving matrix: {len(callers)} callers x {len(REPOS)} repositories x "
          f"2 actions = {len(cases)} cases")

    def run(index: int, case: tuple[Caller, str, str]) -> str | None:
        caller, repo, action = case
        url = url_of(server, caller, repo)
        if action == "clone":
            done = git(home, *helper_args(caller), "clone", "-q", url,
                       str(tmp_path / f"clone-{index}"))
            allowed = done.returncode == 0
        else:
            branch = f"case-{index}"
            done = git(home, *helper_args(caller), "push", "-q", url, f"HEAD:{branch}",
                       cwd=source)
            landed = git(home, "--git-dir", str(repos_root / repo), "rev-parse", "-q",
                         "--verify", f"refs/heads/{branch}").returncode == 0
            assert landed == (done.returncode == 0), (caller.name, repo, done.stderr)
            allowed = landed
        want = expected(caller, repo, action)
        if allowed != want:
            return f"{caller.name} {action} {repo}: {'allowed' if allowed else 'refused'}, " \
                   f"expected {'allowed' if want else 'refused'}: {done.stderr.strip()[-300:]}"
        return None

    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(run, range(len(cases)), cases) if f]
    assert not failures, "\n".join(failures)
    allowed = sum(expected(*case) for case in cases)
    print(f"{allowed} allowed, {len(cases) - allowed} refused")
    # A fetch into an existing clone, and the cache the push refreshed.
    pushed = next(i for i, (c, r, a) in enumerate(cases)
                  if c.name == "admin key" and r == "pub" and a == "push")
    clone = tmp_path / "fetcher"
    admin = callers[-1]
    git(home, "clone", "-q", url_of(server, admin, "pub"), str(clone), check=True)
    assert git(home, "fetch", "-q", "origin", cwd=clone).returncode == 0
    assert f"case-{pushed}" in git(home, "branch", "-r", cwd=clone).stdout
    head = git(home, "rev-parse", "HEAD", cwd=source).stdout.strip()
    assert rpc(server, "get_repo", repoid="pub")["last_changeset"]["raw_id"] == head
    # No password, key or token reached the server's log.
    log = server.read_log()
    secrets = [c.secret for c in callers if c.secret] + [server.admin_key]
    assert not [s[:6] for s in secrets if s in log]


def worker_pids(server: ServerProcess) -> list[int]:
    assert server.process is not None
    master = server.process.pid
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            if int(stat.rpartition(")")[2].split()[1]) == master:
                pids.append(int(entry))
    return pids


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


class RssSampler:
    """The largest resident size each worker reached while sampling."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids
        self.peak = {pid: rss_mb(pid) for pid in pids}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            for pid in self.pids:
                with contextlib.suppress(OSError):
                    self.peak[pid] = max(self.peak[pid], rss_mb(pid))
            time.sleep(0.02)

    def __enter__(self) -> RssSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


BLOBS, BLOB_MB = 2, 50


@pytest.mark.slow
def test_a_100_mb_push_and_clone_stay_out_of_memory(server: ServerProcess,
                                                    tmp_path: Path) -> None:
    rpc(server, "create_repo", repo_name="big")
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    git(home, "init", "-q", "-b", "master", str(work), check=True)
    for i in range(BLOBS):  # incompressible: the pack is as large as the data
        (work / f"blob-{i}").write_bytes(os.urandom(BLOB_MB * 1024 * 1024))
    git(home, "-c", "core.compression=0", "-c", "core.bigFileThreshold=1m", "add", ".",
        cwd=work, check=True)
    git(home, "commit", "-qm", "big", cwd=work, check=True)
    url = server.url.replace("http://", f"http://admin:{server.admin_key}@") + "/big"
    pids = worker_pids(server)
    assert pids
    before = {pid: rss_mb(pid) for pid in pids}
    started = time.monotonic()
    with RssSampler(pids) as pushing:
        done = git(home, "-c", "pack.compression=0", "-c", "core.bigFileThreshold=1m", "push",
                   "-q", url, "HEAD:master",
                   cwd=work)
    push_s = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    started = time.monotonic()
    with RssSampler(pids) as cloning:
        done = git(home, "clone", "-q", "--bare", url, str(tmp_path / "clone.git"))
    clone_s = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    head = git(home, "rev-parse", "HEAD", cwd=work).stdout.strip()
    assert git(home, "--git-dir", str(tmp_path / "clone.git"), "rev-parse",
               "master").stdout.strip() == head
    grew_push = max(pushing.peak[p] - before[p] for p in pids)
    grew_clone = max(cloning.peak[p] - before[p] for p in pids)
    print(f"{BLOBS * BLOB_MB} MB: push {push_s:.1f} s, clone {clone_s:.1f} s; worker RSS grew "
          f"at most {grew_push:.1f} MB (push), {grew_clone:.1f} MB (clone); before: "
          f"{', '.join(f'{v:.0f}' for v in before.values())} MB")
    assert grew_push < 40, pushing.peak
    assert grew_clone < 40, cloning.peak


def test_push_rules_and_the_push_log_over_http(server: ServerProcess, tmp_path: Path) -> None:
    """The server's own hooks run for a real push through the server: the default branch is
    rewritten or deleted only by an admin of the repository, refs outside heads and tags are
    refused, the repository's own hooks never run, get_repo shows each push at once, and
    the push log names the caller and the refs."""
    rpc(server, "create_user", username="rw", email="rw@example.com", password=PASSWORD)
    rpc(server, "create_repo", repo_name="rules")
    rpc(server, "grant_user_permission", repoid="rules", userid="rw", perm="repository.write")
    home = tmp_path / "home"
    home.mkdir()
    work = tmp_path / "work"
    git(home, "init", "-q", "-b", "master", str(work), check=True)
    bare = server.instance / "repos" / "rules"
    marker = tmp_path / "repository-hook-ran"
    hook = bare / "hooks" / "pre-receive"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\ntouch {marker}\n")
    hook.chmod(0o755)
    admin = server.url.replace("http://", f"http://admin:{server.admin_key}@") + "/rules"
    writer = server.url.replace("http://", f"http://rw:{PASSWORD}@") + "/rules"

    def commit(text: str) -> str:
        (work / "f").write_text(text)
        git(home, "add", "f", cwd=work, check=True)
        git(home, "commit", "-qm", text, cwd=work, check=True)
        return git(home, "rev-parse", "HEAD", cwd=work).stdout.strip()

    def push(url: str, *refspecs: str) -> subprocess.CompletedProcess[str]:
        return git(home, "push", "-q", url, *refspecs, cwd=work)

    def ref(name: str) -> str:
        return git(home, "--git-dir", str(bare), "rev-parse", "-q", "--verify",
                   name).stdout.strip()

    first = commit("one")
    assert push(admin, "HEAD:master").returncode == 0
    second = commit("two")
    assert push(writer, "HEAD:master").returncode == 0
    assert rpc(server, "get_repo", repoid="rules")["last_changeset"]["raw_id"] == second
    rewrite = push(writer, f"+{first}:master")
    assert rewrite.returncode != 0 and "refusing to rewrite the default branch" in \
        rewrite.stderr
    delete = push(writer, ":master")
    assert delete.returncode != 0 and "refusing to delete the default branch" in delete.stderr
    odd = push(writer, "HEAD:refs/notes/odd")
    assert odd.returncode != 0 and "only branches (refs/heads/) and tags" in odd.stderr
    assert (ref("refs/heads/master"), ref("refs/notes/odd")) == (second, "")
    assert push(writer, "HEAD:topic").returncode == 0
    assert push(writer, f"+{first}:topic").returncode == 0
    assert push(writer, ":topic").returncode == 0 and ref("refs/heads/topic") == ""
    assert push(admin, f"+{first}:master").returncode == 0
    assert ref("refs/heads/master") == first
    assert rpc(server, "get_repo", repoid="rules")["last_changeset"]["raw_id"] == first
    assert not marker.exists()
    log = server.read_log()
    assert f"push to rules by rw: refs/heads/master {first[:12]}..{second[:12]}" in log
    assert f"push to rules by admin: refs/heads/master {second[:12]}..{first[:12]}" in log
    assert PASSWORD not in log and server.admin_key not in log
