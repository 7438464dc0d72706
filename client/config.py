"""The saved connection settings: kallithea-api's file, plus named profiles.

The file is kallithea-api's, at the same place (`~/.config/kallithea`) and in the same JSON
shape, so both tools share it::

    {"apikey": "...", "apihost": "http://kallithea.example.com"}

A saved `username` (for `--auth basic` and `rpc-api token`) is one more key kallithea-api
ignores. Profiles live under one extra key that kallithea-api ignores, so the legacy top level stays
the default profile and old tools keep working::

    {"apikey": "...", "apihost": "...",
     "profiles": {"staging": {"apikey": "...", "apihost": "..."}}}
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: kallithea-api's file, below the home directory.
CONFIG_NAME = ".config/kallithea"
PROFILES_KEY = "profiles"


class ConfigError(Exception):
    """The config file exists but cannot be used; its message says which file and why."""


@dataclass(frozen=True)
class Saved:
    """Host, key and username from one profile of the file (any may be missing)."""

    apihost: str | None = None
    apikey: str | None = None
    username: str | None = None


def default_path() -> Path:
    """`~/.config/kallithea`, with HOME read as kallithea-api reads it (USERPROFILE on Windows)."""
    home = os.environ.get("HOME") or os.environ.get("USERPROFILE") or ""
    return Path(home, CONFIG_NAME).absolute()


def load(path: Path) -> dict[str, Any]:
    """The whole file as a dict; `{}` when it does not exist."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"config file {path} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a JSON object")
    return data


def is_private(path: Path) -> bool:
    """False when others may read the file (it holds API keys, like ~/.ssh keys)."""
    try:
        mode = path.stat().st_mode
    except OSError:
        return True
    return not mode & (stat.S_IRWXG | stat.S_IRWXO)


def read_profile(data: dict[str, Any], path: Path, profile: str | None) -> Saved:
    """Host and key of `profile` (None: the legacy top level) from the loaded file."""
    if profile is None:
        entry: Any = data
    else:
        profiles = data.get(PROFILES_KEY, {})
        if not isinstance(profiles, dict) or profile not in profiles:
            known = ", ".join(sorted(profiles)) if isinstance(profiles, dict) else ""
            hint = f" (known: {known})" if known else ""
            raise ConfigError(f"no profile {profile!r} in {path}{hint}")
        entry = profiles[profile]
        if not isinstance(entry, dict):
            raise ConfigError(f"profile {profile!r} in {path} must be a JSON object")
    return Saved(
        _text(entry.get("apihost"), "apihost", path),
        _text(entry.get("apikey"), "apikey", path),
        _text(entry.get("username"), "username", path),
    )


def _text(value: Any, key: str, path: Path) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    raise ConfigError(f"{key!r} in {path} must be a string")


def save(path: Path, apihost: str, apikey: str, profile: str | None = None,
         username: str | None = None) -> bool:
    """Store host and key, and the username if given (in `profile`, or at the top level);
    True if the file existed.

    Everything else in the file is kept, so saving a profile never drops the legacy entry and
    vice versa. The file is replaced atomically and is only ever readable by its owner.
    """
    data = load(path)
    existed = path.exists()
    entry = {"apikey": apikey, "apihost": apihost}
    if username:
        entry["username"] = username
    if profile is None:
        data.update(entry)
    else:
        profiles = data.setdefault(PROFILES_KEY, {})
        if not isinstance(profiles, dict):
            raise ConfigError(f"{PROFILES_KEY!r} in {path} must be a JSON object")
        profiles[profile] = entry
    _write_private(path, json.dumps(data, indent=4) + "\n")
    return existed


def _write_private(path: Path, text: str) -> None:
    # Write through a symlink (managed dotfiles) instead of replacing the link itself.
    target = path.resolve()
    target.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    # mkstemp creates the file 0600, so the key is never readable by others, not even briefly.
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass(frozen=True)
class Resolved:
    """The host, key and username to use, and whether the key came from the file (for the
    mode warning)."""

    apihost: str | None
    apikey: str | None
    key_from_file: bool
    username: str | None = None


def resolve(apihost: str | None, apikey: str | None, path: Path, profile: str | None,
            username: str | None = None) -> Resolved:
    """Each value from the flag or environment if given (click merges those), else the file.

    The file is only read when something is missing, so a broken file does not stand in the
    way of a fully specified command line; a named profile must exist either way.
    """
    if apihost and apikey and profile is None:
        return Resolved(apihost, apikey, key_from_file=False, username=username)
    saved = read_profile(load(path), path, profile)
    key_from_file = not apikey and saved.apikey is not None
    return Resolved(
        apihost or saved.apihost,
        apikey or saved.apikey,
        key_from_file=key_from_file,
        # The saved username belongs to the saved key: never paired with another key.
        username=username or (saved.username if key_from_file else None),
    )
