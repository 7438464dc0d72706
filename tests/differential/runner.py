"""Runs the scenario (steps.py) against both servers, in order, once per session.

A step is a dict:

- `name`: unique; differences.toml is keyed by it.
- a call: `method`, `args` (default `{}`), `as` (default `"admin"`: whose key is sent:
  `admin`, `reader` (an ordinary user given rights), `nobody` (no rights of its own),
  `ugadmin` (owner of the user group `ops`)), optional `id` (default: the step's number).
- or raw HTTP: `raw` = `{"method": "POST", "body": "..." or None, "headers": {...},
  "query": "?...", "path": "/"}`.
- or an action: `do` = a function of the `Context`, run on both sides, not compared (setting
  things up that the API cannot: API keys, commits in the upstream repository).
- options: `unordered` (paths such as `"result.members"` whose lists are sets), `mask` (paths
  whose values are replaced by `"<masked>"`, e.g. the module list of `get_server_info`),
  `rewrite` (`{path: [[regex, replacement], ...]}` on both sides: what depends on the machine),
  `raw_text` (also compare the bodies as text, after normalising hosts: the JSON encoding).

Strings in `args` and in `raw` may hold `${name}`: the caller's key (`${key}`), a user's key
(`${key:reader}`), the daemon's URL (`${remote}`), commit ids (`${commit1}` ...).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.differential.compare import (
    Answer,
    differences,
    http_differences,
    normalised_envelope,
    send,
)

Step = dict[str, Any]


@dataclass
class Side:
    """One server as the scenario sees it."""

    label: str  # "ours" or "theirs"
    api_url: str
    keys: dict[str, str]
    #: this server's own address (as it may appear in answers) -> a placeholder
    hosts: dict[str, str]
    #: issue an API key for a user that the API created (the API cannot)
    issue_key: Callable[[str], str]


@dataclass
class Context:
    ours: Side
    theirs: Side
    vars: dict[str, str] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)


_VAR = re.compile(r"\$\{([a-z0-9_:]+)\}")


def substitute(value: Any, variables: dict[str, str]) -> Any:
    if isinstance(value, str):
        return _VAR.sub(lambda m: variables[m.group(1)], value)
    if isinstance(value, dict):
        return {substitute(k, variables): substitute(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, variables) for v in value]
    return value


def run_on(side: Side, step: Step, number: int, context: Context) -> Answer:
    caller = step.get("as", "admin")
    variables = dict(context.vars)
    variables["key"] = side.keys.get(caller, "")
    for user, key in side.keys.items():
        variables[f"key:{user}"] = key
    if "raw" in step:
        raw = substitute(step["raw"], variables)
        body = raw.get("body")
        return send(side.api_url + raw.get("path", ""), http_method=raw.get("method", "POST"),
                    body=None if body is None else body.encode(),
                    headers=raw.get("headers"), query=raw.get("query", ""))
    envelope: dict[str, Any] = {}
    if not step.get("no_id"):
        envelope["id"] = step.get("id", number)
    envelope.update(api_key=variables["key"], method=step["method"],
                    args=substitute(step.get("args", {}), variables))
    return send(side.api_url, body=json.dumps(envelope).encode(),
                headers={"Content-Type": "application/json"})


@dataclass
class Outcome:
    step: Step
    ours: Answer
    theirs: Answer
    ours_normalised: Any
    theirs_normalised: Any
    lines: list[str]


def _masked(value: Any, path: list[str]) -> Any:
    if not path:
        return "<masked>"
    if isinstance(value, dict) and path[0] in value:
        return {**value, path[0]: _masked(value[path[0]], path[1:])}
    return value


def _rewritten(value: Any, path: list[str], pattern: str, replacement: str) -> Any:
    if not path:
        return re.sub(pattern, replacement, value) if isinstance(value, str) else value
    if isinstance(value, dict) and path[0] in value:
        return {**value, path[0]: _rewritten(value[path[0]], path[1:], pattern, replacement)}
    return value


def compare(step: Step, context: Context, ours: Answer, theirs: Answer) -> Outcome:
    method = step.get("method")
    unordered = tuple(step.get("unordered", ()))
    a = normalised_envelope(ours, hosts=context.ours.hosts, method=method,
                            unordered_paths=unordered)
    b = normalised_envelope(theirs, hosts=context.theirs.hosts, method=method,
                            unordered_paths=unordered)
    for path in step.get("mask", ()):
        a, b = _masked(a, path.split(".")), _masked(b, path.split("."))
    for path, rules in step.get("rewrite", {}).items():
        for pattern, replacement in rules:
            a = _rewritten(a, path.split("."), pattern, replacement)
            b = _rewritten(b, path.split("."), pattern, replacement)
    lines = http_differences(ours, theirs) + differences(a, b)
    if step.get("raw_text"):
        ta, tb = ours.text, theirs.text
        for address, placeholder in context.ours.hosts.items():
            ta = ta.replace(address, placeholder)
        for address, placeholder in context.theirs.hosts.items():
            tb = tb.replace(address, placeholder)
        if ta != tb:
            lines.append(f"body text: ours {json.dumps(ta)} vs theirs {json.dumps(tb)}")
    return Outcome(step, ours, theirs, a, b, lines)


def run_all(steps: list[Step], context: Context) -> dict[str, Outcome]:
    outcomes: dict[str, Outcome] = {}
    for number, step in enumerate(steps, start=1):
        if "do" in step:
            step["do"](context)
            continue
        ours = run_on(context.ours, step, number, context)
        theirs = run_on(context.theirs, step, number, context)
        outcomes[step["name"]] = compare(step, context, ours, theirs)
    return outcomes
