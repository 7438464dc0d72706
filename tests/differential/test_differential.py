"""Every step of the scenario (steps.py) against rpcserver and a real Kallithea 0.7.0: the
answers must be the same, after normalising ids, times, keys and addresses (compare.py),
except where differences.toml lists the step; there they must differ exactly as listed.

So a gap that gets fixed fails here until its entry is removed, and a new difference fails
until it is fixed or listed. `DIFFERENTIAL_DUMP=/tmp/observed.toml` writes what this run saw,
in differences.toml's format, to start an entry from.

A `deliberate` entry (a difference docs/ documents) also pins our own answer, `ours`: the
normalised envelope as JSON.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.differential.compare import show
from tests.differential.conftest import Kallithea, Remote
from tests.differential.runner import Context, Outcome, Side, run_all
from tests.differential.steps import STEPS
from tests.server_process import ServerProcess

pytestmark = pytest.mark.e2e

HERE = Path(__file__).parent
REPO_ROOT = HERE.parents[1]
DIFFERENCES = HERE / "differences.toml"
CATEGORIES = ("known", "deliberate", "missing")
COMPARED = [s["name"] for s in STEPS if "do" not in s]


def load_file() -> dict[str, Any]:
    with DIFFERENCES.open("rb") as f:
        return tomllib.load(f)


def load_differences() -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = load_file().get("steps", {})
    return entries


def load_across() -> dict[str, dict[str, Any]]:
    """Differences seen in many steps (e.g. every user's `emails`), matched by a regular
    expression on the difference lines; a line they match is not listed per step."""
    entries: dict[str, dict[str, Any]] = load_file().get("across", {})
    return entries


def per_step(lines: list[str]) -> list[str]:
    patterns = [re.compile(e["pattern"]) for e in load_across().values()]
    return [line for line in lines if not any(p.search(line) for p in patterns)]


@pytest.fixture(scope="session")
def outcomes(kallithea: Kallithea, ours: ServerProcess, remote: Remote) -> dict[str, Outcome]:
    up = remote.upstream
    commits = up.commit(2, files=3) + up.commit(1)
    up.commit(1, branch="dev", prefix="on dev", base="master")
    up.tag("v1", message="release one")
    hg_up = remote.hg
    hg_nodes = hg_up.commit(2, files=3) + hg_up.commit(1)
    hg_nodes += hg_up.commit(1, branch="stable", prefix="on stable")
    hg_up.tag("v1", hg_nodes[2])
    hg_up.bookmark("mark", hg_nodes[1])
    host = remote.daemon.url("").rstrip("/")
    ours_side = Side("ours", ours.api_url, {"admin": ours.admin_key},
                     {ours.url.removeprefix("http://"): "<host>"},
                     lambda user: ours.rpcserver("create-api-key", user).stdout.strip())
    theirs_side = Side("theirs", kallithea.api_url, {"admin": kallithea.admin_key},
                       {kallithea.url.removeprefix("http://"): "<host>"}, kallithea.api_key)
    # Kallithea's db-create admin, as our `rpcserver init` admin looks otherwise
    aligned = ours.call("update_user", userid="admin", firstname="Kallithea",
                        lastname="Admin", email="admin@example.com")
    assert aligned["error"] is None, aligned
    variables = {"remote": host, **{f"commit{i}": c for i, c in enumerate(commits, 1)},
                 "hgremote": remote.hg_serve.url,
                 **{f"hgnode{i}": n for i, n in enumerate(hg_nodes)}}
    context = Context(ours_side, theirs_side, variables, {"remote": remote, "ours": ours})
    result = run_all(STEPS, context)
    dump = os.environ.get("DIFFERENTIAL_DUMP")
    if dump:
        Path(dump).write_text(render(result))
    return result


def render(result: dict[str, Outcome]) -> str:
    """The differences of this run, as differences.toml entries (categories to be decided)."""
    known = load_differences()
    out = []
    for name, outcome in result.items():
        lines = per_step(outcome.lines)
        if not lines:
            continue
        entry = known.get(name, {})
        out.append(f'[steps."{name}"]')
        out.append(f'category = "{entry.get("category", "known")}"')
        for field in ("doc", "issue"):
            if field in entry:
                out.append(f"{field} = {json.dumps(entry[field])}")
        out.append("differs = [")
        out += [f"  {json.dumps(line, ensure_ascii=False)}," for line in lines]
        out.append("]")
        # `ours` pins our answer; only deliberate entries keep it
        out.append(f"ours = {json.dumps(show(outcome.ours_normalised), ensure_ascii=False)}")
        out.append("")
    return "\n".join(out)


def report(outcome: Outcome) -> str:
    step = {k: v for k, v in outcome.step.items() if k != "do"}
    return "\n".join([
        f"step: {show(step)}",
        f"ours   (HTTP {outcome.ours.status}): {show(outcome.ours_normalised)}",
        f"theirs (HTTP {outcome.theirs.status}): {show(outcome.theirs_normalised)}",
    ])


def test_differences_file_is_well_formed() -> None:
    entries = load_differences()
    stale = sorted(set(entries) - set(COMPARED))
    assert not stale, f"differences.toml lists steps that do not exist: {stale}"
    for name, entry in load_across().items():
        assert entry.get("category") in CATEGORIES, name
        assert entry.get("what"), f"across.{name}: `what` says what differs"
        re.compile(entry["pattern"])
    for name, entry in entries.items():
        assert entry.get("category") in CATEGORIES, name
        assert entry.get("differs"), f"{name}: `differs` must list what differs"
        if entry["category"] == "deliberate":
            assert entry.get("doc"), f"{name}: a deliberate difference names its doc heading"
            assert "ours" in entry, f"{name}: a deliberate difference pins our answer"
            path, _sep, heading = entry["doc"].partition(": ")
            doc = REPO_ROOT / path
            assert doc.is_file(), f"{name}: no {path}"
            title = heading.split(" (")[0]
            assert re.search(rf"(?m)^#+ {re.escape(title)}$", doc.read_text()), (
                f"{name}: {path} has no heading `{title}`")
        if entry["category"] == "missing":
            assert entry.get("issue"), f"{name}: a missing method names the issue that builds it"
            assert "No such method: " in entry.get("ours", ""), (
                f"{name}: a missing method is answered `No such method`")


@pytest.mark.parametrize("name", sorted(load_across()))
def test_across_entry_still_seen(name: str, outcomes: dict[str, Outcome]) -> None:
    pattern = re.compile(load_across()[name]["pattern"])
    seen = [line for o in outcomes.values() for line in o.lines if pattern.search(line)]
    assert seen, (f"differences.toml's [across.{name}] matches no difference any more: "
                  "remove it")


@pytest.fixture(scope="session")
def entries() -> Iterator[dict[str, dict[str, Any]]]:
    yield load_differences()


@pytest.mark.parametrize("name", COMPARED)
def test_step(name: str, outcomes: dict[str, Outcome],
              entries: dict[str, dict[str, Any]]) -> None:
    outcome = outcomes[name]
    entry = entries.get(name)
    found = per_step(outcome.lines)
    if entry is None:
        assert not found, ("differs from Kallithea 0.7.0 (fix it, or list it in "
                           "differences.toml):\n  " + "\n  ".join(found)
                           + "\n" + report(outcome))
        return
    listed = list(entry["differs"])
    if found != listed:
        gone = [line for line in listed if line not in found]
        new = [line for line in found if line not in listed]
        pytest.fail(
            f"differences.toml's entry for {name} ({entry['category']}) no longer holds"
            + ("; the step now matches Kallithea: remove the entry" if not found else "")
            + "".join(f"\n  - listed, not seen: {line}" for line in gone)
            + "".join(f"\n  + seen, not listed: {line}" for line in new)
            + ("\n  (same lines, another order)" if not gone and not new else "")
            + "\n" + report(outcome), pytrace=False)
    if entry["category"] in ("deliberate", "missing"):
        assert show(outcome.ours_normalised) == entry["ours"], (
            f"our {entry['category']} answer changed:\n  pinned: {entry['ours']}\n"
            f"  now:    {show(outcome.ours_normalised)}")
