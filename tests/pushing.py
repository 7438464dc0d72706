"""Pushing with real ``git push`` to a bare repository of a store, in the environment
``hooks.push_environment`` makes, as the serving code will run ``git receive-pack``.

git runs the receiving side of a push to a local path as a child, but clears
``GIT_CONFIG_*`` for it (a local remote is another repository); so each push names a
``--receive-pack`` script that runs ``git receive-pack`` in exactly that environment.
"""

from __future__ import annotations

import shlex
import subprocess
from pathlib import Path

from rpcserver.vcs.git.hooks import PushRules, push_environment
from rpcserver.vcs.store import Store
from tests.gitremotes import GIT, git, git_env, refs_of

ZERO = "0" * 40


def identity(env: dict[str, str]) -> dict[str, str]:
    return {**env, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com",
            "GIT_COMMITTER_NAME": "C", "GIT_COMMITTER_EMAIL": "c@example.com"}


class Pusher:
    """A working repository in ``tmp`` that pushes to the bare repository ``bare`` of
    ``store``; ``record`` is where the push's post-receive writes what it applied."""

    def __init__(self, store: Store, bare: Path, tmp: Path, branch: str = "main") -> None:
        self.store = store
        self.bare = bare
        self.work = tmp / "work"
        git("init", "--quiet", f"--initial-branch={branch}", str(self.work))
        self.record = tmp / "record.jsonl"
        self.made = 0

    def commit(self, content: bytes | None = None) -> str:
        self.made += 1
        path = self.work / "file.bin"
        path.write_bytes(content if content is not None else f"{self.made}\n".encode())
        self.git("add", "file.bin")
        self.git("commit", "--quiet", "-m", f"commit {self.made}")
        return self.git("rev-parse", "HEAD").strip()

    def git(self, *args: str) -> str:
        out = subprocess.run([GIT, "-C", str(self.work), *args], capture_output=True,
                             check=True, env=identity(git_env()))
        return out.stdout.decode()

    def push(self, rules: PushRules, *refspecs: str,
             extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        self.record.unlink(missing_ok=True)
        env = push_environment(self.store, rules, self.record,
                               base=identity({**git_env(), **(extra or {})}))
        return self.push_in(env, *refspecs)

    def push_in(self, env: dict[str, str], *refspecs: str) -> subprocess.CompletedProcess[str]:
        """``git push`` whose receive-pack runs in ``env`` and nothing else."""
        script = self.work.parent / "receive-pack"
        assignments = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(env.items()))
        script.write_text(f'#!/bin/sh\nexec env -i {assignments} {GIT} receive-pack "$@"\n')
        script.chmod(0o755)
        return subprocess.run([GIT, "-C", str(self.work), "push", "--porcelain",
                               f"--receive-pack={script}", str(self.bare), *refspecs],
                              capture_output=True, text=True, env=git_env(), check=False)

    def refs(self) -> dict[str, str]:
        return refs_of(self.bare)
