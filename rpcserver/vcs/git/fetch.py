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
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from rpcserver.vcs.clone_uri import Source
from rpcserver.vcs.git.command import Git, GitError
from rpcserver.vcs.git.repo import Repo
from rpcserver.vcs.store import Store, remove_tree

REMOTE = "rpcserver-source"
_OID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")
#: More packs than this and a pull repacks (git's own default for ``gc --auto``).
GC_PACK_LIMIT = 50
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


#: ``--progress`` keeps a live transfer writing to stderr, which ``Git.watch`` watches for a
#: remote that went silent; ``--quiet`` leaves out the list of updated refs.
FETCH = ("fetch", "--quiet", "--progress", "--no-tags", "--no-write-fetch-head", "--no-auto-gc",
         "--no-show-forced-updates", "--no-recurse-submodules")


def _remote_config(git: Git, source: Source) -> list[tuple[str, str]]:
    config = [(f"remote.{REMOTE}.url", source.url)]
    config += [("http.curloptResolve", pin) for pin in source.pins]
    if source.ssh_host_key_alias is not None:
        config.append(("core.sshCommand", git.ssh_command(source.ssh_host_key_alias)))
    if source.scheme in ("http", "https"):
        # curl gives up on a connection that moves less than a byte a second for that long.
        stall = git.stall_timeout or git.timeout
        config += [("http.lowSpeedLimit", "1"), ("http.lowSpeedTime", str(max(1, int(stall))))]
    return config


def fetch(git: Git, git_dir: Path, source: Source) -> None:
    """Fetch every branch and tag of ``source`` into ``git_dir`` (same names); git is
    killed once the remote stays silent for ``git.stall_timeout``."""
    git.watch([*FETCH, "--", REMOTE, *REFSPECS], git_dir=str(git_dir),
              protocols=source.protocols, config=_remote_config(git, source),
              redact=source.secrets, stall=True)


def remote_head(git: Git, source: Source) -> str | None:
    """The branch the remote's HEAD names (``refs/heads/...``), or None if it has none."""
    out = git.watch(["ls-remote", "--symref", "--", REMOTE, "HEAD"],
                    protocols=source.protocols, config=_remote_config(git, source),
                    redact=source.secrets, stall=True)
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
    except GitError:  # the fetch worked; HEAD is a nicety
        head = None
    fix_head(repo, prefer=head)
    if repo.raw_refs():
        repo.write_commit_graph()


def fork(git: Git, source_path: Path, path: Path) -> None:
    """A real clone of a local repository (objects hard-linked: they never change)."""
    git.run(["clone", "--bare", "--quiet", "--", str(source_path), str(path)],
            protocols=("file",))
    repo = Repo(git, path)
    repo.run("config", "--remove-section", "remote.origin")
    if repo.raw_refs():
        repo.write_commit_graph()


def fix_head(repo: Repo, prefer: str | None = None,
             branches: Iterable[str] | None = None) -> None:
    """Point HEAD at ``prefer``, or keep it if it names a branch that exists, else at
    ``main``, ``master`` or the first branch. Nothing to do in an empty repository.
    ``branches`` (full ref names), when the caller knows them, saves asking git."""
    if branches is None:
        branches = (ref for ref in repo.raw_refs() if ref.startswith("refs/heads/"))
    heads = sorted(branches)
    if not heads:
        return
    head = _read_head(repo.path) or repo.head()
    if prefer in heads:
        target = prefer
    elif head in heads:
        return
    else:
        preferred = [b for b in ("refs/heads/main", "refs/heads/master") if b in heads]
        target = (preferred or heads)[0]
    if target != head:
        repo.run("symbolic-ref", "HEAD", target)


def _read_head(git_dir: Path) -> str | None:
    """The branch HEAD names, read from the HEAD file (None: ask git)."""
    try:
        text = (git_dir / "HEAD").read_text().strip()
    except OSError:
        return None
    if text.startswith("ref: refs/heads/") and _files_backend(git_dir):
        return text[len("ref: "):]
    return None


