"""`--save-config`, the config file kallithea-api shares, and named profiles."""

from __future__ import annotations

import json
import stat
import subprocess
from pathlib import Path

from client.exitcodes import ExitCode
from tests.client.conftest import RPC_API, RpcApi
from tests.server_process import ServerProcess

HOST = "http://kallithea.example.com"
KEY = "rpck_saved-key-0123456789"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- save-config: kallithea-api's file, place and message ---------------------------------


def test_save_config_writes_kallithea_apis_file_with_mode_0600(rpc_api: RpcApi) -> None:
    done = rpc_api(f"--apihost={HOST}", f"--apikey={KEY}", "--save-config")
    assert done.returncode == ExitCode.OK
    assert done.stdout == ""
    assert done.stderr == f"Created new config in {rpc_api.config_file}\n"
    assert json.loads(rpc_api.config_file.read_text()) == {"apikey": KEY, "apihost": HOST}
    assert mode(rpc_api.config_file) == 0o600
    assert mode(rpc_api.config_file.parent) == 0o700


def test_save_config_is_0600_even_with_a_permissive_umask(rpc_api: RpcApi) -> None:
    done = subprocess.run(
        [str(RPC_API), f"--apihost={HOST}", f"--apikey={KEY}", "--save-config"],
        env=rpc_api.env,
        umask=0,
        capture_output=True,
        check=False,
    )
    assert done.returncode == ExitCode.OK
    assert mode(rpc_api.config_file) == 0o600


def test_save_config_again_updates_and_tightens_an_open_file(rpc_api: RpcApi) -> None:
    rpc_api.config_file.parent.mkdir(parents=True)
    rpc_api.config_file.write_text(json.dumps({"apikey": "old", "apihost": "http://old"}))
    rpc_api.config_file.chmod(0o644)
    done = rpc_api(f"--apihost={HOST}", f"--apikey={KEY}", "--save-config")
    assert done.stderr == f"Updated config in {rpc_api.config_file}\n"
    assert json.loads(rpc_api.config_file.read_text()) == {"apikey": KEY, "apihost": HOST}
    assert mode(rpc_api.config_file) == 0o600


def test_save_config_never_calls_the_server_and_ignores_a_method(rpc_api: RpcApi) -> None:
    # kallithea-api saves and exits; the host need not even be up.
    done = rpc_api("--apihost=http://127.0.0.1:9", f"--apikey={KEY}", "--save-config", "get_user")
    assert done.returncode == ExitCode.OK
    assert "Calling method" not in done.stderr


def test_save_config_takes_host_and_key_from_the_environment(rpc_api: RpcApi) -> None:
    done = rpc_api("--save-config", env={"RPC_API_HOST": HOST, "RPC_API_KEY": KEY})
    assert done.returncode == ExitCode.OK
    assert json.loads(rpc_api.config_file.read_text()) == {"apikey": KEY, "apihost": HOST}


def test_save_config_needs_both_host_and_key(rpc_api: RpcApi) -> None:
    done = rpc_api(f"--apihost={HOST}", "--save-config")
    assert done.returncode == ExitCode.USAGE
    assert "--save-config requires --apikey and --apihost" in done.stderr
    assert not rpc_api.config_file.exists()


def test_save_config_refuses_a_host_that_cannot_work(rpc_api: RpcApi) -> None:
    done = rpc_api("--apihost=kallithea.example.com", f"--apikey={KEY}", "--save-config")
    assert done.returncode == ExitCode.USAGE
    assert not rpc_api.config_file.exists()


def test_save_config_to_another_file(rpc_api: RpcApi, tmp_path: Path) -> None:
    path = tmp_path / "elsewhere" / "rpc.json"
    done = rpc_api(f"--config={path}", f"--apihost={HOST}", f"--apikey={KEY}", "--save-config")
    assert done.returncode == ExitCode.OK
    assert json.loads(path.read_text()) == {"apikey": KEY, "apihost": HOST}
    assert mode(path) == 0o600
    assert not rpc_api.config_file.exists()


def test_save_config_writes_through_a_symlinked_dotfile(rpc_api: RpcApi, tmp_path: Path) -> None:
    real = tmp_path / "dotfiles" / "kallithea"
    real.parent.mkdir()
    real.write_text("{}")
    rpc_api.config_file.parent.mkdir(parents=True)
    rpc_api.config_file.symlink_to(real)
    assert rpc_api(f"--apihost={HOST}", f"--apikey={KEY}", "--save-config").returncode == 0
    assert rpc_api.config_file.is_symlink()
    assert json.loads(real.read_text()) == {"apikey": KEY, "apihost": HOST}


# --- using the saved config ---------------------------------------------------------------


def test_saved_config_is_used(rpc_api: RpcApi, live_server: ServerProcess) -> None:
    saved = rpc_api(
        f"--apihost={live_server.url}", f"--apikey={live_server.admin_key}", "--save-config"
    )
    assert saved.returncode == ExitCode.OK
    assert rpc_api.json("get_user")["username"] == "admin"


