"""Running Mercurial safely: list arguments, a scrubbed environment, the server's own hgrc and
no repository's, and a timeout that kills hg with everything it started.

- ``HGPLAIN=1``: no aliases, localisation or output tweaks of any configuration.
- ``HGRCPATH`` names the server's hgrc (``.rpcserver/hgrc``, written by us): no user or system
  hgrc applies.
- ``HGRCSKIPREPO=1``: a repository's own ``.hg/hgrc`` is never read, so hooks, extensions and
  ``[paths]`` it names (a repository adopted by rescan_repos, or cloned, may carry them) never
  take effect on the server.
- hg runs as ``python -I launch.py`` (mercurial's own entry point plus the host pins and the
  socket stall timeout of ``launch``); ``-I`` keeps ``PYTHONPATH`` and the user's site out.

Nothing a client sends reaches hg as an option: callers validate names and revisions first and
put ``--`` before paths and URLs.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import importlib.util
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from rpcserver.vcs.hg import cmdserver
from rpcserver.vcs.model import VcsError
from rpcserver.vcs.process import die_with_parent, kill_group, scrub

#: The oldest Mercurial we run: ``HGRCSKIPREPO`` and ``-T json`` everywhere.
MIN_VERSION = (6, 4)
LAUNCHER = Path(__file__).with_name("launch.py")


class HgError(VcsError):
    """hg failed; ``detail`` is for the server log (already free of secrets)."""

    def __init__(self, command: str, returncode: int | None, detail: str) -> None:
        self.command = command
        self.returncode = returncode
        self.detail = detail
        super().__init__(f"hg {command} failed ({returncode}): {detail}")


class HgTimeout(HgError):
    def __init__(self, command: str, timeout: float) -> None:
        super().__init__(command, None, f"timed out after {timeout:g} s; killed")


class HgMissing(VcsError):
    """Mercurial is not installed or too old: the server cannot keep hg repositories (a
    ``VcsError``, so a rescan skips hg repositories found on disk instead of failing)."""


@dataclass(frozen=True)
class Hg:
    """Mercurial as this server runs it, and how long one call may take."""

    version: tuple[int, ...]
    #: The server's own hgrc (``HGRCPATH``), rewritten by ``find``.
    hgrc: Path
    timeout: float
    stall_timeout: float | None = None
    #: A second hgrc read after the server's (a fetch's remote, in a private file).
    extra_hgrc: Path | None = None
    #: Local commands run on Mercurial's command server (``cmdserver``); False: a new hg
    #: process each (the benchmark's baseline).
    command_server: bool = True

    @classmethod
    def find(cls, hgrc: Path, timeout: float, stall_timeout: float | None = None,
             known_hosts: str = os.devnull) -> Hg:
        """Mercurial in the server's Python; ``HgMissing`` with a message an admin can act
        on otherwise. Writes the server's hgrc (ssh with the server's host keys only)."""
        version = locate()
        text = server_hgrc(known_hosts)
        with contextlib.suppress(OSError):
            if hgrc.read_text() == text:
                return cls(version, hgrc, timeout, stall_timeout)
        hgrc.parent.mkdir(parents=True, exist_ok=True)
        temporary = hgrc.with_name(f".{hgrc.name}.{os.getpid()}")
        temporary.write_text(text)
        os.replace(temporary, hgrc)
        return cls(version, hgrc, timeout, stall_timeout)

    def run(self, args: Sequence[str], *, repo: Path | None = None,
            network: bool = False, pins: Iterable[str] = (),
            redact: Iterable[str] = (), timeout: float | None = None) -> bytes:
        """Run ``hg <args>`` (in repository ``repo``) and return its stdout; ``HgError`` on a
        non-zero exit, ``HgTimeout`` past the timeout (hg and its children are killed).

        ``network``: the command talks to a remote: the stall timeout applies to its sockets,
        ``pins`` to its host names, and the kernel kills hg if the worker dies."""
        command = args[0] if args else ""
        limit = self.timeout if timeout is None else timeout
        launcher = [sys.executable, "-I", str(LAUNCHER)]
        arguments = [*(["-R", str(repo)] if repo is not None else ()), *args]
        env = self._environment(network, pins)
        if self.command_server and not network:
            return self._on_command_server(command, launcher, arguments, env, limit, redact)
        argv = [*(die_with_parent() if network else ()), *launcher, *arguments]
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, env=env, start_new_session=True,
                                    cwd=self.hgrc.parent)
        except OSError as exc:
            raise HgError(command, None, f"cannot run hg: {exc}") from None
        try:
            out, err = proc.communicate(timeout=limit)
        except subprocess.TimeoutExpired:
            kill_group(proc)
            raise HgTimeout(command, limit) from None
        except BaseException:
            kill_group(proc)
            raise
        if proc.returncode != 0:
            raise HgError(command, proc.returncode, scrub(err or out, redact))
        return out

    def _on_command_server(self, command: str, launcher: list[str], arguments: list[str],
                           env: dict[str, str], limit: float,
                           redact: Iterable[str]) -> bytes:
        pool = cmdserver.pool_for(launcher, env, str(self.hgrc.parent))
        try:
            code, out, err = pool.run(arguments, limit)
        except cmdserver.CommandTimeout:
            raise HgTimeout(command, limit) from None
        except (cmdserver.ServerFailed, OSError) as exc:
            raise HgError(command, None, f"hg command server failed: {exc}") from None
        if code != 0:
            raise HgError(command, code, scrub(err or out, redact))
        return out

    def environment(self) -> dict[str, str]:
        """The environment every hg of ours runs in (``_base_environment``, ``HGRCPATH`` our
        hgrc files); for programs started elsewhere (``hgweb``)."""
        env = dict(_base_environment())
        env["HGRCPATH"] = os.pathsep.join(
            str(p) for p in (self.hgrc, self.extra_hgrc) if p is not None)
        return env

    def _environment(self, network: bool, pins: Iterable[str]) -> dict[str, str]:
        env = self.environment()
        if network:
            env["RPCSERVER_HG_STALL"] = str(self.stall_timeout or self.timeout)
            env["RPCSERVER_HG_PINS"] = " ".join(pins)
        return env


def server_hgrc(known_hosts: str) -> str:
    """The only configuration hg reads: no prompts, ssh with no user config and only the
    server's host keys, no merge tools, no extensions, no hooks."""
    ssh = ["ssh", "-F", os.devnull, "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes",
           "-o", f'UserKnownHostsFile="{known_hosts}"',
           "-o", f"GlobalKnownHostsFile={os.devnull}", "-o", "UpdateHostKeys=no",
           "-o", "CheckHostIP=no", "-o", "ConnectTimeout=30",
           "-o", "ServerAliveInterval=15", "-o", "ServerAliveCountMax=4"]
    return ("# Written by rpcserver; every hg it runs reads this file and no other.\n"
            "[ui]\ninteractive = false\nmerge = internal:fail\n"
            f"ssh = {' '.join(shlex.quote(a) for a in ssh)}\n"
            "[phases]\npublish = false\n"
            "[extensions]\n[hooks]\n")


