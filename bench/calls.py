"""The calls under load (issue 6 §3) and the target each must meet."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from .populate import Population

#: A well-formed key that no user holds: the server must look it up to refuse it.
BAD_KEY = "rpck_" + "0" * 43
PASSWORD = "correct horse battery staple"  # noqa: S105 - a benchmark's throwaway password


@dataclass(frozen=True)
class Target:
    """Met when requests/s >= ``rps``, or >= ``ratio`` x the baseline's; None: report only."""

    rps: float | None = None
    ratio: float | None = None

    def met(self, rps: float, baseline_rps: float) -> bool | None:
        if self.rps is not None:
            return rps >= self.rps
        if self.ratio is not None:
            return rps >= self.ratio * baseline_rps
        return None

    def __str__(self) -> str:
        if self.rps is not None:
            return f">= {self.rps:,.0f}/s"
        if self.ratio is not None:
            return f">= {self.ratio:.0%} of baseline"
        return "report"


@dataclass(frozen=True)
class Call:
    label: str
    method: str
    args: dict[str, Any]
    #: "admin", "reader" (the non-admin) or "bad" (an unknown key)
    caller: str
    target: Target
    #: Methods the call or its data needs; a missing one makes the row "n/a".
    needs: tuple[str, ...] = ()
    expect: str = '"error": null'
    writes: bool = False

    def body(self, pop: Population) -> str:
        key = {"admin": pop.admin_key, "reader": pop.reader_key, "bad": BAD_KEY}[self.caller]
        args = {k: (pop.repo_name if v == "@repo@" else v) for k, v in self.args.items()}
        return json.dumps({"id": 1, "api_key": key, "method": self.method, "args": args})

    def missing(self, pop: Population) -> list[str]:
        return sorted(m for m in (self.method, *self.needs) if m in pop.missing)


HALF = Target(ratio=0.5)

CALLS = (
    Call("get_user (self)", "get_user", {}, "admin", HALF),
    Call("get_repo (by name)", "get_repo", {"repoid": "@repo@"}, "admin", HALF,
         needs=("create_repo", "create_repo_group")),
    Call("get_users (1,000)", "get_users", {}, "admin", Target(rps=200)),
    Call("get_repos (admin, 200)", "get_repos", {}, "admin", Target(rps=400),
         needs=("create_repo", "create_repo_group")),
    Call("get_repos (non-admin, 10)", "get_repos", {}, "reader", Target(rps=1500),
         needs=("create_repo", "create_repo_group", "grant_user_permission")),
    Call("get_user_groups (non-admin)", "get_user_groups", {}, "reader", Target(rps=200),
         needs=("create_user_group", "add_user_to_user_group")),
    Call("bad API key", "get_user", {}, "bad", HALF, expect='"error": "Invalid API key"'),
    # Writes come last, so that the reads above see exactly the populated data.
    Call("create_user (no password)", "create_user",
         {"username": "c@N@", "email": "c@N@@bench.test"}, "admin", Target(rps=500),
         writes=True),
    Call("create_user (password)", "create_user",
         {"username": "p@N@", "email": "p@N@@bench.test", "password": PASSWORD}, "admin",
         Target(), writes=True),
)