def test_a_file_written_by_kallithea_api_is_read(
    rpc_api: RpcApi, live_server: ServerProcess
) -> None:
    rpc_api.config_file.parent.mkdir(parents=True)
    # kallithea-api's own layout: apikey first, 4-space indent, trailing newline.
    legacy = {"apikey": live_server.admin_key, "apihost": live_server.url + "/"}
    rpc_api.config_file.write_text(json.dumps(legacy, indent=4) + "\n")
    rpc_api.config_file.chmod(0o600)
    done = rpc_api("--format=json", "get_user")
    assert done.returncode == ExitCode.OK
    assert done.stderr == ""


def test_a_readable_config_file_gets_a_warning(rpc_api: RpcApi, live_server: ServerProcess) -> None:
    rpc_api.config_file.parent.mkdir(parents=True)
    saved = {"apikey": live_server.admin_key, "apihost": live_server.url}
    rpc_api.config_file.write_text(json.dumps(saved))
    rpc_api.config_file.chmod(0o644)
    done = rpc_api("--format=json", "get_user")
    assert done.returncode == ExitCode.OK
    path = rpc_api.config_file
    assert done.stderr == f"warning: {path} is readable by others; run: chmod 600 {path}\n"


def test_a_broken_config_file_is_a_usage_error(rpc_api: RpcApi) -> None:
    rpc_api.config_file.parent.mkdir(parents=True)
    rpc_api.config_file.write_text("{not json")
    done = rpc_api("get_user")
    assert done.returncode == ExitCode.USAGE
    assert f"config file {rpc_api.config_file} is not valid JSON" in done.stderr
    # and --save-config does not silently overwrite it (it may hold other profiles)
    done = rpc_api(f"--apihost={HOST}", f"--apikey={KEY}", "--save-config")
    assert done.returncode == ExitCode.USAGE
    assert rpc_api.config_file.read_text() == "{not json"


# --- profiles -----------------------------------------------------------------------------


def test_profiles_live_beside_the_legacy_entry(rpc_api: RpcApi, live_server: ServerProcess) -> None:
    legacy = ("--apihost=http://127.0.0.1:9", "--apikey=rpck_legacy")
    assert rpc_api(*legacy, "--save-config").returncode == ExitCode.OK
    live = (f"--apihost={live_server.url}", f"--apikey={live_server.admin_key}")
    done = rpc_api("--profile", "live", *live, "--save-config")
    assert done.returncode == ExitCode.OK
    assert done.stderr == f"Updated config in {rpc_api.config_file} (profile 'live')\n"

    saved = json.loads(rpc_api.config_file.read_text())
    # kallithea-api reads only these two keys: they must still be the legacy ones.
    assert saved["apikey"] == "rpck_legacy"
    assert saved["apihost"] == "http://127.0.0.1:9"
    assert saved["profiles"] == {
        "live": {"apikey": live_server.admin_key, "apihost": live_server.url}
    }
    assert mode(rpc_api.config_file) == 0o600

    assert rpc_api.json("--profile", "live", "get_user")["username"] == "admin"
    assert rpc_api.json("get_user", env={"RPC_API_PROFILE": "live"})["username"] == "admin"
    assert rpc_api("get_user").returncode == ExitCode.CONNECTION  # the legacy entry


def test_saving_the_default_keeps_the_profiles(rpc_api: RpcApi) -> None:
    rpc_api("--profile=a", f"--apihost={HOST}", "--apikey=rpck_a", "--save-config")
    rpc_api("--profile=b", f"--apihost={HOST}", "--apikey=rpck_b", "--save-config")
    rpc_api(f"--apihost={HOST}", f"--apikey={KEY}", "--save-config")
    saved = json.loads(rpc_api.config_file.read_text())
    assert saved["apikey"] == KEY
    assert sorted(saved["profiles"]) == ["a", "b"]
    assert saved["profiles"]["a"]["apikey"] == "rpck_a"


def test_an_unknown_profile_is_a_usage_error(rpc_api: RpcApi) -> None:
    rpc_api("--profile=prod", f"--apihost={HOST}", f"--apikey={KEY}", "--save-config")
    done = rpc_api("--profile=staging", "get_user")
    assert done.returncode == ExitCode.USAGE
    assert f"no profile 'staging' in {rpc_api.config_file} (known: prod)" in done.stderr


def test_flags_and_environment_beat_the_profile(
    rpc_api: RpcApi, live_server: ServerProcess
) -> None:
    rpc_api("--profile=p", "--apihost=http://127.0.0.1:9", "--apikey=rpck_wrong", "--save-config")
    assert rpc_api("--profile=p", "get_user").returncode == ExitCode.CONNECTION
    env = {"RPC_API_HOST": live_server.url}
    assert rpc_api("--profile=p", "get_user", env=env).returncode == ExitCode.INVALID_API_KEY
    done = rpc_api("--profile=p", f"--apikey={live_server.admin_key}", "get_user", env=env)
    assert done.returncode == ExitCode.OK
