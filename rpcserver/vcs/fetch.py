"""Writing repositories: create empty, create from a remote, fork, and pull atomically.

A pull must leave the repository exactly as it was when it fails, times out or the remote dies
mid-way. So it never fetches into the repository itself: it fetches into a scratch repository
(in ``.rpcserver/tmp``) that borrows the real one's objects through ``objects/info/alternates``
(so only new objects cross the network, as with a plain ``git fetch``), and only on success
moves the new object files in and updates every branch and tag with one
``git update-ref --stdin`` transaction (all or nothing), checking each ref's old value. The
result remembers what it changed, so ``undo`` can put refs and objects back if the database
transaction that follows fails.

Branches and tags mirror the remote's: new ones are created, moved ones updated (also
non-fast-forward), ones the remote no longer has are deleted.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..clone_uri import Source
from .git import Git
from .repo import Repo
from .store import Store, remove_tree

REMOTE = "rpcserver-source"
REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


@dataclass
class PullResult:
    #: (ref, old id or None, new id or None) for every ref that changed
    changes: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    #: object files moved into the repository (removed again by ``undo``)
    added_objects: list[Path] = field(default_factory=list)
    head_before: str | None = None

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def init_bare(git: Git, path: Path) -> None:
    git.run(["init", "--bare", "--quiet", "--", str(path)])


FETCH = ("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", "--no-auto-gc",
         "--no-show-forced-updates", "--no-recurse-submodules")


def _remote_config(source: Source) -> list[tuple[str, str]]:
    config = [(f"remote.{REMOTE}.url", source.url)]
    config += [("http.curloptResolve", pin) for pin in source.pins]
    return config


def fetch(git: Git, git_dir: Path, source: Source) -> None:
    """Fetch every branch and tag of ``source`` into ``git_dir`` (same names)."""
    git.run([*FETCH, "--", REMOTE, *REFSPECS], git_dir=str(git_dir),
            protocols=source.protocols, config=_remote_config(source),
            redact=source.secrets)


def remote_head(git: Git, source: Source) -> str | None:
    """The branch the remote's HEAD names (``refs/heads/...``), or None if it has none."""
    out = git.run(["ls-remote", "--symref", "--", REMOTE, "HEAD"], protocols=source.protocols,
                  config=_remote_config(source), redact=source.secrets)
    for line in out.decode("utf-8", "replace").splitlines():
        if line.startswith("ref: ") and line.endswith("\tHEAD"):
            target = line[len("ref: "):-len("\tHEAD")]
            if target.startswith("refs/heads/"):
                return target
    return None


def clone_new(git: Git, path: Path, source: Source) -> None:
    """Make ``path`` (a new, empty directory) a bare copy of ``source``'s branches and tags."""
    init_bare(git, path)
    fetch(git, path, source)
    repo = Repo(git, path)
    try:
        head = remote_head(git, source)
    except Exception:  # the fetch worked; HEAD is a nicety
        head = None
    fix_head(repo, prefer=head)


def fork(git: Git, source_path: Path, path: Path) -> None:
    """A real clone of a local repository (objects hard-linked: they never change)."""
    git.run(["clone", "--bare", "--quiet", "--", str(source_path), str(path)],
            protocols=("file",))
    git.run(["config", "--remove-section", "remote.origin"], git_dir=str(path))


def fix_head(repo: Repo, prefer: str | None = None) -> None:
    """Point HEAD at ``prefer``, or keep it if it names a branch that exists, else at
    ``main``, ``master`` or the first branch. Nothing to do in an empty repository."""
    refs = repo.refs()
    if not refs.branches:
        return
    names = {f"refs/heads/{b}" for b in refs.branches}
    target = f"refs/heads/{min(refs.branches)}"
    if prefer in names:
        target = prefer
    elif refs.head in names:
        return
    else:
        for candidate in ("main", "master"):
            if f"refs/heads/{candidate}" in names:
                target = f"refs/heads/{candidate}"
                break
    if target != refs.head:
        repo.run("symbolic-ref", "HEAD", target)


def pull(git: Git, store: Store, path: Path, source: Source) -> PullResult:
    """Bring ``path``'s branches and tags in line with ``source``'s; all or nothing."""
    repo = Repo(git, path)
    scratch = store.scratch("pull")
    try:
        init_bare(git, scratch)
        (scratch / "objects" / "info" / "alternates").write_text(
            str((path / "objects").resolve()) + "\n")
        fetch(git, scratch, source)
        new = Repo(git, scratch).refs().raw
        old = repo.refs().raw
        result = PullResult(head_before=repo.head())
        for ref in sorted(set(old) | set(new)):
            if old.get(ref) != new.get(ref):
                result.changes.append((ref, old.get(ref), new.get(ref)))
        if not result.changes:
            return result
        result.added_objects = _move_objects(scratch / "objects", path / "objects")
        try:
            _update_refs(repo, result.changes)
        except BaseException:
            _remove(result.added_objects)
            raise
        fix_head(repo)
        return result
    finally:
        remove_tree(scratch)


def undo(git: Git, path: Path, result: PullResult) -> None:
    """Put back what ``pull`` changed (the database half of the pull failed)."""
    repo = Repo(git, path)
    _update_refs(repo, [(ref, new, old) for ref, old, new in result.changes])
    if result.head_before is not None and repo.head() != result.head_before:
        repo.run("symbolic-ref", "HEAD", result.head_before)
    _remove(result.added_objects)


def _update_refs(repo: Repo, changes: list[tuple[str, str | None, str | None]]) -> None:
    lines = []
    for ref, old, new in changes:
        if new is None:
            lines.append(f"delete {ref} {old}")
        elif old is None:
            lines.append(f"create {ref} {new}")
        else:
            lines.append(f"update {ref} {new} {old}")
    repo.run("update-ref", "--stdin", input=("\n".join(lines) + "\n").encode())


def _move_objects(src: Path, dst: Path) -> list[Path]:
    """Move new object files from a scratch object store into the repository's.

    Packs move before their ``.idx`` (git sees a pack once its index exists); files the
    repository already has stay where they are.
    """
    moved: list[Path] = []
    pack_src = src / "pack"
    if pack_src.is_dir():
        entries = sorted(pack_src.iterdir(), key=lambda p: (p.suffix == ".idx", p.name))
        for entry in entries:
            if entry.suffix == ".keep" or not entry.name.startswith("pack-"):
                continue
            _move(entry, dst / "pack" / entry.name, moved)
    for sub in sorted(src.iterdir()):
        if len(sub.name) == 2 and sub.is_dir():
            for entry in sorted(sub.iterdir()):
                _move(entry, dst / sub.name / entry.name, moved)
    return moved


def _move(src: Path, dst: Path, moved: list[Path]) -> None:
    if dst.exists():
        return
    dst.parent.mkdir(exist_ok=True)
    os.rename(src, dst)
    moved.append(dst)


def _remove(paths: list[Path]) -> None:
    for path in sorted(paths, key=lambda p: p.suffix != ".idx"):
        path.unlink(missing_ok=True)
