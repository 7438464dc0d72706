"""The hooks a push runs: the server's own, never the repository's.

A repository's ``hooks/`` directory is whatever was put there (a repository adopted by
rescan_repos is not ours), so a push runs git with ``core.hooksPath`` pointing at a
directory the server writes itself (``ensure_hooks``): ``pre-receive`` applies the push rules,
``post-receive`` records what was applied (``read_record``). Both run ``hook.py``.
``push_environment`` is what the serving code adds to ``git receive-pack``'s (or
``git http-backend``'s) environment for that.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shlex
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from rpcserver.vcs.git import hook
from rpcserver.vcs.model import PushRules, RefUpdate
from rpcserver.vcs.push_record import read_record
from rpcserver.vcs.store import Store

__all__ = ["PushRules", "RefUpdate", "ensure_hooks", "push_environment", "read_record"]

#: The hooks we install; each runs ``hook.py <name>``.
HOOK_NAMES = ("pre-receive", "post-receive")
#: Where the hooks live under the store's internal directory.
HOOKS_DIR = "hooks"


def ensure_hooks(store: Store) -> Path:
    """The server-owned hooks directory, written or brought up to date (the scripts name
    this Python and this ``hook.py``, which move when the server is reinstalled)."""
    directory = store.internal / HOOKS_DIR
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o755)  # noqa: S103 (readable by all, writable by us alone)
    program = str(Path(hook.__file__).resolve())
    for name in HOOK_NAMES:
        _install(directory / name, _script(program, name))
    return directory


def _script(program: str, name: str) -> str:
    # -I: no PYTHON* variables, no current directory (the repository) on sys.path; -S: the
    # hook needs no site-packages, and skipping them halves its start-up.
    return ("#!/bin/sh\n"
            "# Written by rpcserver (vcs/git/hooks.py); rewritten when it differs.\n"
            f"exec {shlex.quote(sys.executable)} -I -S {shlex.quote(program)} {name}\n")


def _install(path: Path, text: str) -> None:
    """Write ``path`` unless it already holds ``text`` with mode 0755: into a temporary
    file first, then renamed over it, so that a push never runs half a script."""
    with contextlib.suppress(OSError):
        if (path.stat().st_mode & 0o7777) == 0o755 and path.read_text() == text:
            return
    fd, temp = tempfile.mkstemp(prefix=f".{path.name}-", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            os.fchmod(out.fileno(), 0o755)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise


def push_environment(store: Store, rules: PushRules, record: Path,
                     base: Mapping[str, str] | None = None) -> dict[str, str]:
    """``base`` (the environment git will run in; none: only what we add) with the push's
    settings added: git configuration as ``GIT_CONFIG_*`` entries after any ``base`` has (so
    ours win, over the repository's own config too), the rules for ``pre-receive`` and the
    file ``post-receive`` records the applied updates in."""
    env = dict(base or {})
    config = [("core.hooksPath", str(ensure_hooks(store))),
              ("receive.fsckObjects", "true"),
              # pre-receive decides who may delete the default branch (an admin may).
              ("receive.denyDeleteCurrent", "ignore")]
    if rules.max_push_bytes > 0:
        config.append(("receive.maxInputSize", str(rules.max_push_bytes)))
    count = int(env.get("GIT_CONFIG_COUNT") or 0)
    for i, (key, value) in enumerate(config, start=count):
        env[f"GIT_CONFIG_KEY_{i}"] = key
        env[f"GIT_CONFIG_VALUE_{i}"] = value
    env["GIT_CONFIG_COUNT"] = str(count + len(config))
    env[hook.RULES_ENV] = json.dumps(dataclasses.asdict(rules))
    env[hook.RECORD_ENV] = str(record)
    return env
