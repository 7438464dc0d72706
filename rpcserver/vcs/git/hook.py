"""The server's own git hooks as one program: ``pre-receive`` applies the push rules,
``post-receive`` records the ref updates git applied.

git runs it from the server-owned hooks directory (``hooks.ensure_hooks``) as
``python -I -S hook.py pre-receive``, once per push. It imports the standard library only and
is run as a file, not with ``-m``: importing the package ``rpcserver.vcs`` would load the
whole vcs layer first, several times the cost of the hook itself.

It trusts its environment, which the server sets (``hooks.push_environment``); without the
rules there it refuses the push: a push that did not come through the server is not one this
hook can judge.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterable

#: The push rules as JSON (``hooks.PushRules``).
RULES_ENV = "RPCSERVER_PUSH_RULES"
#: The file ``post-receive`` writes the applied updates to, one JSON object a line.
RECORD_ENV = "RPCSERVER_PUSH_RECORD"
#: The only refs a push may change.
ALLOWED_PREFIXES = ("refs/heads/", "refs/tags/")

#: (old id, new id, ref), as git hands them to the hook.
Update = tuple[str, str, str]


def is_zero(oid: str) -> bool:
    """The null id: the ref is created (old) or deleted (new); SHA-1 or SHA-256."""
    return bool(oid) and set(oid) == {"0"}


def parse_updates(lines: Iterable[str]) -> list[Update]:
    updates = []
    for line in lines:
        parts = line.split()
        if len(parts) == 3:
            updates.append((parts[0], parts[1], parts[2]))
    return updates


def refusals(updates: list[Update], may_rewrite_default: bool,
             default_ref: Callable[[], str | None],
             is_ancestor: Callable[[str, str], bool]) -> list[str]:
    """Why the push must be refused (empty: accept). ``default_ref`` is the branch HEAD
    points to, asked only when needed; ``is_ancestor(old, new)``: a fast-forward."""
    problems = []
    default: str | None = None
    asked = False
    for old, new, ref in updates:
        if not ref.startswith(ALLOWED_PREFIXES):
            problems.append(f"refusing {ref}: only branches (refs/heads/) and tags "
                            "(refs/tags/) may be pushed")
            continue
        if may_rewrite_default or not ref.startswith("refs/heads/"):
            continue
        if not asked:
            default, asked = default_ref(), True
        if ref != default or is_zero(old):
            continue
        if is_zero(new):
            problems.append(f"refusing to delete the default branch {ref}: only an admin "
                            "of the repository may")
        elif not is_ancestor(old, new):
            problems.append(f"refusing to rewrite the default branch {ref} (not a "
                            f"fast-forward from {old[:12]} to {new[:12]}): only an admin of "
                            "the repository may")
    return problems


def _git(*args: str) -> subprocess.CompletedProcess[bytes]:
    """git in the repository being pushed to (git set GIT_DIR and the quarantine for us)."""
    return subprocess.run(["git", *args], stdin=subprocess.DEVNULL, capture_output=True,
                          check=False)


def _default_ref() -> str | None:
    done = _git("symbolic-ref", "-q", "HEAD")
    if done.returncode != 0:
        return None  # HEAD is detached: no default branch to protect
    return done.stdout.decode().strip() or None


def _is_ancestor(old: str, new: str) -> bool:
    """0: an ancestor; 1: not; anything else (not a commit, missing): not either."""
    return _git("merge-base", "--is-ancestor", old, new).returncode == 0


def pre_receive(lines: Iterable[str], env: dict[str, str]) -> tuple[int, list[str]]:
    """(exit status, messages for the pusher)."""
    try:
        rules = json.loads(env[RULES_ENV])
        may_rewrite = rules["may_rewrite_default"]
    except (KeyError, ValueError, TypeError):
        return 1, ["push refused: the server's push rules are missing (this hook only "
                   "judges pushes made through rpcserver)"]
    problems = refusals(parse_updates(lines), may_rewrite is True, _default_ref,
                        _is_ancestor)
    return (1 if problems else 0), problems


def post_receive(lines: Iterable[str], env: dict[str, str]) -> int:
    record = env.get(RECORD_ENV)
    if not record:
        return 0
    with open(record, "w", encoding="utf-8") as out:
        for old, new, ref in parse_updates(lines):
            out.write(json.dumps({"ref": ref, "old": old, "new": new}) + "\n")
    return 0


def main(argv: list[str]) -> int:
    name = argv[1] if len(argv) > 1 else ""
    env = dict(os.environ)
    if name == "pre-receive":
        status, messages = pre_receive(sys.stdin, env)
        for message in messages:
            print(message, file=sys.stderr)
        return status
    if name == "post-receive":
        return post_receive(sys.stdin, env)
    print(f"rpcserver hook: unknown hook {name!r}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
