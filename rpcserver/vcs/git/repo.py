"""Reading a bare repository through git plumbing: refs, revisions, commits, trees.

Revision numbers are Kallithea's: the 0-based position of a commit in
``git rev-list --date-order --reverse --branches --tags`` (oldest first), so the newest commit,
the "tip", has the highest number. Nothing here passes a client's string to git unless it
matched a strict pattern first (``resolve``).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import ClassVar

from rpcserver.vcs.git.command import Git, GitError
from rpcserver.vcs.model import Commit, NoSuchPath, Refs, TooMany, Tree, utc

log = logging.getLogger(__name__)

_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_SHA = re.compile(r"^[0-9a-f]{40}$")
#: A revision number as Kallithea accepts it: digits, shorter than a short id.
_INDEX = re.compile(r"^[0-9]{1,11}$")
NULL_SHA = "0" * 40
_LOG_FORMAT = "%x1e%H%x1f%P%x1f%ct%x1f%an%x1f%ae%x1f%B"
_STATUS = {"A": "added", "M": "changed", "T": "changed", "D": "removed"}


class Repo:
    """A bare git repository on disk."""

    def __init__(self, git: Git, path: Path) -> None:
        self.git = git
        self.path = path

    def run(self, *args: str, input: bytes | None = None) -> bytes:
        return self.git.run(list(args), git_dir=str(self.path), input=input)

    def exists(self) -> bool:
        return is_bare_repository(self.path)

    def refs(self, *, at_most: int | None = None) -> Refs:
        """Branches and tags; with ``at_most``, only that many (by name), so that an answer
        stays bounded however many refs were pushed."""
        count = [] if at_most is None else [f"--count={at_most}"]
        out = self.run("for-each-ref", *count,
                       "--format=%(objectname)%00%(*objectname)%00%(refname)",
                       "refs/heads", "refs/tags")
        branches: dict[str, str] = {}
        tags: dict[str, str] = {}
        raw: dict[str, str] = {}
        for line in out.decode("utf-8", "replace").splitlines():
            oid, peeled, ref = line.split("\0", 2)
            raw[ref] = oid
            if ref.startswith("refs/heads/"):
                branches[ref[len("refs/heads/"):]] = oid
            elif ref.startswith("refs/tags/"):
                tags[ref[len("refs/tags/"):]] = peeled or oid
        return Refs(branches=branches, tags=tags, raw=raw)

    def raw_refs(self) -> dict[str, str]:
        """Every branch and tag: full ref name -> the id it stores (tags not peeled)."""
        out = self.run("for-each-ref", "--format=%(objectname) %(refname)", "refs/heads",
                       "refs/tags")
        found: dict[str, str] = {}
        for line in out.decode("utf-8", "replace").splitlines():
            oid, ref = line.split(" ", 1)
            found[ref] = oid
        return found

    def head(self) -> str | None:
        """The branch HEAD names (``refs/heads/...``), whether or not it exists yet."""
        try:
            return self.run("symbolic-ref", "-q", "HEAD").decode().strip() or None
        except GitError:
            return None

    def revisions(self) -> list[str]:
        """Every commit reachable from a branch or tag, oldest first (Kallithea's order)."""
        out = self.run("rev-list", "--date-order", "--reverse", "--branches", "--tags")
        return out.decode("ascii").split()

    def revisions_dated(self) -> list[tuple[str, dt.datetime]]:
        """``revisions()`` with each commit's time (UTC, no zone)."""
        out = self.run("log", "--date-order", "--reverse", "--branches", "--tags",
                       "--format=%H %ct")
        found = []
        for line in out.decode("ascii").splitlines():
            sha, stamp = line.split()
            found.append((sha, utc(int(stamp))))
        return found

    def ancestors(self, ref: str) -> set[str]:
        """Every commit reachable from ``ref`` (a full ref name such as ``refs/heads/x``)."""
        if not ref.startswith("refs/"):
            raise ValueError(f"not a full ref name: {ref!r}")
        return set(self.run("rev-list", ref, "--").decode("ascii").split())

    def on_branch(self, branch: str) -> set[str]:
        """Every commit reachable from branch ``branch`` (a name from ``refs().branches``)."""
        return self.ancestors(f"refs/heads/{branch}")

    def write_commit_graph(self, *, replace: bool = False) -> None:
        """Add the new commits to the commit-graph (a cache git keeps beside the objects):
        walks in revision order then cost milliseconds instead of a full history walk.
        ``replace`` rewrites it from scratch (after commits were taken out again)."""
        self.run("commit-graph", "write", "--reachable", "--no-progress",
                 "--split=replace" if replace else "--split")

    def tip_and_count(self, *, refresh: bool = False) -> tuple[Commit | None, int]:
        """The newest commit (the highest revision number) and how many commits there are.

        ``refresh`` (the repository just changed) first brings the commit-graph up to date (a
        failure is only logged: it is a cache); with it, the two walks take milliseconds, and
        run side by side."""
        if refresh:
            try:
                self.write_commit_graph()
            except GitError as exc:
                log.warning("%s: could not update the commit-graph: %s", self.path, exc)
        with ThreadPoolExecutor(max_workers=2) as pool:
            tip = pool.submit(self.tip)
            count = pool.submit(self.count)
            return tip.result(), count.result()

    def count(self) -> int:
        return int(self.run("rev-list", "--count", "--branches", "--tags").strip() or 0)

    def tip(self) -> Commit | None:
        """The newest commit (highest revision number), or None when empty."""
        out = self.run("log", "-1", "--date-order", "--branches", "--tags",
                       "--encoding=UTF-8", f"--format={_LOG_FORMAT}", "-z")
        found = _parse_log(out, with_files=False)
        return found[0] if found else None

    def resolve(self, revision: str, refs: Refs | None = None,
                revisions: list[str] | None = None) -> str | None:
        """The commit id ``revision`` names, or None.

        Accepted, in this order: ``tip``, a revision number, a branch, a tag, a commit id or
        an unambiguous prefix of one (4-40 hex digits). Nothing else reaches git.
        """
        if revision in ("tip", "HEAD", ""):
            tip = self.tip()
            return tip.raw_id if tip else None
        if _INDEX.fullmatch(revision) and len(revision) < 12:
            revs = self.revisions() if revisions is None else revisions
            index = int(revision)
            return revs[index] if index < len(revs) else None
        refs = self.refs() if refs is None else refs
        if revision in refs.branches:
            return refs.branches[revision]
        if revision in refs.tags:
            return refs.tags[revision]
        if not _HEX.fullmatch(revision):
            return None
        try:
            out = self.run("rev-parse", "--verify", "--quiet", "--end-of-options",
                           f"{revision}^{{commit}}")
        except GitError:
            return None
        found = out.decode().strip()
        return found if _SHA.fullmatch(found) else None

    def commits(self, ids: Iterable[str], *, with_files: bool,
                max_files: int | None = None) -> list[Commit]:
        """The commits ``ids`` (full ids), in that order. ``max_files`` bounds the changed
        files of all of them together: past it git is stopped and ``TooMany`` raised."""
        wanted = [i for i in ids if _SHA.fullmatch(i)]
        if not wanted:
            return []
        args = ["log", "--no-walk=unsorted", "--stdin", "--encoding=UTF-8",
                f"--format={_LOG_FORMAT}", "-z"]
        if with_files:
            args += ["--name-status", "--no-renames", "--diff-merges=first-parent", "--root"]
        stdin = "\n".join(wanted).encode() + b"\n"
        if not with_files or max_files is None:
            return _parse_log(self.run(*args, input=stdin), with_files=with_files)
        # Each commit writes one NUL after its header and two per changed file.
        most = len(wanted) + 2 * max_files
        seen = 0

        def past_bound(chunk: bytes) -> bool:
            nonlocal seen
            seen += chunk.count(b"\0")
            return seen > most

        out = self.git.watch(args, git_dir=str(self.path), input=stdin, stop=past_bound)
        if seen > most:
            raise TooMany(max_files)
        commits = _parse_log(out, with_files=True)
        if sum(len(c.added or ()) + len(c.changed or ()) + len(c.removed or ())
               for c in commits) > max_files:
            raise TooMany(max_files)
        return commits

    def tree(self, commit: str, path: str, *, kinds: str = "all",
             at_most: int | None = None) -> Tree:
        """Directories and files under ``path`` at ``commit``, recursively, walked top-down
        like Kallithea (each directory's subdirectories, then its files, then deeper).

        ``kinds`` ``dirs`` or ``files`` keeps one kind; past ``at_most`` entries of the kinds
        kept git is stopped and ``TooMany`` raised (a tree may hold millions of entries)."""
        if kinds not in ("all", "dirs", "files"):
            raise ValueError(kinds)
        if not _SHA.fullmatch(commit):
            raise NoSuchPath(path)
        spec = f"{commit}:{path}" if path else f"{commit}^{{tree}}"
        try:
            found = self.run("cat-file", "-t", spec).decode().strip()
        except GitError:
            raise NoSuchPath(path) from None
        if found != "tree":
            raise NoSuchPath(path)
        # Files are ordered by the directories around them, so "files" lists both.
        only = "-d" if kinds == "dirs" else "-t"
        reader = _TreeEntries(kinds, at_most)
        self.git.watch(["ls-tree", "-r", only, "-z", "--end-of-options", spec],
                       git_dir=str(self.path), stop=reader.past_bound)
        if reader.over:
            raise TooMany(at_most or 0)
        children: dict[str, tuple[list[str], list[str]]] = {"": ([], [])}
        for kind, raw_name in reader.entries:
            name = raw_name.decode("utf-8", "replace")
            parent = name.rpartition("/")[0]
            full = f"{path}/{name}" if path else name
            if kind == b"tree":
                children.setdefault(parent, ([], []))[0].append(full)
                children.setdefault(name, ([], []))
            elif kind == b"blob":
                children.setdefault(parent, ([], []))[1].append(full)
            # "commit" entries are submodules: neither a file nor a directory, as in Kallithea.
        result = Tree()
        _walk(children, path, result)
        if kinds == "files":
            result.dirs.clear()
        return result


class _TreeEntries:
    """Reads ``ls-tree -z`` output as git writes it: every entry as (its type, its path),
    and a count of the kinds kept, to stop git once past the bound."""

    _KINDS: ClassVar[dict[str, tuple[bytes, ...]]] = {
        "all": (b"tree", b"blob"), "dirs": (b"tree",), "files": (b"blob",)}

    def __init__(self, kinds: str, bound: int | None) -> None:
        self.kinds = self._KINDS[kinds]
        self.bound = bound
        self.count = 0
        self.entries: list[tuple[bytes, bytes]] = []
        self.tail = b""

    @property
    def over(self) -> bool:
        return self.bound is not None and self.count > self.bound

    def past_bound(self, chunk: bytes) -> bool:
        *complete, self.tail = (self.tail + chunk).split(b"\0")
        for entry in complete:
            meta, _tab, name = entry.partition(b"\t")
            kind = meta.split()[1]  # "<mode> <type> <id>"
            self.entries.append((kind, name))
            self.count += kind in self.kinds
        return self.over


def _walk(children: dict[str, tuple[list[str], list[str]]], base: str, out: Tree) -> None:
    """Each directory's subdirectories and files, then each subdirectory's, depth first;
    with a stack, not recursion: a remote decides how deep its trees are."""
    stack = [""]
    while stack:
        dirs, files = children.get(stack.pop(), ([], []))
        out.dirs.extend(dirs)
        out.files.extend(files)
        stack.extend(full[len(base) + 1:] if base else full for full in reversed(dirs))


def _parse_log(out: bytes, *, with_files: bool) -> list[Commit]:
    """Parse ``git log -z --format=_LOG_FORMAT [--name-status]`` output."""
    commits: list[Commit] = []
    tokens = out.split(b"\0")
    i = 0
    while i < len(tokens):
        token = tokens[i]
        i += 1
        if not token.startswith(b"\x1e"):
            continue
        fields = token[1:].decode("utf-8", "replace").split("\x1f", 5)
        raw_id, parents, stamp, name, email, message = fields
        files: dict[str, list[str]] = {"added": [], "changed": [], "removed": []}
        while with_files and i + 1 < len(tokens) and not tokens[i].startswith(b"\x1e"):
            status = tokens[i].strip().decode("ascii", "replace")
            if not status:
                i += 1
                continue
            path = tokens[i + 1].decode("utf-8", "replace")
            i += 2
            bucket = _STATUS.get(status[:1])
            if bucket is not None:
                files[bucket].append(path)
        commits.append(Commit(
            raw_id=raw_id, parents=tuple(parents.split()), timestamp=int(stamp),
            author_name=name, author_email=email, message=message,
            added=files["added"] if with_files else None,
            changed=files["changed"] if with_files else None,
            removed=files["removed"] if with_files else None,
        ))
    return commits


def is_bare_repository(path: Path) -> bool:
    """A directory that looks like a bare git repository (HEAD, objects/, refs/)."""
    return ((path / "HEAD").is_file() and (path / "objects").is_dir()
            and (path / "refs").is_dir())
