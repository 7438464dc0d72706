"""ssh:// and git:// clone URIs: an authority that parsers read differently is refused, git gets
a URL rebuilt from the checked parts with the host pinned to its checked address, and ssh runs
with no user config and only the server's own known host keys.

Where git is made to connect, it connects to loopback recorders: a fake ``ssh`` first on the
server's PATH that writes down its arguments, and a TCP listener that writes down what git
sends. No payload names an address git could dial off this machine: the "public" half of each
is a ``.invalid`` name, refused before anything resolves it.
"""

from __future__ import annotations

import dataclasses
import os
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from rpcserver.core.config import Config
from tests.conftest import Rpc
from tests.databases import scratch_database, server_url
from tests.gitremotes import leftovers, on_disk
from tests.security.conftest import err, ok
from tests.server_process import ServerProcess

REFUSED = "Invalid `clone_uri` arg in JSON DATA: "

#: Each would reach 127.0.0.1 or ::1 through ssh or git while ``urlsplit`` saw the .invalid
#: host (or another reading of the authority).
PAYLOADS = [
    "ssh://git@example.invalid#@127.0.0.1:443/x",
    "ssh://example.invalid?@127.0.0.1/x",
    "ssh://example.invalid#@[::1]/x",
    "ssh://example.invalid?x=@[::1]:22/x",
    "SSH://example.invalid#@127.0.0.1/x",
    "ssh://a@example.invalid@127.0.0.1/x",
    "ssh://a@@127.0.0.1/x",
    "ssh://example.invalid\\@127.0.0.1/x",
    "ssh://example.invalid @127.0.0.1/x",
    "ssh://example.invalid\t@127.0.0.1/x",
    "ssh://-oProxyCommand=touch%20pwned/x",
    "ssh://git@-oProxyCommand=x/x",
    "git://example.invalid#@127.0.0.1:9418/x",
    "git://example.invalid?@127.0.0.1/x",
    "git://a@b@127.0.0.1/x",
    "example.invalid#@127.0.0.1:x",
    "git@example.invalid#@127.0.0.1:x",
    "example.invalid?@[::1]:x",
]


@pytest.mark.parametrize("uri", PAYLOADS)
def test_ambiguous_authorities_are_refused(rpc: Rpc, config: Config, uri: str) -> None:
    assert err(rpc("create_repo", repo_name="r", clone_uri=uri)).startswith(REFUSED)
    ok(rpc("create_repo", repo_name="s"))
    assert err(rpc("update_repo", repoid="s", clone_uri=uri)).startswith(REFUSED)
    assert err(rpc("pull", repoid="s", clone_uri=uri)).startswith(REFUSED)
    assert ok(rpc("get_repo", repoid="s"))["clone_uri"] is None
    assert on_disk(config.repos_root) == ["s"] and leftovers(config.repos_root) == []


@pytest.mark.parametrize("uri", PAYLOADS[:5])
def test_ambiguous_authorities_are_refused_with_private_hosts_allowed(
        rpc: Rpc, config: Config, uri: str) -> None:
    """Allowing private hosts is no reason to let two parsers disagree."""
    lan = dataclasses.replace(config, clone_uri_allow_private_hosts=True)
    from rpcserver.core.errors import InvalidArg
    from rpcserver.domain.repositories import checked_source

    with pytest.raises(InvalidArg):
        checked_source(lan, uri, admin=True)


# -- git:// ---------------------------------------------------------------------------------


