"""The file a push's server-owned hook writes what it changed to: one JSON object a line
(``ref``, ``old``, ``new``), named per push by the serving code. git's ``post-receive``
(``vcs.git.hook``) and Mercurial's ``txnclose`` (``vcs.hg.push_hook``) write it; the serving
code reads it for the push log."""

from __future__ import annotations

import json
from pathlib import Path

from rpcserver.vcs.model import RefUpdate


def read_record(record: Path) -> list[RefUpdate]:
    """The updates the push applied, as its hook wrote them; none when it did not run
    (nothing was applied, or the push was refused)."""
    try:
        text = record.read_text(encoding="utf-8")
    except FileNotFoundError:
        return []
    updates = []
    for line in text.splitlines():
        if line.strip():
            item = json.loads(line)
            updates.append(RefUpdate(ref=item["ref"], old=item["old"], new=item["new"]))
    return updates
