"""Running the ``git`` command line safely: list arguments, a scrubbed environment, a protocol
allow-list and a timeout that kills git together with every helper it started.

Nothing a client sends reaches git as an option: callers validate names and revisions first and
put ``--`` (or ``--end-of-options``) before anything that came from outside. Secrets (a
clone_uri's password) never appear in argv: they travel as configuration in the environment
(``GIT_CONFIG_COUNT``), which other local users cannot read.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import selectors
import shlex
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from rpcserver.vcs.model import VcsError
from rpcserver.vcs.process import die_with_parent, kill_group, reap, scrub

#: The oldest git we run: ``GIT_CONFIG_GLOBAL`` (2.32) keeps the service account's
#: ~/.gitconfig out; ``GIT_CONFIG_COUNT`` (2.31) carries secrets outside argv.
MIN_VERSION = (2, 32)
#: ``http.curloptResolve`` (2.37) pins an http(s) host to the address we validated.
PIN_VERSION = (2, 37)

#: Configuration every call runs with. Hooks and fsmonitor could run programs named in a
#: repository's own config (a repository adopted by rescan_repos is not ours); redirects could
#: lead a validated URL to an internal host; a credential helper could prompt or leak.
SAFE_CONFIG: tuple[tuple[str, str], ...] = (
    ("core.hooksPath", os.devnull),
    ("core.fsmonitor", "false"),
    ("credential.helper", ""),
    ("http.followRedirects", "false"),
    ("protocol.version", "2"),
    ("gc.auto", "0"),
    ("init.defaultBranch", "master"),
    ("advice.defaultBranchName", "false"),
)


class GitError(VcsError):
    """git failed; ``detail`` is for the server log (already free of secrets)."""

    def __init__(self, command: str, returncode: int | None, detail: str) -> None:
        self.command = command
        self.returncode = returncode
        self.detail = detail
        super().__init__(f"git {command} failed ({returncode}): {detail}")


class GitTimeout(GitError):
    def __init__(self, command: str, timeout: float) -> None:
        super().__init__(command, None, f"timed out after {timeout:g} s; killed")


class GitStalled(GitTimeout):
    """git wrote nothing for ``stall`` seconds: a remote that accepted and went silent."""

    def __init__(self, command: str, stall: float) -> None:
        GitError.__init__(self, command, None, f"no output for {stall:g} s; killed")


class GitMissing(Exception):
    """git is not installed or too old: the server cannot start."""


@dataclass(frozen=True)
class Git:
    """The git executable and how long one call may take."""

    executable: str
    version: tuple[int, ...]
    timeout: float
    #: Extra environment for every call (tests use it for nothing; kept for deployments).
    env: Mapping[str, str] = field(default_factory=dict)
    #: The only host keys ssh accepts (``rpcserver known-hosts``); none by default.
    known_hosts: str = os.devnull
    #: ``watch``: kill git when it has written nothing for this long (None: ``timeout``).
    stall_timeout: float | None = None

    @classmethod
    def find(cls, timeout: float, stall_timeout: float | None = None,
             known_hosts: str = os.devnull) -> Git:
        """The git on PATH; ``GitMissing`` with a message an admin can act on otherwise."""
        executable, version = _locate()
        return cls(executable=executable, version=version, timeout=timeout,
                   stall_timeout=stall_timeout, known_hosts=known_hosts)

    def ssh_command(self, host_key_alias: str | None = None) -> str:
        """How git runs ssh: no user or system ssh config (``-F /dev/null``: no ProxyCommand,
        no aliases), no prompts, and only host keys from the server's own known_hosts."""
        # Quoted for ssh too: UserKnownHostsFile takes several files, split at spaces.
        argv = ["ssh", "-F", os.devnull, "-o", "BatchMode=yes",
                "-o", "StrictHostKeyChecking=yes",
                "-o", f'UserKnownHostsFile="{self.known_hosts}"',
                "-o", f"GlobalKnownHostsFile={os.devnull}", "-o", "UpdateHostKeys=no",
                "-o", "CheckHostIP=no", "-o", "ConnectTimeout=30",
                "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
        if host_key_alias is not None:
            argv += ["-o", f"HostKeyAlias={host_key_alias}"]
        return " ".join(shlex.quote(arg) for arg in argv)

    @property
    def can_pin_hosts(self) -> bool:
        return self.version >= PIN_VERSION

    def run(self, args: Sequence[str], *, git_dir: str | None = None,
            input: bytes | None = None, protocols: Iterable[str] = (),
            config: Iterable[tuple[str, str]] = (), timeout: float | None = None,
            redact: Iterable[str] = ()) -> bytes:
        """Run ``git <args>`` and return its stdout; ``GitError`` on a non-zero exit.

        ``protocols`` is the transport allow-list (``GIT_ALLOW_PROTOCOL``; empty: none at all,
        enough for everything local). ``config`` is passed through the environment, never
        argv. ``redact`` lists strings (passwords) to blank out of error details.
        """
        command = args[0] if args else ""
        limit = self.timeout if timeout is None else timeout
        proc = self._start(args, git_dir, input is not None, protocols, config)
        try:
            out, err = proc.communicate(input, timeout=limit)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise GitTimeout(command, limit) from None
        except BaseException:
            kill_group(proc)
            raise
        if proc.returncode != 0:
            raise GitError(command, proc.returncode, scrub(err, redact))
        return out

    def watch(self, args: Sequence[str], *, git_dir: str | None = None,
              input: bytes | None = None, protocols: Iterable[str] = (),
              config: Iterable[tuple[str, str]] = (),
              redact: Iterable[str] = (), stall: bool = False,
              stop: Callable[[bytes], bool] | None = None) -> bytes:
        """``run`` that reads git's output as it comes.

        ``stall``: kill git (``GitStalled``) once it has written nothing on stdout or stderr
        for ``stall_timeout`` seconds; for commands that talk to a remote, run with
        ``--progress`` so that a live transfer keeps writing. ``timeout`` stays the total cap.
        ``stop`` sees each piece of stdout; once it answers True git is killed and what was
        read so far is returned (the caller asked for no more).
        """
        command = args[0] if args else ""
        proc = self._start(args, git_dir, input is not None, protocols, config)
        if input is not None:
            threading.Thread(target=_feed, args=(proc, input), daemon=True).start()
        quiet = (self.stall_timeout or self.timeout) if stall else None
        try:
            out, err, stopped = _pump(proc, command, self.timeout, quiet, stop)
        except BaseException:
            kill_group(proc)
            raise
        if stopped:
            kill_group(proc)
            return out
        reap(proc)  # both pipes are at their end already
        if proc.returncode != 0:
            raise GitError(command, proc.returncode, scrub(err, redact))
        return out

    def _start(self, args: Sequence[str], git_dir: str | None, with_input: bool,
               protocols: Iterable[str],
               config: Iterable[tuple[str, str]]) -> subprocess.Popen[bytes]:
        """git in a session of its own (so that it can be killed with its helpers). One that
        may talk to a remote (``protocols``) is also killed by the kernel if the worker that
        started it dies (``kill -9``: nobody is left to); a local command ends by itself, and
        the wrapper would cost each one a process (about 1 ms)."""
        protocols = tuple(protocols)
        argv = [*(die_with_parent() if protocols else ()), self.executable]
        if git_dir is not None:
            argv.append(f"--git-dir={git_dir}")
        argv.extend(args)
        try:
            return subprocess.Popen(argv, stdin=subprocess.PIPE if with_input else
                                    subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    env=self._environment(protocols, config),
                                    start_new_session=True)
        except OSError as exc:
            raise GitError(args[0] if args else "", None, f"cannot run git: {exc}") from None

    def environment(self, protocols: Iterable[str] = (),
                    config: Iterable[tuple[str, str]] = ()) -> dict[str, str]:
        """The environment every git of ours runs with (``SAFE_CONFIG`` and ``config`` as
        ``GIT_CONFIG_*``); for programs started elsewhere (``http_backend``)."""
        return self._environment(protocols, config)

    def _environment(self, protocols: Iterable[str],
                     config: Iterable[tuple[str, str]]) -> dict[str, str]:
        env = dict(_base_environment())
        env.update(self.env)
        env["GIT_ALLOW_PROTOCOL"] = ":".join(protocols)
        # Later entries win: a fetch may give its own core.sshCommand (with HostKeyAlias).
        pairs = [*SAFE_CONFIG, ("core.sshCommand", self.ssh_command()), *config]
        env["GIT_CONFIG_COUNT"] = str(len(pairs))
        for i, (key, value) in enumerate(pairs):
            env[f"GIT_CONFIG_KEY_{i}"] = key
            env[f"GIT_CONFIG_VALUE_{i}"] = value
        return env


@functools.cache
def _base_environment() -> dict[str, str]:
    """The server's environment without any ``GIT_*`` variable, plus our fixed settings.

    Proxy and CA settings (``https_proxy``, ``SSL_CERT_FILE``) pass through; a stray
    ``GIT_DIR`` or ``GIT_SSH_COMMAND`` from the service manager does not (ssh is run as
    ``core.sshCommand``, see ``Git.ssh_command``).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.pop("SSH_ASKPASS", None)
    env.update({
        "LC_ALL": "C",
        "LANGUAGE": "C",
        "GIT_TERMINAL_PROMPT": "0",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CONFIG_GLOBAL": os.devnull,
        # Overrides a repository's core.askPass; an empty answer fails authentication.
        "GIT_ASKPASS": shutil.which("false") or "/bin/false",
        "GIT_NO_REPLACE_OBJECTS": "1",
        "GIT_OPTIONAL_LOCKS": "0",
    })
    return env


#: How much of git's stderr ``watch`` keeps (progress lines add up): the end says why.
_ERR_KEEP = 64 * 1024


def _pump(proc: subprocess.Popen[bytes], command: str, limit: float, quiet: float | None,
          stop: Callable[[bytes], bool] | None) -> tuple[bytes, bytes, bool]:
    """Read git's stdout and stderr until both close and git exits: (stdout, the end of
    stderr, whether ``stop`` ended it). ``GitTimeout``/``GitStalled`` past the limits."""
    if proc.stdout is None or proc.stderr is None:
        raise ValueError("git's stdout and stderr must be pipes")
    out, err = bytearray(), bytearray()
    started = last = time.monotonic()
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, out)
        selector.register(proc.stderr, selectors.EVENT_READ, err)
        while selector.get_map():
            now = time.monotonic()
            deadline = started + limit
            if quiet is not None:
                deadline = min(deadline, last + quiet)
            if now >= deadline:
                if now >= started + limit:
                    raise GitTimeout(command, limit)
                raise GitStalled(command, quiet or 0)
            for key, _events in selector.select(deadline - now):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                last = time.monotonic()
                buffer: bytearray = key.data
                buffer += chunk
                if buffer is err and len(err) > 2 * _ERR_KEEP:
                    del err[:-_ERR_KEEP]
                if buffer is out and stop is not None and stop(chunk):
                    return bytes(out), bytes(err), True
    try:
        proc.wait(max(0.0, started + limit - time.monotonic()))
    except subprocess.TimeoutExpired:
        raise GitTimeout(command, limit) from None
    return bytes(out), bytes(err), False


def _feed(proc: subprocess.Popen[bytes], data: bytes) -> None:
    """Write ``data`` to git's stdin and close it (git may stop reading: it was killed)."""
    if proc.stdin is None:
        return
    with contextlib.suppress(OSError, ValueError):  # ValueError: closed by kill_group
        proc.stdin.write(data)
    with contextlib.suppress(OSError, ValueError):
        proc.stdin.close()


@functools.cache
def _locate() -> tuple[str, tuple[int, ...]]:
    executable = shutil.which("git")
    if executable is None:
        raise GitMissing("git was not found on PATH; rpcserver keeps repositories as git "
                         "repositories and needs the git command line (install git "
                         f"{'.'.join(map(str, MIN_VERSION))} or newer)")
    try:
        out = subprocess.run([executable, "--version"], capture_output=True, check=True,
                             timeout=30, env=_base_environment()).stdout.decode()
    except (OSError, subprocess.SubprocessError) as exc:
        raise GitMissing(f"{executable} --version failed: {exc}") from None
    version = parse_version(out)
    if version < MIN_VERSION:
        wanted = ".".join(map(str, MIN_VERSION))
        raise GitMissing(f"{executable} is git {'.'.join(map(str, version))}; rpcserver "
                         f"needs git {wanted} or newer")
    return executable, version


def parse_version(text: str) -> tuple[int, ...]:
    """``git version 2.39.5`` -> (2, 39, 5); anything unparsable is (0,)."""
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", text)
    if not found:
        return (0,)
    return tuple(int(part) for part in found.groups() if part is not None)
