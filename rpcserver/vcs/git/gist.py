"""A gist's files as one commit of a bare git repository, built and read with git's plumbing
(no work tree, no index file): ``hash-object`` each file, ``mktree``, ``commit-tree``,
``update-ref``; reading back is ``ls-tree`` and ``cat-file --batch``.

Names are checked by the caller (``vcs.gists.name_problem``): plain base names, so one tree
holds them all. ``mktree -z`` takes them NUL-terminated, so a newline in a name is only a
character.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rpcserver.vcs.git.command import Git, GitError
from rpcserver.vcs.git.fetch import init_bare

BRANCH = "refs/heads/master"


def write(git: Git, path: Path, files: Sequence[tuple[str, bytes]], *, message: str,
          author: tuple[str, str]) -> str:
    """Make ``path`` (a new, empty directory) a bare repository whose one commit holds
    ``files`` (name, content) and says ``message``, by ``author`` (name, email); answers the
    commit id."""
    init_bare(git, path)
    git_dir = str(path)
    entries = []
    for name, content in files:
        blob = git.run(["hash-object", "-w", "--stdin"], git_dir=git_dir,
                       input=content).decode().strip()
        entries.append(f"100644 blob {blob}\t{name}".encode() + b"\0")
    tree = git.run(["mktree", "-z"], git_dir=git_dir, input=b"".join(entries)).decode().strip()
    name, email = author
    identity = [("user.name", name), ("user.email", email)]
    commit = git.run(["commit-tree", tree], git_dir=git_dir, input=message.encode(),
                     config=identity).decode().strip()
    git.run(["update-ref", BRANCH, commit, ""], git_dir=git_dir)
    return commit


def read(git: Git, path: Path) -> list[tuple[str, bytes]]:
    """The files of the gist at ``path`` (name, content), in git's (byte) order."""
    git_dir = str(path)
    listing = git.run(["ls-tree", "-z", "--full-tree", BRANCH], git_dir=git_dir)
    names, blobs = [], []
    for entry in listing.split(b"\0"):
        if not entry:
            continue
        meta, _tab, name = entry.partition(b"\t")
        _mode, kind, blob = meta.split(b" ")
        if kind != b"blob":
            continue
        names.append(name.decode("utf-8", "surrogateescape"))
        blobs.append(blob)
    if not blobs:
        return []
    out = git.run(["cat-file", "--batch"], git_dir=git_dir, input=b"\n".join(blobs) + b"\n")
    contents, at = [], 0
    for blob in blobs:
        header_end = out.index(b"\n", at)
        header = out[at:header_end].split(b" ")
        if header[0] != blob or len(header) != 3:
            raise GitError("cat-file", 0, f"unexpected answer for {blob.decode()}")
        size = int(header[2])
        start = header_end + 1
        contents.append(out[start:start + size])
        at = start + size + 1
    return list(zip(names, contents, strict=True))


def message(git: Git, path: Path) -> str:
    """The message of the gist's commit (tests and the journal read it back)."""
    return git.run(["log", "-1", "--format=%B", BRANCH], git_dir=str(path)).decode()
