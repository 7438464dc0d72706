"""``python -m bench.git_serving``: clone and push of a large repository through ``rpcserver
serve`` (gunicorn + waitress, authentication, authorization, the repository lock, git
http-backend) against ``git clone``/``git push`` over the local file system and against plain
``git http-backend`` behind a minimal WSGI/CGI app on waitress (no authentication, nothing
else), all measured in one run, interleaved. The report gives medians and the ratios.

The repository holds ``--blobs`` incompressible blobs of ``--blob-mb`` MB (random bytes,
stored uncompressed: the pack is as large as the data, and zlib does not dominate).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

from bench.in_process import timed
from tests.databases import scratch_database
from tests.server_process import ServerProcess, free_port


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.git_serving", description=__doc__)
    parser.add_argument("--blobs", type=int, default=4, help="blobs (default 4)")
    parser.add_argument("--blob-mb", type=int, default=25, help="MB per blob (default 25)")
    parser.add_argument("--runs", type=int, default=3, help="runs of each kind (default 3)")
    return parser.parse_args(argv)


def git_env(home: Path) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home),
            "GIT_CONFIG_NOSYSTEM": "1", "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C",
            "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@example.com",
            "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@example.com"}


def cgi_app(root: Path) -> Callable[..., Any]:
    """The baseline: git http-backend as plain CGI, body in, body out, nothing checked."""

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "GIT_PROJECT_ROOT": str(root),
               "GIT_HTTP_EXPORT_ALL": "1", "REMOTE_USER": "bench", "GIT_CONFIG_NOSYSTEM": "1",
               "GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": "http.receivepack",
               "GIT_CONFIG_VALUE_0": "true"}
        for name in ("PATH_INFO", "QUERY_STRING", "REQUEST_METHOD", "CONTENT_TYPE",
                     "CONTENT_LENGTH", "HTTP_CONTENT_ENCODING", "HTTP_GIT_PROTOCOL"):
            if environ.get(name):
                env[name] = environ[name]
        proc = subprocess.Popen(["git", "http-backend"], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, env=env)
        assert proc.stdin is not None and proc.stdout is not None
        body = environ["wsgi.input"]
        left = int(environ.get("CONTENT_LENGTH") or 0)

        def feed() -> None:
            nonlocal left
            assert proc.stdin is not None
            while left > 0 and (chunk := body.read(min(65536, left))):
                proc.stdin.write(chunk)
                left -= len(chunk)
            proc.stdin.close()

        feeder = threading.Thread(target=feed)
        feeder.start()
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = os.read(proc.stdout.fileno(), 65536)
            if not chunk:
                break
            head += chunk
        raw, _, rest = head.partition(b"\r\n\r\n")
        status, headers = "200 OK", []
        for line in raw.decode("latin-1").split("\r\n"):
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name, value.strip()))
        start_response(status, headers)
        if rest:
            yield rest
        while chunk := os.read(proc.stdout.fileno(), 65536):
            yield chunk
        feeder.join()
        proc.stdout.close()
        proc.wait()

    return app


def serve_baseline(root: Path) -> tuple[str, Any]:
    from waitress.server import create_server

    port = free_port()
    server = create_server(cgi_app(root), host="127.0.0.1", port=port, threads=4,
                           max_request_body_size=4 * 1024 ** 3)
    threading.Thread(target=server.run, daemon=True).start()
    return f"http://127.0.0.1:{port}", server


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    size = args.blobs * args.blob_mb
    with tempfile.TemporaryDirectory(prefix="git-serving-") as tmp:
        base = Path(tmp)
        home = base / "home"
        home.mkdir()
        env = git_env(home)

        def git(*a: str, cwd: Path | None = None) -> None:
            subprocess.run(["git", *a], cwd=cwd, env=env, check=True, capture_output=True)

        work = base / "work"
        git("init", "-q", "-b", "master", str(work))
        for i in range(args.blobs):
            (work / f"blob-{i}").write_bytes(os.urandom(args.blob_mb * 1024 * 1024))
        git("-c", "core.compression=0", "add", ".", cwd=work)
        git("commit", "-qm", "big", cwd=work)
        plain_root = base / "plain"
        plain_root.mkdir()
        baseline_url, baseline = serve_baseline(plain_root)
        with scratch_database(base, "bench", None) as url:
            server = ServerProcess(instance=base / "instance", database_url=url).start()
            try:
                times: dict[str, list[float]] = {}
                for run in range(args.runs):
                    name = f"r{run}"
                    server.call("create_repo", repo_name=name)
                    auth = server.url.replace("http://", f"http://admin:{server.admin_key}@")
                    targets = {
                        "file": str(base / f"file-{name}.git"),
                        "http-backend": f"{baseline_url}/{name}.git",
                        "rpcserver": f"{auth}/{name}",
                    }
                    for bare in (base / f"file-{name}.git", plain_root / f"{name}.git"):
                        git("init", "-q", "--bare", str(bare))
                    order = list(targets) if run % 2 == 0 else list(reversed(targets))
                    for kind in order:
                        push = ["-c", "pack.compression=0", "push", "-q", targets[kind],
                                "HEAD:master"]
                        times.setdefault(f"push {kind}", []).append(
                            timed(partial(git, *push, cwd=work)))
                    for kind in order:
                        dest = base / f"clone-{kind}-{name}"
                        # --no-local: a real copy, not hard links.
                        clone = ["clone", "-q", "--no-local", "--bare", targets[kind], str(dest)]
                        times.setdefault(f"clone {kind}", []).append(timed(partial(git, *clone)))
                        subprocess.run(["rm", "-rf", str(dest)], check=True)
            finally:
                server.stop()
        baseline.close()
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"\ngit serving, {size} MB repository ({args.blobs} random blobs), median of "
          f"{args.runs} interleaved runs (seconds)\n")
    print("| action | file system | git http-backend | rpcserver | rpcserver / file | "
          "rpcserver / http-backend |")
    print("|---|---|---|---|---|---|")
    for action in ("push", "clone"):
        f, h, r = (med[f"{action} {k}"] for k in ("file", "http-backend", "rpcserver"))
        print(f"| {action} | {f:.2f} | {h:.2f} | {r:.2f} | {r / f:.2f} | {r / h:.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
