"""One frozen configuration, built from a TOML file and ``RPCSERVER_*`` environment variables.

Precedence: environment variable > config file > default. Relative paths in the file are taken
relative to the file's directory, so an instance directory can be moved as a whole.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

ENV_PREFIX = "RPCSERVER_"
CONFIG_FILE_NAME = "rpcserver.toml"


class ConfigError(Exception):
    """The configuration cannot be used; the message says which setting and why."""


@dataclasses.dataclass(frozen=True)
class Config:
    database_url: str = "sqlite:///rpcserver.db"
    repos_root: str = "repos"
    bind: str = "127.0.0.1:5000"
    workers: int = 2
    #: Threads per worker: a slow client or a long pull holds a thread, not a whole worker.
    threads: int = 4
    max_body_bytes: int = 1024 * 1024
    #: Seconds a connection may make no progress (send or receive nothing) before it is closed.
    idle_timeout: int = 60
    #: Open connections per worker process; slow clients cost a socket each, not a thread.
    connection_limit: int = 1000
    git_timeout: int = 300
    log_level: str = "INFO"
    clone_uri_allow_private_hosts: bool = False
    clone_uri_allow_local_paths: bool = False
    #: A fetch whose remote sends nothing for this long is killed (git_timeout caps the whole).
    git_stall_timeout: int = 60
    #: Network fetches (create_repo with clone_uri, pull) one user may run at once; 0: any.
    max_fetches_per_user: int = 2
    #: The longest an API key made through the API may live, in seconds (create_api_key's
    #: ``expires`` is bounded by it, and a key made without ``expires`` gets it); 0: no bound.
    max_key_lifetime: int = 0
    #: Failed authentications from one address (or for one username) within
    #: ``failed_login_window`` seconds before further calls are refused for a while; 0: no limit.
    max_failed_logins: int = 20
    failed_login_window: int = 60
    #: The name ``/_admin/token`` answers for (its ``service`` parameter).
    token_service: str = "rpcserver"  # noqa: S105 (a service name, not a secret)
    #: How long an exchanged token lives, in seconds (at least 60).
    token_expires_in: int = 3600
    #: The most items a list method (get_users, get_repos, ...) answers without ``n``; a
    #: longer list is refused with a hint to page (``n``, ``last``), never cut short.
    max_list_items: int = 10_000
    #: The keys that encrypt stored clone_uri passwords; made on first need.
    secret_key_file: str = "secret.keys"  # noqa: S105 (a file name, not a secret)
    #: The server's address as git clients see it: a repository's clone URL is
    #: ``<public_url>/<full name>``. Empty: ``http://<bind>`` (docs/serving.md).
    public_url: str = ""
    #: Whether clients without credentials may clone and fetch what ``default`` may read.
    anonymous_clone: bool = False
    #: The largest git push accepted: its request body (the API's bound is
    #: ``max_body_bytes``) and the pack git receives (``receive.maxInputSize``).
    max_push_bytes: int = 2 * 1024 ** 3
    #: How long a git client's successful password check is remembered (0: never).
    password_cache_seconds: int = 60
    #: Where this config was read from (None: defaults and environment only).
    path: str | None = None

    @classmethod
    def load(cls, path: str | os.PathLike[str] | None = None,
             env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        if path is None:
            path = env.get(ENV_PREFIX + "CONFIG") or None
        values: dict[str, Any] = {}
        base = Path.cwd()
        if path is not None:
            file = Path(path).resolve()
            try:
                with file.open("rb") as fh:
                    values = tomllib.load(fh)
            except FileNotFoundError:
                raise ConfigError(f"config file {file} does not exist") from None
            except tomllib.TOMLDecodeError as exc:
                raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None
            base = file.parent
            unknown = set(values) - _settings()
            if unknown:
                raise ConfigError(f"unknown setting(s) in {file}: {', '.join(sorted(unknown))}")
            values = {k: _check_type(k, v) for k, v in values.items()}
        for name in _settings():
            raw = env.get(ENV_PREFIX + name.upper())
            if raw is not None:
                values[name] = _from_env(name, raw)
        config = cls(**values, path=str(Path(path).resolve()) if path is not None else None)
        return config._resolved(base)

    def _resolved(self, base: Path) -> Config:
        """Make relative paths absolute against ``base`` and check value ranges."""
        repos_root = str((base / self.repos_root).resolve())
        if not self.secret_key_file:
            raise ConfigError("secret_key_file must not be empty")
        secret_key_file = str((base / self.secret_key_file).resolve())
        db = self.database_url
        prefix = "sqlite:///"
        if db.startswith(prefix) and db != prefix + ":memory:" and not db.startswith(prefix + "/"):
            db = prefix + str((base / db[len(prefix):]).resolve())
        if self.workers < 1:
            raise ConfigError("workers must be at least 1")
        if self.threads < 1:
            raise ConfigError("threads must be at least 1")
        if self.max_body_bytes < 1024:
            raise ConfigError("max_body_bytes must be at least 1024")
        if self.idle_timeout < 1:
            raise ConfigError("idle_timeout must be at least 1 second")
        if self.connection_limit < 1:
            raise ConfigError("connection_limit must be at least 1")
        if self.git_timeout < 1:
            raise ConfigError("git_timeout must be at least 1 second")
        if not 1 <= self.git_stall_timeout <= self.git_timeout:
            raise ConfigError("git_stall_timeout must be at least 1 second and at most "
                              "git_timeout")
        if self.max_key_lifetime < 0:
            raise ConfigError("max_key_lifetime must be 0 (no bound) or more seconds")
        if self.max_failed_logins < 0 or self.failed_login_window < 1:
            raise ConfigError("max_failed_logins must be 0 (no limit) or more, and "
                              "failed_login_window at least 1 second")
        if self.token_expires_in < 60:
            raise ConfigError("token_expires_in must be at least 60 seconds")
        if not self.token_service:
            raise ConfigError("token_service must not be empty")
        if self.max_fetches_per_user < 0:
            raise ConfigError("max_fetches_per_user must be 0 (no limit) or more")
        if self.max_list_items < 1:
            raise ConfigError("max_list_items must be at least 1")
        if self.max_push_bytes < self.max_body_bytes:
            raise ConfigError("max_push_bytes must be at least max_body_bytes")
        if self.password_cache_seconds < 0:
            raise ConfigError("password_cache_seconds must be 0 (no cache) or more")
        public_url = self.public_url.rstrip("/")
        if public_url and not public_url.startswith(("http://", "https://")):
            raise ConfigError("public_url must start with http:// or https://")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ConfigError(f"log_level {self.log_level!r} is not a logging level")
        return dataclasses.replace(self, repos_root=repos_root, database_url=db,
                                   log_level=self.log_level.upper(), public_url=public_url,
                                   secret_key_file=secret_key_file)

    def file_values(self) -> dict[str, Any]:
        """The settings as written to a config file by ``rpcserver init``."""
        data = dataclasses.asdict(self)
        data.pop("path")
        return data

    def public_base(self, bind: str | None = None) -> str:
        """``public_url``, or ``http://<bind>`` when it is not set (``bind``: the address
        actually served, which ``rpcserver serve --bind`` may change)."""
        return self.public_url or f"http://{_loopback(bind or self.bind)}"


def _loopback(bind: str) -> str:
    """``bind`` as a client can reach it: a wildcard address becomes the loopback."""
    host, _, port = bind.rpartition(":")
    if host in ("", "0.0.0.0", "[::]", "::"):  # noqa: S104 (recognised, not bound)
        host = "127.0.0.1"
    return f"{host}:{port}"


def _fields() -> dict[str, dataclasses.Field[Any]]:
    return {f.name: f for f in dataclasses.fields(Config) if f.name != "path"}


def _settings() -> set[str]:
    return set(_fields())


def _type_of(name: str) -> type:
    default = _fields()[name].default
    return type(default)


def _check_type(name: str, value: Any) -> Any:
    wanted = _type_of(name)
    if (wanted is int and isinstance(value, bool)) or not isinstance(value, wanted):
        kind = {int: "a whole number", bool: "true or false", str: "a string"}[wanted]
        raise ConfigError(f"setting {name} must be {kind}, not {value!r}")
    return value


def _from_env(name: str, raw: str) -> Any:
    wanted = _type_of(name)
    var = ENV_PREFIX + name.upper()
    if wanted is bool:
        lowered = raw.strip().lower()
        if lowered in {"1", "true", "yes", "on"}:
            return True
        if lowered in {"0", "false", "no", "off", ""}:
            return False
        raise ConfigError(f"{var} must be true or false, not {raw!r}")
    if wanted is int:
        try:
            return int(raw)
        except ValueError:
            raise ConfigError(f"{var} must be a whole number, not {raw!r}") from None
    return raw
