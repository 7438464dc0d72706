"""`rpc-api` as a subprocess against a real `rpcserver serve`: output, exit codes, typed args."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from client.exitcodes import ExitCode
from tests.client.conftest import RPC_API, RpcApi, StubServer
from tests.server_process import ServerProcess


@pytest.fixture
def cli(rpc_api: RpcApi, live_server: ServerProcess) -> RpcApi:
    """rpc-api pointed at the live server through the environment."""
    rpc_api.env["RPC_API_HOST"] = live_server.url
    rpc_api.env["RPC_API_KEY"] = live_server.admin_key
    return rpc_api


# --- the kallithea-api invocations from Kallithea's documentation --------------------------


def test_documented_kallithea_api_invocation_works_unchanged(
    rpc_api: RpcApi, live_server: ServerProcess
) -> None:
    done = rpc_api(f"--apihost={live_server.url}", f"--apikey={live_server.admin_key}", "get_user")
    assert done.returncode == ExitCode.OK, done.stderr
    assert json.loads(done.stdout)["username"] == "admin"
    assert done.stderr == f"Calling method get_user => {live_server.api_url}\n"


def test_documented_get_repo_invocation_reaches_the_server(
    rpc_api: RpcApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    missing = unique("myrepo")
    done = rpc_api(
        f"--apihost={live_server.url}",
        f"--apikey={live_server.admin_key}",
        "get_repo",
        f"repoid:{missing}",
    )
    # Before repositories land the server lacks get_repo; either way the call arrived intact.
    assert done.stderr.splitlines()[-1] in (
        "ERROR: No such method: get_repo",
        f"ERROR: repository `{missing}` does not exist",
    )
    assert done.returncode == ExitCode.API_ERROR


def test_options_may_follow_the_method_as_with_argparse(cli: RpcApi) -> None:
    done = cli("test", "args:x", "--format", "json")
    assert done.returncode == ExitCode.OK, done.stderr
    assert done.stdout == '"x"\n'


# --- output -------------------------------------------------------------------------------


def test_json_format_prints_only_the_result_on_one_line(cli: RpcApi) -> None:
    done = cli("--format=json", "get_user")
    assert done.returncode == ExitCode.OK
    assert done.stderr == ""
    assert done.stdout.count("\n") == 1
    user = json.loads(done.stdout)
    assert list(user)[:2] == ["user_id", "username"]
    assert user["username"] == "admin"


def test_pretty_format_is_indented_and_keeps_non_ascii(cli: RpcApi) -> None:
    done = cli("test", 'args:={"name": "Zoë", "n": [1]}')
    assert done.returncode == ExitCode.OK
    assert done.stdout == '{\n    "name": "Zoë",\n    "n": [\n        1\n    ]\n}\n'
    json_done = cli("--format=json", "test", 'args:={"name": "Zoë"}')
    assert json_done.stdout == '{"name": "Zo\\u00eb"}\n'


def test_pretty_format_prints_a_text_result_as_text(cli: RpcApi) -> None:
    done = cli("test", "args:Pulled from `r`")
    assert done.stdout == "Pulled from `r`\n"


# --- exit codes ---------------------------------------------------------------------------


def test_exit_0_on_success(cli: RpcApi) -> None:
    assert cli("test", "args:1").returncode == ExitCode.OK == 0


def test_exit_1_when_the_server_answers_an_error(cli: RpcApi, unique: Callable[[str], str]) -> None:
    nobody = unique("nobody")
    for output_format in ("pretty", "json"):
        done = cli("--format", output_format, "get_user", f"userid:{nobody}")
        assert done.returncode == ExitCode.API_ERROR == 1
        assert done.stdout == ""
        assert done.stderr.splitlines()[-1] == f"ERROR: user `{nobody}` does not exist"


def test_exit_1_for_an_unknown_method(cli: RpcApi) -> None:
    done = cli("--format=json", "no_such_method")
    assert done.returncode == ExitCode.API_ERROR
    assert done.stderr == "ERROR: No such method: no_such_method\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "Error: Please specify method name"),
        (("test", "args"), "Error: argument 'args' is not key:value or key:=json"),
        (("test", ":value"), "Error: argument ':value' is not key:value or key:=json"),
        (("test", "args:=[1,"), "Error: argument 'args': '[1,' is not JSON"),
        (("test", "args:1", "args:2"), "Error: argument 'args' is given twice"),
        (("--format=xml", "test"), "Error: Invalid value for '--format'"),
        (("--bogus", "test"), "Error: No such option"),
        (("--timeout=0", "test"), "Error: Invalid value for '--timeout'"),
    ],
)
def test_exit_2_on_usage_errors(cli: RpcApi, args: tuple[str, ...], message: str) -> None:
    done = cli(*args)
    assert done.returncode == ExitCode.USAGE == 2
    assert done.stdout == ""
    assert message in done.stderr
    assert "Usage: rpc-api" in done.stderr


def test_exit_2_without_host_or_key(rpc_api: RpcApi) -> None:
    done = rpc_api("get_user")
    assert done.returncode == ExitCode.USAGE
    assert "missing API host or key" in done.stderr


def test_exit_2_for_a_url_that_is_not_http(rpc_api: RpcApi) -> None:
    done = rpc_api("--apihost=localhost:5000", "--apikey=k", "get_user")
    assert done.returncode == ExitCode.USAGE
    assert "API host must be an http:// or https:// URL, got 'localhost:5000'" in done.stderr


def test_exit_3_when_nothing_listens(rpc_api: RpcApi, refused_url: str) -> None:
    done = rpc_api(f"--apihost={refused_url}", "--apikey=k", "--format=json", "get_user")
    assert done.returncode == ExitCode.CONNECTION == 3
    assert done.stdout == ""
    assert done.stderr.startswith(f"rpc-api: cannot connect to {refused_url}/_admin/api: ")
    assert "Traceback" not in done.stderr


def test_exit_3_on_timeout(rpc_api: RpcApi, stub_server: StubServer) -> None:
    stub_server.delay = 10
    done = rpc_api(
        f"--apihost={stub_server.url}", "--apikey=k", "--timeout=0.5", "--format=json", "test"
    )
    assert done.returncode == ExitCode.CONNECTION
    assert done.stderr == (
        f"rpc-api: no answer from {stub_server.url}/_admin/api within 0.5s "
        "(the call may still complete on the server)\n"
    )


def test_exit_3_when_the_url_is_not_the_api(rpc_api: RpcApi, live_server: ServerProcess) -> None:
    done = rpc_api(
        f"--apihost={live_server.url}/not-here", f"--apikey={live_server.admin_key}", "get_user"
    )
    assert done.returncode == ExitCode.CONNECTION
    assert "HTTP 404" in done.stderr
    assert "not an API endpoint (check the API host)" in done.stderr


def test_exit_4_for_a_bad_key(rpc_api: RpcApi, live_server: ServerProcess) -> None:
    done = rpc_api(f"--apihost={live_server.url}", "--apikey=rpck_wrong", "--format=json", "test")
    assert done.returncode == ExitCode.INVALID_API_KEY == 4
    assert done.stdout == ""
    assert done.stderr == "ERROR: Invalid API key\n"


def test_the_key_is_never_printed(rpc_api: RpcApi, live_server: ServerProcess) -> None:
    key = live_server.admin_key
    for args in (("get_user",), ("no_such_method",), ("test", "args"), ("--save-config",)):
        done = rpc_api(f"--apihost={live_server.url}", f"--apikey={key}", *args)
        assert key not in done.stdout + done.stderr


# --- typed arguments ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arg", "sent"),
    [
        ("args:false", "false"),
        ("args:=false", False),
        ("args:5", "5"),
        ("args:=5", 5),
        ("args:=2.5", 2.5),
        ('args:="quoted"', "quoted"),
        ('args:=["a","b"]', ["a", "b"]),
        ('args:={"active": false, "max_revisions": 5}', {"active": False, "max_revisions": 5}),
        ('args:{"not": "parsed"}', '{"not": "parsed"}'),
        ("args:http://host:8080/x", "http://host:8080/x"),
        ("args:", ""),
    ],
)
def test_key_value_is_a_string_and_key_colon_equals_is_json(
    cli: RpcApi, arg: str, sent: object
) -> None:
    assert cli.json("test", arg) == sent


def test_typed_args_reach_a_real_method(cli: RpcApi, unique: Callable[[str], str]) -> None:
    name = unique("typed")
    created = cli.json(
        "create_user", f"username:{name}", f"email:{name}@example.com", "active:=false"
    )
    assert created["user"]["active"] is False
    # kallithea-api habit: a plain "true"/"false" is a string, which the server takes for the
    # boolean; any other string is refused.
    assert cli.json("update_user", f"userid:{name}", "active:true")["user"]["active"] is True
    done = cli("update_user", f"userid:{name}", "active:nope")
    assert done.returncode == ExitCode.API_ERROR
    assert done.stderr.splitlines()[-1].startswith("ERROR: Invalid `active` arg in JSON DATA")
    assert cli.json("update_user", f"userid:{name}", "active:=false")["user"]["active"] is False


# --- args from a file or stdin ------------------------------------------------------------


def test_args_from_stdin(cli: RpcApi) -> None:
    assert cli.json("--args-file", "-", "test", input='{"args": {"k": [1, null]}}') == {
        "k": [1, None]
    }


def test_args_file_keys_are_overridden_by_the_command_line(cli: RpcApi, tmp_path: Path) -> None:
    path = tmp_path / "args.json"
    path.write_text('{"args": "from file"}')
    assert cli.json("--args-file", str(path), "test") == "from file"
    assert cli.json("--args-file", str(path), "test", "args:=7") == 7


def test_args_from_stdin_create_a_user(cli: RpcApi, unique: Callable[[str], str]) -> None:
    name = unique("stdin")
    body = json.dumps({"username": name, "email": f"{name}@example.com", "admin": False})
    created = cli.json("--args-file=-", "create_user", input=body)
    assert created["msg"] == f"created new user `{name}`"


@pytest.mark.parametrize(
    ("stdin", "message"),
    [
        ("{not json", "args file <stdin> is not valid JSON"),
        ("[1, 2]", "args file <stdin> must hold a JSON object, not an array"),
        ("", "args file <stdin> is not valid JSON"),
    ],
)
def test_bad_args_from_stdin_are_usage_errors(cli: RpcApi, stdin: str, message: str) -> None:
    done = cli("--args-file", "-", "test", input=stdin)
    assert done.returncode == ExitCode.USAGE
    assert message in done.stderr


def test_missing_args_file_is_a_usage_error(cli: RpcApi, tmp_path: Path) -> None:
    done = cli("--args-file", str(tmp_path / "nope.json"), "test")
    assert done.returncode == ExitCode.USAGE
    assert "No such file or directory" in done.stderr


# --- environment variables ----------------------------------------------------------------


def test_environment_is_enough(cli: RpcApi) -> None:
    assert cli.json("get_user")["username"] == "admin"


def test_flag_beats_environment_beats_config_file(
    rpc_api: RpcApi, live_server: ServerProcess, refused_url: str
) -> None:
    good, bad = live_server.admin_key, "rpck_wrong"
    rpc_api.config_file.parent.mkdir(parents=True)
    rpc_api.config_file.write_text(json.dumps({"apikey": bad, "apihost": refused_url}))

    # the file alone: its host refuses connections
    assert rpc_api("get_user").returncode == ExitCode.CONNECTION
    # environment over file, for host and key separately
    env = {"RPC_API_HOST": live_server.url}
    assert rpc_api("get_user", env=env).returncode == ExitCode.INVALID_API_KEY
    env["RPC_API_KEY"] = good
    assert rpc_api("get_user", env=env).returncode == ExitCode.OK
    # flag over environment, both ways
    assert rpc_api("--apikey", bad, "get_user", env=env).returncode == ExitCode.INVALID_API_KEY
    env_bad = {"RPC_API_HOST": refused_url, "RPC_API_KEY": bad}
    done = rpc_api(f"--apihost={live_server.url}", f"--apikey={good}", "get_user", env=env_bad)
    assert done.returncode == ExitCode.OK


def test_ctrl_c_exits_130_not_1(rpc_api: RpcApi, stub_server: StubServer) -> None:
    stub_server.delay = 30
    process = subprocess.Popen(
        [str(RPC_API), f"--apihost={stub_server.url}", "--apikey=k", "pull", "repoid:r"],
        env=rpc_api.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        # As from a terminal: a shell's background job (CI) starts children with SIGINT
        # ignored, and Python then never raises KeyboardInterrupt.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    deadline = time.monotonic() + 20
    while not stub_server.requests and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stub_server.requests, "the call never reached the server"
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == ExitCode.INTERRUPTED == 130
    assert stdout == ""
    assert stderr.endswith("rpc-api: interrupted (a call already sent may complete)\n")


def test_a_reader_that_leaves_early_gets_no_traceback(
    rpc_api: RpcApi, stub_server: StubServer
) -> None:
    stub_server.delay = 0.5  # the reader is surely gone when the result is printed
    command = f"'{RPC_API}' --apihost={stub_server.url} --apikey=k test args:x"
    done = subprocess.run(
        ["bash", "-c", f"{command} | true; exit ${{PIPESTATUS[0]}}"],
        env=rpc_api.env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == ExitCode.BROKEN_PIPE == 141
    assert done.stderr == f"Calling method test => {stub_server.url}/_admin/api\n"


def test_get_repo_pretty_output_ends_with_the_clone_url(
    rpc_api: RpcApi, live_server: ServerProcess, unique: Callable[[str], str]
) -> None:
    name = unique("clonable")
    assert live_server.call("create_repo", repo_name=name)["error"] is None
    base = [f"--apihost={live_server.url}", f"--apikey={live_server.admin_key}"]
    done = rpc_api(*base, "get_repo", f"repoid:{name}")
    assert done.returncode == ExitCode.OK, done.stderr
    assert done.stdout.splitlines()[-1] == f"clone URL: {live_server.url}/{name}"
    # The answer itself gains no key, and the json format prints only the answer.
    done = rpc_api(*base, "--format=json", "get_repo", f"repoid:{name}")
    answer = json.loads(done.stdout)
    assert "clone_url" not in answer and answer["repo_name"] == name