def pull(git: Git, store: Store, path: Path, source: Source) -> PullResult:
    """Bring ``path``'s branches and tags in line with ``source``'s; all or nothing.

    The commit-graph is not updated here: ``Repo.tip_and_count(refresh=True)`` does it
    while it reads the new tip."""
    repo = Repo(git, path)
    with store.scratch("pull") as scratch:
        _skeleton(scratch, alternate=path / "objects")
        fetch(git, scratch, source)
        new = _files_refs(scratch)
        try:
            old = _files_refs(path) if _files_backend(path) else repo.raw_refs()
        except ValueError:  # a symbolic ref among the branches: let git resolve it
            old = repo.raw_refs()
        result = PullResult()
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
        if any(ref.startswith("refs/heads/") and (old_id is None or new_id is None)
               for ref, old_id, new_id in result.changes):
            result.head_before = _read_head(path) or repo.head()
            fix_head(repo, branches=[r for r in new if r.startswith("refs/heads/")])
        _maybe_gc(repo)
        return result


def undo(git: Git, path: Path, result: PullResult) -> None:
    """Put back what ``pull`` changed (the database half of the pull failed)."""
    repo = Repo(git, path)
    _update_refs(repo, [(ref, new, old) for ref, old, new in result.changes])
    if result.head_before is not None and repo.head() != result.head_before:
        repo.run("symbolic-ref", "HEAD", result.head_before)
    _remove(result.added_objects)
    if repo.raw_refs():
        repo.write_commit_graph(replace=True)
    else:
        remove_tree(path / "objects" / "info" / "commit-graphs")


def _skeleton(path: Path, *, alternate: Path) -> None:
    """A bare repository that borrows ``alternate``'s objects, made without running git
    (this is on every pull's path)."""
    for sub in ("objects/info", "objects/pack", "refs/heads", "refs/tags"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    (path / "HEAD").write_text("ref: refs/heads/master\n")
    (path / "config").write_text("[core]\n\trepositoryformatversion = 0\n\tbare = true\n")
    (path / "objects" / "info" / "alternates").write_text(str(alternate.resolve()) + "\n")


def _files_refs(git_dir: Path) -> dict[str, str]:
    """Branches and tags of a repository we made (``_skeleton``: the files ref backend),
    read without running git: loose refs win over ``packed-refs``. ``ValueError`` for
    anything else (a symbolic ref)."""
    found: dict[str, str] = {}
    packed = git_dir / "packed-refs"
    if packed.is_file():
        for line in packed.read_text().splitlines():
            if line and line[0] not in "#^":
                oid, _, ref = line.partition(" ")
                if ref.startswith(("refs/heads/", "refs/tags/")):
                    found[ref] = oid
    for top in ("refs/heads", "refs/tags"):
        for file in (git_dir / top).rglob("*"):
            if file.is_file() and not file.name.endswith(".lock"):
                oid = file.read_text().strip()
                if not _OID.fullmatch(oid):
                    raise ValueError(f"{file}: not an object id")
                found[str(file.relative_to(git_dir))] = oid
    return found


def _files_backend(git_dir: Path) -> bool:
    """Whether a repository keeps refs as files (loose refs + packed-refs), which we may then
    read without running git; any other ref storage is read through git."""
    try:
        config = (git_dir / "config").read_text()
    except OSError:
        return False
    return "refstorage" not in config.lower() and not (git_dir / "reftable").exists()


def _maybe_gc(repo: Repo) -> None:
    """Each pull adds a pack; repack now and then, as ``git gc --auto`` would."""
    packs = sum(1 for p in (repo.path / "objects" / "pack").glob("pack-*.pack"))
    if packs > GC_PACK_LIMIT:
        repo.run("gc", "--quiet")


def _update_refs(repo: Repo, changes: list[tuple[str, str | None, str | None]]) -> None:
    lines = []
    for ref, old, new in changes:
        if new is None:
            lines.append(f"delete {ref} {old}")
        elif old is None:
            lines.append(f"create {ref} {new}")
        else:
            lines.append(f"update {ref} {new} {old}")
    repo.run("update-ref", "--no-deref", "--stdin", input=("\n".join(lines) + "\n").encode())


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
