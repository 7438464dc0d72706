"""Profile one call in-process with cProfile, on a scratch SQLite database of a given size.

    python -m bench.profile get_user --args '{"userid": "user-000500"}' -n 500
    python -m bench.profile get_user_groups --caller reader --populate --sort tottime
    python -m bench.profile create_user --args '{"username": "u@N@", "email": "u@N@@x.test"}'

``--populate`` fills the database as ``make bench`` does, through the API (in-process);
otherwise ``--users``/``--repos`` are inserted in bulk.

Prints the per-call time, the SQL statements per call and cProfile's top functions.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import tempfile
import time
from pathlib import Path
from typing import Any

from .populate import Api, populate_with
from .scaling import Dataset, ScaleCall, api_key_for, build, in_process, new_database


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("method")
    parser.add_argument("--args", default="{}",
                        help='the call\'s args, as JSON; "@N@" in a string: unique per call')
    parser.add_argument("--caller", choices=("admin", "reader"), default="admin")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--repos", type=int, default=0)
    parser.add_argument("--populate", action="store_true",
                        help="the bench's data, created through the API")
    parser.add_argument("-n", type=int, default=300, help="calls to profile")
    parser.add_argument("--sort", default="cumulative", help="pstats sort key")
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args()
    call = ScaleCall(args.method, args.method, json.loads(args.args), args.caller, True)
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'profile.db'}"
        if args.populate:
            data = _populated(url, Path(tmp))
        else:
            data = build(url, "profile", args.users, args.repos, Path(tmp))
        for _ in range(20):
            data.call(call)
        data.statements[0] = 0
        data.call(call)
        statements = data.statements[0]
        t0 = time.perf_counter()
        for _ in range(args.n):
            data.call(call)
        per_call = (time.perf_counter() - t0) / args.n * 1000
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(args.n):
            data.call(call)
        profiler.disable()
        data.db.dispose()
    print(f"{args.method}: {per_call:.3f} ms per call (unprofiled), {statements} SQL "
          f"statements per call")
    pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)


def _populated(url: str, workdir: Path) -> Dataset:
    db, admin_key = new_database(url)
    data = in_process(db, url, "populated", {"admin": admin_key}, workdir)

    def post(body: dict[str, Any]) -> dict[str, Any]:
        answer: dict[str, Any] = json.loads(data.client.post("/_admin/api", json=body).get_data())
        return answer

    pop = populate_with(Api(post), admin_key, lambda: api_key_for(db, "reader"), parallel=1)
    if pop.missing:
        print(f"the server lacks {', '.join(sorted(pop.missing))}: populated without them")
    data.keys["reader"] = pop.reader_key
    return data


if __name__ == "__main__":
    main()
