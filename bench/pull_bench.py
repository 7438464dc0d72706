"""``python -m bench.pull_bench``: the ``pull`` method against a plain ``git fetch`` of the same
remote, first (everything) and incremental (a few new commits), over git:// and http://.

The remote is a real repository of ~5,000 commits served on loopback (``git daemon`` and git's
smart-HTTP backend, tests/gitremotes.py). ``pull`` goes through the whole server in-process
(WSGI app, dispatcher, SQLite database, lock, atomic fetch, ``last_changeset``); the baseline
is ``git fetch <url> +refs/heads/*:refs/heads/* +refs/tags/*:refs/tags/*`` into a bare
repository in the same state. Runs are interleaved; the report gives medians and the ratio
pull / fetch (goal: at most 1.1).
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench.in_process import in_process_api, timed
from tests.gitremotes import GIT, GitDaemon, SmartHttp, Upstream, git_env, running

REFSPECS = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.pull_bench", description=__doc__)
    parser.add_argument("--commits", type=int, default=5000,
                        help="commits in the remote (default 5000)")
    parser.add_argument("--files", type=int, default=4,
                        help="files each commit changes (default 4)")
    parser.add_argument("--incremental", type=int, default=50,
                        help="commits added before each incremental pull (default 50)")
    parser.add_argument("--runs", type=int, default=7, help="runs of each kind (default 7)")
    parser.add_argument("--transports", default="git,http",
                        help="comma-separated: git, http (default both)")
    parser.add_argument("--http-delay", type=float, default=0.0,
                        help="seconds each HTTP request waits, as a network round trip would "
                             "(default 0: loopback)")
    return parser.parse_args(argv)


def plain_fetch(url: str, git_dir: Path) -> None:
    subprocess.run([GIT, f"--git-dir={git_dir}", "fetch", "--quiet", "--no-tags", url,
                    *REFSPECS], check=True, env=git_env())


@dataclasses.dataclass
class Result:
    transport: str
    kind: str
    pull: list[float]
    fetch: list[float]

    @property
    def ratio(self) -> float:
        return statistics.median(self.pull) / statistics.median(self.fetch)

    def line(self) -> str:
        return (f"| {self.transport} | {self.kind} | {statistics.median(self.pull) * 1000:.0f} ms "
                f"| {statistics.median(self.fetch) * 1000:.0f} ms | {self.ratio:.2f}x |")


def bench(args: argparse.Namespace, base: Path) -> list[Result]:
    remotes = base / "remotes"
    upstream = Upstream(remotes / "big")
    started = time.perf_counter()
    for _ in range(0, args.commits, 1000):
        upstream.commit(min(1000, args.commits - upstream.made), files=args.files)
    upstream.tag("v1", message="release")
    print(f"remote: {upstream.made} commits in {time.perf_counter() - started:.1f} s",
          file=sys.stderr)
    with in_process_api(base) as (_config, ok):
        def pull(name: str, url: str) -> None:
            ok("pull", repoid=name, clone_uri=url)

        def interleaved(result: Result, run: int, name: str, url: str, plain: Path) -> None:
            """One run of each, the order alternating from run to run."""
            order = [("pull", partial(pull, name, url)),
                     ("fetch", partial(plain_fetch, url, plain))]
            for label, action in order if run % 2 == 0 else reversed(order):
                (result.pull if label == "pull" else result.fetch).append(timed(action))

        results = []
        with running(GitDaemon(remotes)) as daemon, running(SmartHttp(remotes)) as http:
            http.delay = args.http_delay
            urls = {"git": daemon.url("big"), "http": http.url("big")}
            for transport in args.transports.split(","):
                url = urls[transport]
                first = Result(transport, f"first ({upstream.made} commits)", [], [])
                for run in range(args.runs):
                    name = f"{transport}-first-{run}"
                    ok("create_repo", repo_name=name)
                    plain = base / "plain" / name
                    subprocess.run([GIT, "init", "--bare", "--quiet", str(plain)], check=True,
                                   env=git_env())
                    interleaved(first, run, name, url, plain)
                results.append(first)
                name, plain = f"{transport}-first-0", base / "plain" / f"{transport}-first-0"
                incremental = Result(transport, f"incremental (+{args.incremental})", [], [])
                for run in range(args.runs):
                    upstream.commit(args.incremental, files=args.files)
                    interleaved(incremental, run, name, url, plain)
                results.append(incremental)
                nothing = Result(transport, "nothing new", [], [])
                for run in range(args.runs):
                    interleaved(nothing, run, name, url, plain)
                results.append(nothing)
                last = ok("get_repo", repoid=name)["last_changeset"]
                if last["raw_id"] != upstream.ref("master"):
                    raise RuntimeError("the pulled repository is not at the remote's tip")
    return results


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="pull-bench-") as tmp:
        results = bench(args, Path(tmp))
    delay = f", {args.http_delay * 1000:g} ms per HTTP request" if args.http_delay else ""
    print(f"\npull vs git fetch, median of {args.runs} interleaved runs "
          f"({args.files} files per commit{delay})\n")
    print("| transport | pull | `pull` | `git fetch` | ratio |")
    print("|---|---|---|---|---|")
    for result in results:
        print(result.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
