"""Reading an hg repository through ``hg log``/``hg files`` with JSON templates.

Revision numbers are Mercurial's own local revision numbers (as in Kallithea), which are the
positions in ``revisions()``. Branches are named branches (their tip, open ones only, as
Kallithea lists them), tags are hg's (``.hgtags``, and ``tip``, as Kallithea lists them),
bookmarks are bookmarks. Nothing from a client reaches hg unless it matched a strict pattern first.
Each method runs hg once at most: starting it is most of what a call costs.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rpcserver.vcs.hg.command import Hg, HgError
from rpcserver.vcs.model import Commit, NoSuchPath, Refs, TooMany, Tree, utc

_HEX = re.compile(r"^[0-9a-f]{4,40}$")
_NODE = re.compile(r"^[0-9a-f]{40}$")
_INDEX = re.compile(r"^[0-9]{1,11}$")
NULL = "0" * 40

#: One line of JSON per changeset.
#: (``dict()`` takes its positional arguments first.)
_COMMIT = '{dict(node, p1node, p2node, author, desc, date=date|hgdate)|json}\n'
_WITH_FILES = ('{dict(node, p1node, p2node, author, desc, date=date|hgdate, '
               'added=file_adds, changed=file_mods, removed=file_dels)|json}\n')
_REF = ('{dict(node, branch, tags, bookmarks, '
        'open=ifcontains(rev, revset("head() and not closed()"), "1", ""))|json}\n')


def is_repository(path: Path) -> bool:
    """A directory holding ``.hg/store`` and not sharing another repository's store (a
    ``.hg/sharedpath`` would make the server read a repository elsewhere on disk)."""
    hg = path / ".hg"
    return ((hg / "requires").is_file() and (hg / "store").is_dir()
            and not (hg / "sharedpath").exists())


class Repo:
    """An hg repository on disk (no working files: the server never checks one out)."""

    def __init__(self, hg: Hg, path: Path) -> None:
        self.hg = hg
        self.path = path

    def run(self, *args: str) -> bytes:
        return self.hg.run(list(args), repo=self.path)

    def log(self, revset: str, template: str) -> list[dict[str, Any]]:
        out = self.run("log", "-r", revset, "-T", template)
        return [json.loads(line) for line in out.decode("utf-8", "replace").splitlines()]

    def exists(self) -> bool:
        return is_repository(self.path)

    def refs(self, *, at_most: int | None = None) -> Refs:
        """Open named branches (their tip), tags (``tip`` too, but not in ``raw``: it is no
        ref a pull updates) and bookmarks."""
        branches: dict[str, str] = {}
        tags: dict[str, str] = {}
        bookmarks: dict[str, str] = {}
        tip: dict[str, str] = {}
        for entry in self.log("sort(head() or tag() or bookmark(), rev)", _REF):
            node = entry["node"]
            if entry["open"]:
                branches.pop(entry["branch"], None)
                branches[entry["branch"]] = node  # the highest revision wins
            for tag in entry["tags"]:
                (tip if tag == "tip" else tags)[tag] = node  # tip: always a head
            for mark in entry["bookmarks"]:
                bookmarks[mark] = node
        raw = {**{f"branch/{k}": v for k, v in branches.items()},
               **{f"tag/{k}": v for k, v in tags.items()},
               **{f"bookmark/{k}": v for k, v in bookmarks.items()}}
        if at_most is not None and len(raw) > at_most:
            raw = dict(sorted(raw.items())[:at_most])
        return Refs(branches=dict(sorted(branches.items())),
                    tags=dict(sorted({**tags, **tip}.items())),
                    raw=raw, bookmarks=dict(sorted(bookmarks.items())))

    def revisions(self) -> list[str]:
        return self.run("log", "-r", "all()", "-T", "{node}\n").decode("ascii").split()

    def revisions_dated(self) -> list[tuple[str, dt.datetime]]:
        out = self.run("log", "-r", "all()", "-T", "{node} {date|hgdate}\n")
        found = []
        for line in out.decode("ascii").splitlines():
            node, stamp, _offset = line.split()
            found.append((node, utc(int(stamp))))
        return found

    def on_branch(self, branch: str) -> set[str]:
        """The changesets of named branch ``branch`` (a name from ``refs().branches``), as
        Kallithea's ``branch_name`` filter (``branch()``) finds them."""
        out = self.run("log", "-r", f"branch({_quoted('literal:' + branch)})", "-T",
                       "{node}\n")
        return set(out.decode("ascii").split())

    def tip_and_count(self, *, refresh: bool = False) -> tuple[Commit | None, int]:
        out = self.run("log", "-r", "tip", "-T", "{rev} " + _COMMIT)
        text = out.decode("utf-8", "replace").strip()
        rev, _space, entry = text.partition(" ")
        if int(rev) < 0:
            return None, 0
        return _commit(json.loads(entry), with_files=False), int(rev) + 1

    def resolve(self, revision: str, refs: Refs | None = None,
                revisions: list[str] | None = None) -> str | None:
        """``tip``, a revision number, a branch, a tag, a bookmark, a node or an unambiguous
        prefix of one (4-40 hex digits); nothing else reaches hg."""
        if revision in ("tip", "HEAD", ""):
            tip, _count = self.tip_and_count()
            return tip.raw_id if tip else None
        if _INDEX.fullmatch(revision) and len(revision) < 12:
            revs = self.revisions() if revisions is None else revisions
            index = int(revision)
            return revs[index] if index < len(revs) else None
        refs = self.refs() if refs is None else refs
        for names in (refs.branches, refs.tags, refs.bookmarks):
            if revision in names:
                return names[revision]
        if not _HEX.fullmatch(revision):
            return None
        revs = self.revisions() if revisions is None else revisions
        found = [node for node in revs if node.startswith(revision)]
        return found[0] if len(found) == 1 else None

    def commits(self, ids: Iterable[str], *, with_files: bool,
                max_files: int | None = None) -> list[Commit]:
        wanted = [i for i in ids if _NODE.fullmatch(i)]
        if not wanted:
            return []
        args = ["log"]
        for node in wanted:
            args += ["-r", node]
        out = self.run(*args, "-T", _WITH_FILES if with_files else _COMMIT)
        commits = [_commit(json.loads(line), with_files=with_files)
                   for line in out.decode("utf-8", "replace").splitlines()]
        if with_files and max_files is not None and sum(
                len(c.added or ()) + len(c.changed or ()) + len(c.removed or ())
                for c in commits) > max_files:
            raise TooMany(max_files)
        return commits

    def tree(self, commit: str, path: str, *, kinds: str = "all",
             at_most: int | None = None) -> Tree:
        """Directories and files under ``path`` at ``commit``, walked as the git reader
        walks (each directory's subdirectories, then its files, then deeper)."""
        if kinds not in ("all", "dirs", "files"):
            raise ValueError(kinds)
        if not _NODE.fullmatch(commit):
            raise NoSuchPath(path)
        try:
            # Paths from the root (hg forbids newlines in file names).
            out = self.run("files", "-r", commit, "-T", "{path}\n",
                           *(["--", f"path:{path}"] if path else []))
        except HgError as exc:
            if exc.returncode == 1:  # no file matched
                if path:
                    raise NoSuchPath(path) from None
                return Tree()
            raise
        names = out.decode("utf-8", "replace").splitlines()
        if path and not names:
            raise NoSuchPath(path)
        base = f"{path}/" if path else ""
        children: dict[str, tuple[list[str], list[str]]] = {"": ([], [])}
        count = 0
        for full in sorted(names):
            if not full.startswith(base):
                raise NoSuchPath(path)  # ``path`` is a file
            parts = full[len(base):].split("/")
            for depth in range(len(parts) - 1):
                parent = "/".join(parts[:depth])
                name = "/".join(parts[:depth + 1])
                if name not in children:
                    children[name] = ([], [])
                    children.setdefault(parent, ([], []))[0].append(base + name)
                    count += kinds != "files"
            children.setdefault("/".join(parts[:-1]), ([], []))[1].append(full)
            count += kinds != "dirs"
            if at_most is not None and count > at_most:
                raise TooMany(at_most)
        result = Tree()
        stack = [""]
        while stack:
            dirs, files = children.get(stack.pop(), ([], []))
            result.dirs.extend(dirs)
            result.files.extend(files)
            stack.extend(full[len(base):] for full in reversed(dirs))
        if kinds == "files":
            result.dirs.clear()
        if kinds == "dirs":
            result.files.clear()
        return result


def _quoted(name: str) -> str:
    """``name`` as a revset string literal (json's escapes are revset's)."""
    return json.dumps(name, ensure_ascii=False)


def _commit(entry: dict[str, Any], *, with_files: bool) -> Commit:
    name, email = _split_author(entry["author"])
    parents = tuple(p for p in (entry["p1node"], entry["p2node"]) if p != NULL)
    return Commit(raw_id=entry["node"], parents=parents, author_name=name,
                  author_email=email, timestamp=int(entry["date"].split()[0]),
                  message=entry["desc"],
                  added=list(entry["added"]) if with_files else None,
                  changed=list(entry["changed"]) if with_files else None,
                  removed=list(entry["removed"]) if with_files else None)


def _split_author(author: str) -> tuple[str, str]:
    """``Name <mail>`` as hg stores it; a bare user is a name without a mail."""
    found = re.fullmatch(r"\s*(.*?)\s*<([^>]*)>\s*", author)
    if found:
        return found.group(1), found.group(2)
    return author.strip(), ""
