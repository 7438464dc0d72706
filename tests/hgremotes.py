"""Real Mercurial remotes on loopback for the tests: no mocks.

- ``HgUpstream``: a repository with a working copy that grows changesets, branches, tags and
  bookmarks quickly.
- ``HgServe``: ``hg serve`` for one repository on a free port of 127.0.0.1.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.gitremotes import EPOCH, _wait_for_port, free_port, running

HG = str(Path(sys.executable).with_name("hg"))


def hg_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HG")}
    env.update(HGRCPATH=os.devnull, HGPLAIN="1", LC_ALL="C", HGUSER="A U Thor <author@example.com>")
    return env


def hg(*args: str, repo: Path | None = None) -> str:
    argv = [HG, *(("-R", str(repo), "--cwd", str(repo)) if repo else ()), *args]
    return subprocess.run(argv, capture_output=True, check=True, env=hg_env()).stdout.decode()


class HgUpstream:
    """A repository we add changesets to; what the server pulls from."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.made = 0
        hg("init", str(path))

    def commit(self, n: int = 1, *, branch: str | None = None, files: int = 1,
               prefix: str = "change") -> list[str]:
        """Add ``n`` changesets (on named branch ``branch``, made when new); their nodes."""
        if branch is not None:
            hg("update", "--clean", "--quiet", "-r", "tip", repo=self.path)
            hg("branch", "--force", branch, repo=self.path)
        nodes = []
        for _ in range(n):
            self.made += 1
            for f in range(files):
                target = self.path / (f"dir{f % 7}/file{f}.txt" if files > 1 else "file.txt")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(f"{self.made} {f}\n")
            hg("commit", "--addremove", "--quiet", "-m",
               f"{prefix} {self.made}\n\nbody of commit {self.made}",
               "-d", f"{EPOCH + 60 * self.made} 0", repo=self.path)
            nodes.append(self.node("."))
        return nodes

    def tag(self, name: str, rev: str = ".") -> None:
        self.made += 1
        hg("tag", "-r", rev, "-d", f"{EPOCH + 60 * self.made} 0", "--", name, repo=self.path)

    def bookmark(self, name: str, rev: str = ".") -> None:
        hg("bookmark", "--force", "-r", rev, "--", name, repo=self.path)

    def node(self, rev: str) -> str:
        return hg("log", "-r", rev, "-T", "{node}", repo=self.path)


class HgServe:
    """``hg serve`` of one repository on 127.0.0.1."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> HgServe:
        self.proc = subprocess.Popen(
            [HG, "serve", "-R", str(self.path), "-a", "127.0.0.1", "-p", str(self.port),
             "--config", "web.allow-pull=true", "-A", os.devnull, "-E", os.devnull],
            env=hg_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _wait_for_port(self.port, self.proc)
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()


def hg_snapshot(path: Path) -> dict[str, Any]:
    """Every file under the repository with its size: "exactly as it was" means equal
    (hg only appends to revlogs, so a changeset kept would show)."""
    return {str(p.relative_to(path)): p.stat().st_size for p in sorted(path.rglob("*"))
            if p.is_file() and "cache" not in p.relative_to(path).parts
            and not p.name.startswith(("undo", "wcache"))}


@pytest.fixture
def hg_upstream(tmp_path: Path) -> HgUpstream:
    """``up``: three changesets on ``default``, tag ``v1`` on the third, bookmark ``mark``."""
    up = HgUpstream(tmp_path / "remotes" / "hgup")
    up.commit(3)
    up.tag("v1")
    up.bookmark("mark", "1")
    return up


@pytest.fixture
def hg_served(hg_upstream: HgUpstream) -> Iterator[HgServe]:
    with running(HgServe(hg_upstream.path)) as server:
        yield server


def wait_until(check: Any, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)
