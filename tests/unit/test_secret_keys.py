"""The secret key file: its format, its errors (which never echo a key) and its making."""

from __future__ import annotations

import os
import stat
import threading
from pathlib import Path

import pytest

from rpcserver.core.config import Config
from rpcserver.domain import secret_keys


def test_the_first_key_encrypts_and_every_key_decrypts(tmp_path: Path) -> None:
    path = tmp_path / "secret.keys"
    old, new = secret_keys.new_key(), secret_keys.new_key()
    secret_keys.write(path, [old])
    token = secret_keys.current(str(path)).encrypt("https://u:pw@h/r")
    secret_keys.write(path, [new, old])
    both = secret_keys.current(str(path))  # the changed file is read again
    assert both.decrypt(token) == "https://u:pw@h/r"
    rotated = both.reencrypt(token)
    secret_keys.write(path, [new])
    assert secret_keys.current(str(path)).decrypt(rotated) == "https://u:pw@h/r"
    with pytest.raises(secret_keys.Undecryptable, match="none of the 1 key"):
        secret_keys.current(str(path)).decrypt(token)


def test_comments_and_blank_lines_are_ignored(tmp_path: Path) -> None:
    key = secret_keys.new_key()
    path = tmp_path / "k"
    path.write_text(f"# mine\n\n  {key.decode()}  \n# old ones below\n")
    assert secret_keys.read(path).keys == (key,)


@pytest.mark.parametrize(("content", "message"), [
    ("", "holds no key"),
    ("# only a comment\n", "holds no key"),
    ("not-a-key-at-all\n", "line 1: not a Fernet key"),
    ("\u00e9\n", "not ASCII text"),
])
def test_a_bad_key_file_is_a_clear_error_that_shows_no_key(tmp_path: Path, content: str,
                                                            message: str) -> None:
    path = tmp_path / "k"
    path.write_text(content, "utf-8")
    with pytest.raises(secret_keys.KeyFileError, match=message) as caught:
        secret_keys.read(path)
    assert str(path) in str(caught.value) and "not-a-key-at-all" not in str(caught.value)


def test_a_missing_key_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(secret_keys.KeyFileError, match="does not exist"):
        secret_keys.current(str(tmp_path / "nope"))


def test_ensure_makes_one_private_file_even_when_workers_race(tmp_path: Path) -> None:
    path = tmp_path / "inst" / "secret.keys"
    results: list[bool] = []
    threads = [threading.Thread(target=lambda: results.append(secret_keys.ensure(path)))
               for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(results) == [False] * 7 + [True]
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert len(secret_keys.read(path).keys) == 1
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret.keys"]  # no temp files
    before = path.read_bytes()
    assert secret_keys.ensure(path) is False and path.read_bytes() == before


def test_the_key_file_setting_is_relative_to_the_config_file(tmp_path: Path) -> None:
    conf = tmp_path / "rpcserver.toml"
    conf.write_text('secret_key_file = "keys/k"\n')
    assert Config.load(conf, env={}).secret_key_file == str(tmp_path / "keys" / "k")
    conf.write_text("")
    assert Config.load(conf, env={}).secret_key_file == str(tmp_path / "secret.keys")
    env = {"RPCSERVER_SECRET_KEY_FILE": "/run/secrets/rpcserver.keys"}
    assert Config.load(conf, env=env).secret_key_file == "/run/secrets/rpcserver.keys"
