"""The server's own Mercurial hooks for a push through hgweb: the push rules, and the record
of what the push changed (docs/push-rules.md).

``hgweb_cgi.py`` loads this file by its path and installs ``HOOKS`` as in-process Python hooks,
in the configuration of that one request only (no hgrc names them, and a repository's own
``.hg/hgrc`` is never read: ``HGRCSKIPREPO``). It imports the standard library only; the
Mercurial objects it works on are the ones hg hands to a hook.

hg only appends changesets, so a push cannot rewrite or delete a named branch; the rules that
matter for hg are the ones about what plays the part of git's default branch:

- named branch ``default`` may be closed (its last open head) by an admin of the repository
  only;
- bookmark ``@`` (what a clone checks out) may be deleted or moved to a changeset that does not
  descend from where it was by an admin of the repository only;
- ``pushkey`` takes bookmarks and phases only (the server takes no obsolescence markers).
"""

from __future__ import annotations

import binascii
import json
import os
from collections.abc import Callable, Mapping
from typing import Any

#: The push rules as JSON (``vcs.model.PushRules``), as git's hook reads them.
RULES_ENV = "RPCSERVER_PUSH_RULES"
#: The file the applied updates are written to (``vcs.push_record``).
RECORD_ENV = "RPCSERVER_PUSH_RECORD"
DEFAULT_BRANCH = "default"
DEFAULT_BOOKMARK = "@"
PUSHKEY_NAMESPACES = ("bookmarks", "phases")
ZERO = "0" * 40

#: What each transaction started from (by its ``txnid``): ref -> node, see ``snapshot``.
_before: dict[str, dict[str, str]] = {}


def refusal_of_pushkey(namespace: str, key: str, old: str, new: str, may_rewrite: bool,
                       is_ancestor: Callable[[str, str], bool]) -> str | None:
    """Why a pushkey (a bookmark or phase move) must be refused; None: accept.
    ``is_ancestor(old, new)`` for nodes in hex."""
    if namespace not in PUSHKEY_NAMESPACES:
        return (f"refusing pushkey namespace {namespace}: only bookmarks and phases may be "
                "pushed")
    if namespace != "bookmarks" or key != DEFAULT_BOOKMARK or may_rewrite or not old:
        return None
    if not new:
        return (f"refusing to delete the default bookmark {key}: only an admin of the "
                "repository may")
    if not is_ancestor(old, new):
        return (f"refusing to move the default bookmark {key} (not a descendant: from "
                f"{old[:12]} to {new[:12]}): only an admin of the repository may")
    return None


def refusal_of_heads(before: Mapping[str, str], after: Mapping[str, str],
                     may_rewrite: bool) -> str | None:
    """Why a changegroup must be refused, from the refs before and with it (``snapshot``)."""
    ref = f"branch/{DEFAULT_BRANCH}"
    if not may_rewrite and ref in before and ref not in after:
        return (f"refusing to close the default branch {DEFAULT_BRANCH}: only an admin of "
                "the repository may")
    return None


def updates(before: Mapping[str, str], after: Mapping[str, str]) -> list[dict[str, str]]:
    """The refs that changed, as ``vcs.push_record`` reads them (all zeros: absent)."""
    return [{"ref": ref, "old": before.get(ref, ZERO), "new": after.get(ref, ZERO)}
            for ref in sorted(set(before) | set(after))
            if before.get(ref) != after.get(ref)]


def snapshot(repo: Any) -> dict[str, str]:
    """Open named branches (their newest head), bookmarks and tags, as ``vcs.hg.repo``'s
    ``refs`` names them (``branch/``, ``bookmark/``, ``tag/``), with hex nodes."""
    repo = repo.unfiltered()
    found: dict[str, str] = {}
    for rev in repo.revs(b"sort(head() and not closed(), rev)"):
        ctx = repo[rev]
        found[f"branch/{_text(ctx.branch())}"] = _text(ctx.hex())
    for name, node in repo._bookmarks.items():
        found[f"bookmark/{_text(name)}"] = _hex(node)
    for name, node in repo.tags().items():
        if name != b"tip":
            found[f"tag/{_text(name)}"] = _hex(node)
    return found


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _hex(node: bytes) -> str:
    return binascii.hexlify(node).decode("ascii")


def _rules() -> dict[str, Any] | None:
    try:
        rules = json.loads(os.environ[RULES_ENV])
    except (KeyError, ValueError):
        return None
    return rules if isinstance(rules, dict) else None


def _refuse(ui: Any, message: str) -> bool:
    ui.warn(message.encode("utf-8") + b"\n")
    return True  # a Python hook that returns true fails


_MISSING = ("push refused: the server's push rules are missing (this hook only judges pushes "
            "made through rpcserver)")


def pretxnopen(ui: Any, repo: Any, txnid: bytes = b"", **kwargs: Any) -> bool:
    _before[_text(txnid)] = snapshot(repo)
    return False


def pretxnchangegroup(ui: Any, repo: Any, txnid: bytes = b"", **kwargs: Any) -> bool:
    rules = _rules()
    if rules is None:
        return _refuse(ui, _MISSING)
    problem = refusal_of_heads(_before.get(_text(txnid), {}), snapshot(repo),
                               rules.get("may_rewrite_default") is True)
    return _refuse(ui, problem) if problem else False


def prepushkey(ui: Any, repo: Any, namespace: bytes = b"", key: bytes = b"",
               old: bytes = b"", new: bytes = b"", **kwargs: Any) -> bool:
    rules = _rules()
    if rules is None:
        return _refuse(ui, _MISSING)
    changelog = repo.unfiltered().changelog

    def is_ancestor(a: str, b: str) -> bool:
        try:
            return bool(changelog.isancestor(binascii.unhexlify(a), binascii.unhexlify(b)))
        except Exception:  # an unknown node, a bad hex: not a descendant either
            return False

    problem = refusal_of_pushkey(_text(namespace), _text(key), _text(old), _text(new),
                                 rules.get("may_rewrite_default") is True, is_ancestor)
    return _refuse(ui, problem) if problem else False


def txnclose(ui: Any, repo: Any, txnid: bytes = b"", **kwargs: Any) -> bool:
    """Append what the transaction changed to the push's record."""
    before = _before.pop(_text(txnid), None)
    record = os.environ.get(RECORD_ENV)
    if before is None or not record:
        return False
    with open(record, "a", encoding="utf-8") as out:
        for update in updates(before, snapshot(repo)):
            out.write(json.dumps(update) + "\n")
    return False


#: Hook type -> function, as ``hgweb_cgi.py`` installs them.
HOOKS: dict[str, Callable[..., bool]] = {
    "pretxnopen": pretxnopen,
    "pretxnchangegroup": pretxnchangegroup,
    "prepushkey": prepushkey,
    "txnclose": txnclose,
}
