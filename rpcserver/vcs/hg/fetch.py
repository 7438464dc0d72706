"""Writing hg repositories: create empty, clone from a remote, fork, and pull all or nothing.

A pull runs in the repository itself, inside Mercurial's own transaction: when hg fails it
rolls the transaction back; when it is killed (the timeout) it leaves a journal, which
``recover`` plays back before anything else happens, so the repository is as it was before.
Every write first recovers a journal an earlier, abandoned hg may have left (a worker killed
with ``kill -9``). A pull that worked is undone, if the database half fails, with
``hg rollback`` while the repository's lock is still held (no other transaction came between).

The remote's URL never reaches argv (other local users can read it, password and all): it is
the path ``rpcserver-source`` of a private hgrc in the scratch space, read after the server's.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from rpcserver.vcs.clone_uri import Source
from rpcserver.vcs.hg.command import Hg, HgError, HgTimeout
from rpcserver.vcs.hg.repo import Repo
from rpcserver.vcs.store import Store

SOURCE = "rpcserver-source"


@dataclass
class PullResult:
    changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    #: Whether the store changed at all (changesets, bookmarks or phases).
    wrote: bool = False

    @property
    def changed(self) -> bool:
        return self.wrote


def init(hg: Hg, path: Path) -> None:
    hg.run(["init", "--", str(path)])


@contextlib.contextmanager
def _with_source(hg: Hg, store: Store, source: Source) -> Iterator[Hg]:
    """``hg`` reading a private hgrc that names ``source`` as ``rpcserver-source``, and
    with ssh told which host key to expect for a pinned address."""
    with store.scratch("hgrc") as scratch:
        hgrc = scratch / "hgrc"
        fd = os.open(hgrc, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        # The clone_uri check refused control characters: the URL is one line.
        lines = ["[paths]", f"{SOURCE} = {source.url}"]
        if source.ssh_host_key_alias is not None:
            ssh = _ssh_line(hg)
            lines += ["[ui]", f"ssh = {ssh} -o HostKeyAlias={source.ssh_host_key_alias}"]
        with os.fdopen(fd, "w") as out:
            out.write("\n".join(lines) + "\n")
        yield Hg(hg.version, hg.hgrc, hg.timeout, hg.stall_timeout, extra_hgrc=hgrc)


def _ssh_line(hg: Hg) -> str:
    for line in hg.hgrc.read_text().splitlines():
        if line.startswith("ssh = "):
            return line[len("ssh = "):]
    return "ssh"


def _pins(source: Source) -> tuple[str, ...]:
    """The host pins of an http(s) source, with a URL naming an address pinned to itself:
    the launcher then refuses every other host (a redirect elsewhere goes nowhere)."""
    if source.scheme not in ("http", "https") or source.pins:
        return source.pins
    parts = urlsplit(source.url)
    host = parts.hostname or ""
    port = parts.port or (443 if source.scheme == "https" else 80)
    address = f"[{host}]" if ":" in host else host
    return (f"{address}:{port}:{address}",)


def clone_new(hg: Hg, store: Store, path: Path, source: Source) -> None:
    """Make ``path`` (a new, empty directory) a copy of ``source``, with no working files
    and no ``.hg/hgrc`` (hg would write the URL, password and all, into it)."""
    with _with_source(hg, store, source) as remote:
        remote.run(["clone", "--noupdate", "--quiet", "--", SOURCE, str(path)], network=True,
                   pins=_pins(source), redact=source.secrets)
    (path / ".hg" / "hgrc").unlink(missing_ok=True)


def fork(hg: Hg, source_path: Path, path: Path) -> None:
    """A real clone of a local repository (revlogs hard-linked: hg only appends)."""
    recover(hg, source_path, check_only=True)
    hg.run(["clone", "--noupdate", "--quiet", "--", str(source_path), str(path)])
    (path / ".hg" / "hgrc").unlink(missing_ok=True)


def recover(hg: Hg, path: Path, *, check_only: bool = False) -> None:
    """Play back the journal an abandoned transaction left (``hg recover``); with
    ``check_only``, refuse instead (the caller may not write to ``path``)."""
    if not (path / ".hg" / "store" / "journal").exists():
        return
    if check_only:
        raise HgError("clone", None, f"{path} has an abandoned transaction; pull it first")
    hg.run(["recover", "--no-verify"], repo=path)


def _state(path: Path) -> tuple[object, ...]:
    """What a pull may change, read without running hg: the changelog's size, bookmarks,
    phases."""
    store = path / ".hg" / "store"
    found: list[object] = []
    for file in (store / "00changelog.i", store / "00changelog.d", path / ".hg" / "bookmarks",
                 store / "phaseroots"):
        try:
            found.append(file.read_bytes() if file.stat().st_size < 1 << 20
                         else file.stat().st_size)
        except OSError:
            found.append(None)
    return tuple(found)


def pull(hg: Hg, store: Store, path: Path, source: Source) -> PullResult:
    """Pull every changeset, bookmark and tag of ``source`` into ``path``; all or nothing."""
    recover(hg, path)
    repo = Repo(hg, path)
    before_refs = repo.refs().raw
    before = _state(path)
    with _with_source(hg, store, source) as remote:
        try:
            remote.run(["pull", "--quiet", "--", SOURCE], repo=path, network=True,
                       pins=_pins(source), redact=source.secrets)
        except HgTimeout:
            recover(hg, path)
            raise
        except HgError as exc:
            if exc.returncode == 1 and "no changes found" in exc.detail:
                return PullResult()
            recover(hg, path)
            raise
    result = PullResult(wrote=_state(path) != before)
    if result.wrote:
        after = repo.refs().raw
        result.changes = [(ref, before_refs.get(ref), after.get(ref))
                          for ref in sorted(set(before_refs) | set(after))
                          if before_refs.get(ref) != after.get(ref)]
    return result


def undo(hg: Hg, path: Path, result: PullResult) -> None:
    """Take the pull's transaction back out (the database half failed)."""
    if result.wrote:
        hg.run(["--config", "ui.rollback=true", "rollback", "--quiet"], repo=path)