@functools.cache
def _base_environment() -> dict[str, str]:
    """The server's environment without any ``HG*`` or ``PYTHON*`` variable, plus ours.
    Proxy and CA settings pass through."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HG", "PYTHON", "RPCSERVER_HG_"))}
    env.pop("SSH_ASKPASS", None)
    env.update({"LC_ALL": "C", "LANGUAGE": "C", "HGPLAIN": "1", "HGRCSKIPREPO": "1",
                "HGENCODING": "utf-8", "HGENCODINGMODE": "replace"})
    return env


@functools.cache
def locate() -> tuple[int, ...]:
    """Mercurial's version in the server's Python; ``HgMissing`` when absent or too old."""
    wanted = ".".join(map(str, MIN_VERSION))
    if importlib.util.find_spec("mercurial") is None:
        raise HgMissing("Mercurial was not found in the server's Python; rpcserver keeps hg "
                        f"repositories with it (pip install 'mercurial>={wanted}', which "
                        "`make install` does)")
    text = importlib.metadata.version("mercurial")
    found = re.match(r"(\d+)\.(\d+)", text)
    version = tuple(int(p) for p in found.groups()) if found else (0,)
    if version < MIN_VERSION:
        raise HgMissing(f"Mercurial {text} is too old; rpcserver needs {wanted} or newer")
    return version
