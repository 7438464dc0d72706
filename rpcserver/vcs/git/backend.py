"""git behind ``vcs.backend.Backend``: bare repositories, run through the git command line.

Made for every use (cheap: git is looked for on PATH once per process, and only when a
method needs it, so get_server_info still answers on a server whose git went missing).
"""

from __future__ import annotations

import functools
import shutil
import subprocess
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rpcserver.vcs.clone_uri import Source
from rpcserver.vcs.git import fetch
from rpcserver.vcs.git.command import Git
from rpcserver.vcs.git.repo import Repo, is_bare_repository

if TYPE_CHECKING:
    from rpcserver.vcs.backend import Settings


@dataclass(frozen=True)
class GitPulled:
    """A pull's changes (``fetch.PullResult``) with the repository they were made in."""

    git: Git
    path: Path
    result: fetch.PullResult

    @property
    def changed(self) -> bool:
        return self.result.changed

    @property
    def changes(self) -> list[tuple[str, str | None, str | None]]:
        return self.result.changes

    def undo(self) -> None:
        fetch.undo(self.git, self.path, self.result)


@dataclass(frozen=True)
class GitBackend:
    settings: Settings
    repo_type: ClassVar[str] = "git"

    @cached_property
    def git(self) -> Git:
        """The git on PATH with the server's timeouts and ssh host keys."""
        return Git.find(self.settings.timeout, self.settings.stall_timeout,
                        known_hosts=str(self.settings.known_hosts))

    def unavailable(self) -> str | None:
        return None  # the server does not start without git

    def refusal(self, source: Source) -> str | None:
        return None

    def create_empty(self, path: Path) -> None:
        fetch.init_bare(self.git, path)

    def clone(self, path: Path, source: Source) -> None:
        fetch.clone_new(self.git, path, source)

    def fork(self, source_path: Path, path: Path) -> None:
        fetch.fork(self.git, source_path, path)

    def pull(self, path: Path, source: Source) -> GitPulled:
        return GitPulled(self.git, path,
                         fetch.pull(self.git, self.settings.store, path, source))

    def open(self, path: Path) -> Repo:
        return Repo(self.git, path)

    def is_repository(self, path: Path) -> bool:
        return is_bare_repository(path)

    def version_info(self) -> dict[str, str]:
        """As Kallithea: ``git_path`` is the command the server runs (found on ``PATH``)."""
        _path, version = _git_version()
        return {"git_version": version, "git_path": "git"}


@functools.cache
def _git_version() -> tuple[str, str]:
    """Where git is and its version as git prints it; asked once per process (it cannot
    change under us). Empty strings when it cannot be run: this only reports."""
    path = shutil.which("git")
    if path is None:
        return "", ""
    try:
        out = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=10,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return path, ""
    return path, out.strip().removeprefix("git version ")
