from __future__ import annotations

from pathlib import Path

import pytest

from rpcserver.core.config import Config, ConfigError


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rpcserver.toml"
    path.write_text(text)
    return path


def test_defaults() -> None:
    config = Config.load(env={})
    assert (config.bind, config.workers, config.max_body_bytes) == ("127.0.0.1:5000", 2, 1 << 20)
    assert config.clone_uri_allow_private_hosts is False
    assert config.path is None


def test_relative_paths_are_relative_to_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'database_url = "sqlite:///data/x.db"\nrepos_root = "r"\n')
    config = Config.load(path, env={})
    assert config.database_url == f"sqlite:///{tmp_path}/data/x.db"
    assert config.repos_root == str(tmp_path / "r")
    assert config.path == str(path)


def test_environment_beats_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, 'bind = "0.0.0.0:80"\nworkers = 3\n')
    env = {"RPCSERVER_BIND": "127.0.0.1:9", "RPCSERVER_CLONE_URI_ALLOW_PRIVATE_HOSTS": "true"}
    config = Config.load(path, env=env)
    assert (config.bind, config.workers, config.clone_uri_allow_private_hosts) == (
        "127.0.0.1:9", 3, True)


def test_config_path_from_environment(tmp_path: Path) -> None:
    path = write(tmp_path, "workers = 5\n")
    assert Config.load(env={"RPCSERVER_CONFIG": str(path)}).workers == 5


def test_absolute_sqlite_and_other_urls_are_kept(tmp_path: Path) -> None:
    url = "postgresql+psycopg://u@h/db"
    assert Config.load(env={"RPCSERVER_DATABASE_URL": url}).database_url == url
    assert Config.load(env={"RPCSERVER_DATABASE_URL": "sqlite:////abs/x.db"}).database_url == (
        "sqlite:////abs/x.db")


@pytest.mark.parametrize(("text", "env", "message"), [
    ("workers = 'two'\n", {}, "setting workers must be a whole number"),
    ("workers = true\n", {}, "setting workers must be a whole number"),
    ("colour = 1\n", {}, "unknown setting(s)"),
    ("workers = \n", {}, "not valid TOML"),
    ("", {"RPCSERVER_WORKERS": "0"}, "workers must be at least 1"),
    ("", {"RPCSERVER_MAX_BODY_BYTES": "x"}, "RPCSERVER_MAX_BODY_BYTES must be a whole number"),
    ("", {"RPCSERVER_CLONE_URI_ALLOW_LOCAL_PATHS": "maybe"}, "must be true or false"),
    ("", {"RPCSERVER_LOG_LEVEL": "chatty"}, "is not a logging level"),
])
def test_bad_values_are_clear_errors(tmp_path: Path, text: str, env: dict[str, str],
                                     message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Config.load(write(tmp_path, text), env=env)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "nope.toml", env={})


def test_frozen() -> None:
    config = Config.load(env={})
    with pytest.raises(AttributeError):
        config.workers = 9  # type: ignore[misc]


def test_git_serving_settings() -> None:
    config = Config.load(env={})
    assert (config.public_url, config.anonymous_clone) == ("", False)
    assert config.max_push_bytes == 2 * 1024 ** 3 and config.password_cache_seconds == 60
    assert config.public_base() == "http://127.0.0.1:5000"
    assert config.public_base("0.0.0.0:8080") == "http://127.0.0.1:8080"
    custom = Config.load(env={"RPCSERVER_PUBLIC_URL": "https://git.example.com/",
                              "RPCSERVER_ANONYMOUS_CLONE": "true"})
    assert custom.public_base("0.0.0.0:8080") == "https://git.example.com"
    assert custom.anonymous_clone is True
    for env in ({"RPCSERVER_PUBLIC_URL": "git.example.com"},
                {"RPCSERVER_MAX_PUSH_BYTES": "1000"},
                {"RPCSERVER_PASSWORD_CACHE_SECONDS": "-1"}):
        with pytest.raises(ConfigError):
            Config.load(env=env)
