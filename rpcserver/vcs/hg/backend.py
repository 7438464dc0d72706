"""Mercurial behind ``vcs.backend.Backend``: repositories with a ``.hg`` and no working files,
run through Mercurial's command line (``vcs.hg.command``)."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from rpcserver.vcs.clone_uri import Source
from rpcserver.vcs.hg import fetch
from rpcserver.vcs.hg.command import Hg, HgMissing, locate
from rpcserver.vcs.hg.repo import Repo, is_repository

if TYPE_CHECKING:
    from rpcserver.vcs.backend import Settings


@dataclass(frozen=True)
class HgPulled:
    hg: Hg
    path: Path
    result: fetch.PullResult

    @property
    def changed(self) -> bool:
        return self.result.changed

    @property
    def changes(self) -> list[tuple[str, str | None, str | None]]:
        return self.result.changes

    def undo(self) -> None:
        fetch.undo(self.hg, self.path, self.result)


@dataclass(frozen=True)
class HgBackend:
    settings: Settings
    repo_type: ClassVar[str] = "hg"

    @cached_property
    def hg(self) -> Hg:
        return Hg.find(self.settings.store.internal / "hgrc", self.settings.timeout,
                       self.settings.stall_timeout, known_hosts=str(self.settings.known_hosts))

    def unavailable(self) -> str | None:
        """Mercurial is a dependency, but a server installed without it still keeps git."""
        try:
            locate()
        except HgMissing as exc:
            return str(exc)
        return None

    def refusal(self, source: Source) -> str | None:
        """hg speaks http(s) and ssh URLs; not git://, nor ssh's ``host:path`` form (hg would
        read that as a local path)."""
        if source.scheme == "git":
            return "scheme `git` is not allowed for hg repositories (use http, https or ssh)"
        if source.scheme == "ssh" and not source.url.startswith("ssh://"):
            return "hg takes ssh URLs as `ssh://host/path`, not `host:path`"
        return None

    def create_empty(self, path: Path) -> None:
        fetch.init(self.hg, path)

    def clone(self, path: Path, source: Source) -> None:
        fetch.clone_new(self.hg, self.settings.store, path, source)

    def fork(self, source_path: Path, path: Path) -> None:
        fetch.fork(self.hg, source_path, path)

    def pull(self, path: Path, source: Source) -> HgPulled:
        return HgPulled(self.hg, path, fetch.pull(self.hg, self.settings.store, path, source))

    def open(self, path: Path) -> Repo:
        return Repo(self.hg, path)

    def is_repository(self, path: Path) -> bool:
        return is_repository(path)

    def version_info(self) -> dict[str, str]:
        # Kallithea's get_server_info has no hg key: Mercurial's version is in ``modules``.
        return {}