class Listener:
    """A loopback TCP server that records the first pkt-line of each connection, then closes."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.seen: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(5)
                self.seen.append(_first_pkt_line(conn))

    def close(self) -> None:
        self.sock.close()


def _first_pkt_line(conn: socket.socket) -> bytes:
    """The first pkt-line git sent, however TCP split it (its four hex digits give its length)."""
    data = b""
    try:
        while len(data) < 4 or len(data) < int(data[:4], 16):
            chunk = conn.recv(4096)
            if not chunk:
                break
            data += chunk
    except (OSError, ValueError):
        pass
    return data


@pytest.fixture
def listener() -> Iterator[Listener]:
    found = Listener()
    yield found
    found.close()


@pytest.fixture
def lan_config(config: Config) -> Config:
    return dataclasses.replace(config, clone_uri_allow_private_hosts=True)


def test_git_urls_reach_the_checked_address(listener: Listener, lan_config: Config) -> None:
    """git is handed the address ``localhost`` resolved to when checked, not the name."""
    from rpcserver.domain.repositories import checked_source

    source = checked_source(lan_config, f"git://localhost:{listener.port}/x", admin=False)
    assert source.url == f"git://127.0.0.1:{listener.port}/x"
    from rpcserver.domain.repositories import vcs_settings
    from rpcserver.vcs import GitError
    from rpcserver.vcs.git.backend import GitBackend
    from rpcserver.vcs.git.fetch import fetch, init_bare

    git = GitBackend(vcs_settings(lan_config)).git
    target = Path(lan_config.repos_root) / "scratch"
    init_bare(git, target)
    with pytest.raises(GitError):
        fetch(git, target, source)
    assert listener.seen and b"host=127.0.0.1" in listener.seen[0]


# -- ssh --------------------------------------------------------------------------------------

RECORDER = """#!/bin/sh
printf '%s\\n' "$@" > "{record}/ssh-$$.args"
exit 255
"""


@pytest.fixture
def recording_server(tmp_path: Path) -> Iterator[tuple[ServerProcess, Path]]:
    bin_dir = tmp_path / "bin"
    record = tmp_path / "record"
    bin_dir.mkdir()
    record.mkdir()
    fake = bin_dir / "ssh"
    fake.write_text(RECORDER.format(record=record))
    fake.chmod(0o755)
    with scratch_database(tmp_path, "ssh", server_url()) as url:
        server = ServerProcess(instance=tmp_path / "instance", database_url=url, extra_env={
            "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
            "RPCSERVER_CLONE_URI_ALLOW_PRIVATE_HOSTS": "true"})
        server.start()
        try:
            yield server, record
        finally:
            server.stop()


def _recorded(record: Path) -> list[list[str]]:
    return [path.read_text().splitlines() for path in sorted(record.glob("ssh-*.args"))]


@pytest.mark.e2e
@pytest.mark.parametrize("uri,port", [("ssh://git@localhost:2222/x.git", "2222"),
                                      ("git@localhost:x.git", None)])
def test_ssh_runs_pinned_strict_and_without_user_config(
        recording_server: tuple[ServerProcess, Path], uri: str, port: str | None) -> None:
    server, record = recording_server
    answer = server.call("create_repo", repo_name="m", clone_uri=uri)
    assert answer["error"] == "failed to create repository `m`"
    calls = _recorded(record)
    assert calls, server.read_log()
    argv = calls[0]
    known_hosts = server.instance / "repos" / ".rpcserver" / "known_hosts"
    for option in ("BatchMode=yes", "StrictHostKeyChecking=yes",
                   f"UserKnownHostsFile=\"{known_hosts}\"", "HostKeyAlias=localhost",
                   "GlobalKnownHostsFile=/dev/null"):
        assert option in argv, argv
    assert argv[argv.index("-F") + 1] == os.devnull
    assert "git@127.0.0.1" in argv and not any("localhost" in a for a in argv
                                               if not a.startswith("HostKeyAlias="))
    if port is not None:
        assert argv[argv.index("-p") + 1] == port
    assert server.call("get_repo", repoid="m")["error"] == "repository `m` does not exist"


# -- rpcserver known-hosts --------------------------------------------------------------------


@pytest.mark.e2e
def test_known_hosts_commands(tmp_path: Path) -> None:
    key_file = tmp_path / "hostkey"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key_file)],
                   check=True)
    public = (tmp_path / "hostkey.pub").read_text().strip()
    with scratch_database(tmp_path, "kh", server_url()) as url:
        server = ServerProcess(instance=tmp_path / "instance", database_url=url)
        server.admin_key = server.rpcserver("init", str(server.instance)).stdout.strip()
        assert server.rpcserver("known-hosts", "list").stdout == ""
        out = server.rpcserver("known-hosts", "add", "mirror.example", "--port", "2222",
                               "--key", public).stdout
        assert out.startswith("added: [mirror.example]:2222 ssh-ed25519")
        subprocess_in = subprocess.run(
            [str(Path(sys.executable).parent / "rpcserver"), "known-hosts", "add",
             "mirror.example"], input=public, env=server.env(), text=True, capture_output=True,
            check=True)
        assert subprocess_in.stdout.startswith("added: mirror.example ssh-ed25519")
        again = server.rpcserver("known-hosts", "add", "mirror.example", "--key", public)
        assert again.stdout.startswith("already present")
        listed = server.rpcserver("known-hosts", "list").stdout.splitlines()
        key_part = " ".join(public.split()[:2])
        assert listed == [f"[mirror.example]:2222 {key_part}", f"mirror.example {key_part}"]
        file = server.instance / "repos" / ".rpcserver" / "known_hosts"
        assert file.read_text().splitlines() == listed
        bad = server.rpcserver("known-hosts", "add", "mirror.example", "--key",
                               "ssh-ed25519 not-base64!", check=False)
        assert bad.returncode != 0 and "not valid base64" in bad.stderr
        bad_host = server.rpcserver("known-hosts", "add", "-oProxyCommand=x", "--key", public,
                                    check=False)
        assert bad_host.returncode != 0
        assert server.rpcserver("known-hosts", "remove", "mirror.example", "--port",
                                "2222").stdout.startswith("removed 1")
        assert server.rpcserver("known-hosts", "list").stdout.splitlines() == listed[1:]
        gone = server.rpcserver("known-hosts", "remove", "other.example", check=False)
        assert gone.returncode != 0 and "no key for other.example" in gone.stderr


@pytest.mark.parametrize(("uri", "reason"), [
    ("ssh://git:hunter2@example.invalid/x",
     "an ssh URL must not carry a password (ssh signs in with a key)"),
    ("ssh://git:@example.invalid/x",
     "an ssh URL must not carry a password (ssh signs in with a key)"),
    ("git://someone@example.invalid/x", "a git:// URL has no user part"),
])
def test_credentials_a_transport_has_no_use_for_are_refused(rpc: Rpc, uri: str,
                                                            reason: str) -> None:
    """An ssh password would reach ssh's command line (readable by every local user) and a
    git:// user means nothing: both are refused before anything is stored or dialled."""
    assert err(rpc("create_repo", repo_name="r", clone_uri=uri)) == REFUSED + reason
    ok(rpc("create_repo", repo_name="s"))
    assert err(rpc("update_repo", repoid="s", clone_uri=uri)) == REFUSED + reason
    assert ok(rpc("get_repo", repoid="s"))["clone_uri"] is None
