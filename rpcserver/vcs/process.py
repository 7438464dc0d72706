"""Running a VCS command line as a child process: what git and hg share (``vcs.git.command``,
``vcs.hg.command``)."""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import signal
import subprocess
from collections.abc import Iterable


def kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command and the helpers it started (remote-http, index-pack, ssh, ...),
    then reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    reap(proc)


def reap(proc: subprocess.Popen[bytes]) -> None:
    """Close the command's pipes and wait for it (``communicate`` would flush a stdin that
    a feeding thread may have closed already)."""
    for pipe in (proc.stdin, proc.stdout, proc.stderr):
        if pipe is not None:
            with contextlib.suppress(OSError, ValueError):
                pipe.close()
    proc.wait()


def scrub(stderr: bytes, secrets: Iterable[str]) -> str:
    """A command's error output fit for a log: each secret blanked out, a password in any
    URL too (git and hg name the URL they failed on), the last 2,000 characters."""
    text = stderr.decode("utf-8", "replace").strip()
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    text = re.sub(r"(://[^/\s:@]*:)[^@\s/]*@", r"\1***@", text)
    return text[-2000:]


@functools.cache
def die_with_parent() -> tuple[str, ...]:
    """util-linux's ``setpriv`` sets the parent-death signal and execs the command (a
    ``preexec_fn`` would run Python between fork and exec in a threaded server); without
    it, nothing."""
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "KILL", "--") if setpriv else ()
