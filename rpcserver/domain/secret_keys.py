"""The server's secret keys: what encrypts the secrets it must be able to read back (a
clone_uri's password), so that a copy of the database alone does not give them away.

The keys live in a file of their own (``secret_key_file``, mode 0600, beside the config file
by default), one Fernet key per line; ``#`` lines and blank lines are ignored. The first key
encrypts, every key decrypts (``MultiFernet``), which is how keys are rotated
(docs/configuration.md). The file is made on first need: ``rpcserver init``, ``serve`` at
start-up, or the first secret stored. It is read on every use, so a running server sees a
new first key, or a removed old one, without a restart.
"""

from __future__ import annotations

import contextlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

HEADER = ("# rpcserver secret keys (Fernet), one a line: the first encrypts, all decrypt.\n"
          "# Keep this file private and backed up apart from the database; see\n"
          "# docs/configuration.md for rotating keys.\n")


class KeyFileError(Exception):
    """The key file cannot be used; the message names the file and why (never a key)."""


class Undecryptable(Exception):
    """A stored secret that none of the configured keys decrypts."""


@dataclass(frozen=True)
class Keyring:
    keys: tuple[bytes, ...]
    path: str

    def __post_init__(self) -> None:
        if not self.keys:
            raise KeyFileError(f"secret key file {self.path} holds no key")

    @property
    def _fernet(self) -> MultiFernet:
        return MultiFernet([Fernet(key) for key in self.keys])

    def encrypt(self, text: str) -> str:
        return self._fernet.encrypt(text.encode()).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode()
        except (InvalidToken, UnicodeError):
            raise Undecryptable(f"none of the {len(self.keys)} key(s) in {self.path} "
                                "decrypts it") from None

    def reencrypt(self, token: str) -> str:
        """``token`` encrypted again with the first key."""
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except (InvalidToken, UnicodeError):
            raise Undecryptable(f"none of the {len(self.keys)} key(s) in {self.path} "
                                "decrypts it") from None


def new_key() -> bytes:
    return Fernet.generate_key()


def read(path: str | os.PathLike[str]) -> Keyring:
    """The keys in ``path``; ``KeyFileError`` if it is missing, unreadable or malformed."""
    file = Path(path)
    try:
        data = file.read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"secret key file {file} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"secret key file {file} cannot be read: {exc.strerror}") from None
    return _parse(data, str(file))


def _parse(data: bytes, name: str) -> Keyring:
    try:
        text = data.decode("ascii")
    except UnicodeError:
        raise KeyFileError(f"secret key file {name} cannot be read: not ASCII text") from None
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        try:
            Fernet(line.encode())
        except ValueError:
            raise KeyFileError(f"secret key file {name}, line {number}: not a Fernet key "
                               "(32 bytes, url-safe base64)") from None
        keys.append(line.encode())
    return Keyring(tuple(keys), name)


def write(path: str | os.PathLike[str], keys: list[bytes]) -> None:
    """Replace the key file atomically, mode 0600 from the start."""
    file = Path(path)
    file.parent.mkdir(parents=True, exist_ok=True)
    temp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    _write_private(temp, keys)
    os.replace(temp, file)


def ensure(path: str | os.PathLike[str]) -> bool:
    """Create the key file with one new key unless it exists; True if it was created.

    Several worker processes may get here at once: the file is written aside and linked into
    place, which fails for all but one, so every one of them ends up with the same key."""
    file = Path(path)
    if file.exists():
        return False
    file.parent.mkdir(parents=True, exist_ok=True)
    temp = file.with_name(f".{file.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    _write_private(temp, [new_key()])
    try:
        os.link(temp, file)
    except FileExistsError:
        return False
    finally:
        temp.unlink()
    return True


def _write_private(path: Path, keys: list[bytes]) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as fh:
        fh.write(HEADER + "".join(key.decode("ascii") + "\n" for key in keys))
        fh.flush()
        os.fsync(fh.fileno())


_cache: dict[str, tuple[bytes, Keyring]] = {}


def current(path: str, *, create: bool = False) -> Keyring:
    """The keys in ``path`` as the file is now; ``create`` makes the file first when it is
    missing. The file is read on every use (a few bytes, only when a secret is stored or a
    pull decrypts one), so a changed file takes effect at once; it is parsed again only when
    its content changed."""
    if create:
        ensure(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"secret key file {path} does not exist") from None
    except OSError as exc:
        raise KeyFileError(f"secret key file {path} cannot be read: {exc.strerror}") from None
    cached = _cache.get(path)
    if cached is not None and cached[0] == data:
        return cached[1]
    keyring = _parse(data, path)
    _cache[path] = (data, keyring)
    return keyring
