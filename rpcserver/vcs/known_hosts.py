"""The server's own ssh known_hosts: the only host keys an ``ssh://`` clone_uri may meet.

ssh runs with ``StrictHostKeyChecking=yes`` against this file alone (``Git.ssh_command``), so
a mirror over ssh works only for a host whose key the admin added, and a host pinned to its
checked address is looked up under its name (``HostKeyAlias``). Entries are written in
OpenSSH's format: ``host key-type base64`` or ``[host]:port key-type base64``. Nothing here
dials out: the admin brings the key (e.g. from ``ssh-keyscan`` run by hand, or the remote
host's ``/etc/ssh/ssh_host_*_key.pub``).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

KEY_TYPES = frozenset({
    "ssh-ed25519", "ssh-rsa", "ecdsa-sha2-nistp256", "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521", "sk-ssh-ed25519@openssh.com", "sk-ecdsa-sha2-nistp256@openssh.com",
})
_HOST = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9.-]{0,252})$|^[0-9A-Fa-f:.]+$")


class KnownHostsError(ValueError):
    """A host or key that cannot be stored; the message says why."""


@dataclass(frozen=True)
class Entry:
    host: str
    port: int
    key_type: str
    key: str

    @property
    def pattern(self) -> str:
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"

    def line(self) -> str:
        return f"{self.pattern} {self.key_type} {self.key}"


def parse_key(host: str, port: int, text: str) -> Entry:
    """An entry for ``host``:``port`` from a public key line (``type base64 [comment]``, or a
    ``ssh-keyscan`` line that starts with a host)."""
    if not _HOST.fullmatch(host) or host.startswith("-"):
        raise KnownHostsError(f"`{host}` is not a host name or address")
    if not 1 <= port <= 65535:
        raise KnownHostsError(f"port {port} is out of range")
    fields = text.split()
    if fields and fields[0] not in KEY_TYPES and len(fields) >= 3:
        fields = fields[1:]  # ssh-keyscan's "host type key"
    if len(fields) < 2 or fields[0] not in KEY_TYPES:
        raise KnownHostsError("expected a public key: `<type> <base64>` (e.g. ssh-ed25519 AAAA...)")
    try:
        blob = base64.b64decode(fields[1], validate=True)
    except (binascii.Error, ValueError):
        raise KnownHostsError("the key is not valid base64") from None
    if fields[0].encode() not in blob[:64]:
        raise KnownHostsError("the key's data does not match its type")
    return Entry(host=host.lower(), port=port, key_type=fields[0], key=fields[1])


def read(path: Path) -> list[Entry]:
    entries = []
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return []
    for line in lines:
        fields = line.split()
        if len(fields) < 3 or line.startswith("#"):
            continue
        pattern = fields[0]
        if pattern.startswith("["):
            host, _, port = pattern[1:].partition("]:")
            entries.append(Entry(host, int(port), fields[1], fields[2]))
        else:
            entries.append(Entry(pattern, 22, fields[1], fields[2]))
    return entries


def add(path: Path, entry: Entry) -> bool:
    """Store ``entry``; False when it was there already."""
    entries = read(path)
    if entry in entries:
        return False
    _write(path, [*entries, entry])
    return True


def remove(path: Path, host: str, port: int | None = None) -> int:
    """Remove every key of ``host`` (on ``port`` only, when given); how many were removed."""
    entries = read(path)
    kept = [e for e in entries
            if not (e.host == host.lower() and (port is None or e.port == port))]
    if len(kept) != len(entries):
        _write(path, kept)
    return len(entries) - len(kept)


def _write(path: Path, entries: list[Entry]) -> None:
    """Replace the file at once (a fetch may be reading it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".known_hosts-")
    with os.fdopen(fd, "w") as fh:
        fh.writelines(entry.line() + "\n" for entry in entries)
    os.replace(tmp, path)
