"""``python -m bench.hg`` (``make bench-hg``): Mercurial through the server, against plain hg and
against git.

- **pull**: the ``pull`` method into an empty hg repository (first) and after the remote gained
  ``--incremental`` changesets, against a plain ``hg pull`` of the same ``hg serve`` URL into a
  plain repository in the same state (``hg init`` untimed, as pull_bench's ``git init``).
- **reads**: ``get_repo`` (with and without ``with_revision_names``) and ``get_changesets``
  (``max_revisions`` 20 and the default) on the pulled hg repository, against the same calls
  on a git repository of as many commits; and one bare ``hg log -r tip`` against one
  ``git rev-parse HEAD`` (what one process start costs).

The remote (``--changesets`` built with ``hg debugbuilddag``, each changeset adding a file and
rewriting another) is built once and cached in ``~/.cache/rpcserver/bench/``; the served remote
is a local clone of a prefix of it, grown by local pulls. The server runs in-process (WSGI app,
dispatcher, SQLite, the repository lock, hg's transaction, ``last_changeset``), as in
pull_bench. Runs are interleaved, the order alternating; medians and ratios are printed.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from bench.in_process import in_process_api, timed
from tests.gitremotes import GIT, GitDaemon, Upstream, git_env, running
from tests.hgremotes import HgServe, hg

CACHE = (Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
         / "rpcserver" / "bench")
HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.hg", description=__doc__)
    parser.add_argument("--changesets", type=int, default=5000,
                        help="changesets in the remote (default 5000)")
    parser.add_argument("--incremental", type=int, default=100,
                        help="changesets the remote gains before each incremental pull "
                             "(default 100)")
    parser.add_argument("--runs", type=int, default=5,
                        help="runs of each pull kind (default 5)")
    parser.add_argument("--calls", type=int, default=11,
                        help="calls of each read, per side (default 11)")
    return parser.parse_args(argv)


def cached_remote(total: int) -> Path:
    """A repository of at least ``total`` changesets, built once (~30 s for 5,000)."""
    path = CACHE / "hg-remote"
    stamp = path / ".hg" / "bench-changesets"
    if stamp.is_file() and int(stamp.read_text()) >= total:
        return path
    CACHE.mkdir(parents=True, exist_ok=True)
    building = CACHE / f"hg-remote.building-{os.getpid()}"
    shutil.rmtree(building, ignore_errors=True)
    started = time.perf_counter()
    hg("init", str(building))
    hg("debugbuilddag", "--new-file", "--overwritten-file", f"+{total}", repo=building)
    (building / ".hg" / "bench-changesets").write_text(str(total))
    shutil.rmtree(path, ignore_errors=True)
    building.rename(path)
    print(f"built the cached remote ({total} changesets) in "
          f"{time.perf_counter() - started:.0f} s: {path}", file=sys.stderr)
    return path


class Pair:
    """Timings of the server (``ours``) and of its baseline, run alternately."""

    def __init__(self, what: str, baseline: str) -> None:
        self.what, self.baseline = what, baseline
        self.ours: list[float] = []
        self.base: list[float] = []

    def run(self, turn: int, ours: Callable[[], Any], base: Callable[[], Any]) -> None:
        order = [(self.ours, ours), (self.base, base)]
        for into, action in order if turn % 2 == 0 else reversed(order):
            into.append(timed(action))

    def line(self) -> str:
        a, b = statistics.median(self.ours), statistics.median(self.base)
        return (f"| {self.what} | {a * 1000:.0f} ms | {self.baseline} | {b * 1000:.0f} ms "
                f"| {a / b:.2f}x |")


def bench(args: argparse.Namespace, base: Path) -> tuple[list[Pair], list[Pair]]:
    extra = args.runs * args.incremental
    cache = cached_remote(args.changesets + extra)
    nodes = hg("log", "-r", "all()", "-T", "{node}\n", repo=cache).split()
    remotes = base / "remotes"
    served = remotes / "hgbig"
    remotes.mkdir()
    hg("clone", "--noupdate", "--quiet", "-r", nodes[args.changesets - 1], "--", str(cache),
       str(served))
    with in_process_api(base) as (_config, ok):
        plain_root = base / "plain"
        plain_root.mkdir()
        pulls = []
        with running(HgServe(served)) as server:
            url = server.url
            first = Pair(f"`pull`, first ({args.changesets} changesets)", "`hg pull`")
            for run in range(args.runs):
                name = f"hg-first-{run}"
                ok("create_repo", repo_name=name, repo_type="hg")
                plain = plain_root / name
                hg("init", str(plain))
                first.run(run, partial(ok, "pull", repoid=name, clone_uri=url),
                          partial(hg, "pull", "--quiet", url, repo=plain))
            pulls.append(first)
            name, plain = "hg-first-0", plain_root / "hg-first-0"
            incremental = Pair(f"`pull`, incremental (+{args.incremental})", "`hg pull`")
            for run in range(args.runs):
                grown = nodes[args.changesets + (run + 1) * args.incremental - 1]
                hg("pull", "--quiet", "-r", grown, "--", str(cache), repo=served)
                incremental.run(run, partial(ok, "pull", repoid=name, clone_uri=url),
                                lambda: hg("pull", "--quiet", url, repo=plain))
            pulls.append(incremental)
            nothing = Pair("`pull`, nothing new", "`hg pull`")
            for run in range(args.runs):
                nothing.run(run, partial(ok, "pull", repoid=name, clone_uri=url),
                            lambda: hg("pull", "--quiet", url, repo=plain))
            pulls.append(nothing)
        last = ok("get_repo", repoid=name)["last_changeset"]
        if last["raw_id"] != nodes[args.changesets + extra - 1]:
            raise RuntimeError("the pulled repository is not at the remote's tip")
        reads = compare_reads(args, base, ok, name, last["revision"] + 1)
    return pulls, reads


def compare_reads(args: argparse.Namespace, base: Path, ok: Callable[..., Any], hg_name: str,
                  count: int) -> list[Pair]:
    """The same calls on the hg repository and on a git one of ``count`` commits."""
    upstream = Upstream(base / "remotes" / "gitbig")
    while upstream.made < count:
        upstream.commit(min(1000, count - upstream.made), files=2)
    with running(GitDaemon(base / "remotes")) as daemon:
        ok("create_repo", repo_name="gitbig", repo_type="git")
        ok("pull", repoid="gitbig", clone_uri=daemon.url("gitbig"))
    calls: list[tuple[str, str, dict[str, Any]]] = [
        ("`get_repo`", "get_repo", {}),
        ("`get_repo` with_revision_names", "get_repo", {"with_revision_names": True}),
        ("`get_changesets` max_revisions 20", "get_changesets", {"max_revisions": 20}),
        ("`get_changesets` (default: 1,000)", "get_changesets", {}),
    ]
    for label, method, kw in calls:  # the answers are alike (same counts)
        a, b = ok(method, repoid=hg_name, **kw), ok(method, repoid="gitbig", **kw)
        if isinstance(a, list) and len(a) != len(b):
            raise RuntimeError(f"{label}: {len(a)} changesets on hg, {len(b)} on git")
    reads = []
    for label, method, kw in calls:
        pair = Pair(label + " on hg", "on git")
        for turn in range(args.calls):
            pair.run(turn, partial(ok, method, repoid=hg_name, **kw),
                     partial(ok, method, repoid="gitbig", **kw))
        reads.append(pair)
    hg_repo, git_repo = base / "repos" / hg_name, base / "repos" / "gitbig"
    one = Pair("one `hg log -r tip`", "one `git rev-parse HEAD`")
    for turn in range(args.calls):
        one.run(turn, lambda: hg("log", "-r", "tip", "-T", "{node}", repo=hg_repo),
                lambda: subprocess.run([GIT, f"--git-dir={git_repo}", "rev-parse", "HEAD"],
                                       check=True, capture_output=True, env=git_env()))
    reads.append(one)
    return reads


def measured_commit() -> str:
    found = subprocess.run([GIT, "-C", str(HERE), "log", "-1", "--format=%h"],
                           capture_output=True, text=True, env=git_env())
    return found.stdout.strip() or "unknown"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hg-bench-") as tmp:
        pulls, reads = bench(args, Path(tmp))
    version = hg("version", "-q").splitlines()[0]
    print(f"\ncommit {measured_commit()}; {version}; load average "
          f"{os.getloadavg()[0]:.1f} at the end\n")
    print(f"pull against plain hg pull over the same `hg serve`, median of {args.runs} "
          "interleaved runs\n")
    print("| rpcserver | median | baseline | median | ratio |")
    print("|---|---|---|---|---|")
    for pair in pulls:
        print(pair.line())
    print(f"\nreads on hg against git ({args.calls} interleaved calls each, median)\n")
    print("| hg | median | git | median | ratio hg / git |")
    print("|---|---|---|---|---|")
    for pair in reads:
        print(pair.line())
    return 0


if __name__ == "__main__":
    sys.exit(main())
