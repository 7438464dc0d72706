"""Sending a step to a server as raw HTTP, normalising what must differ, and describing every
difference between two answers as short, stable lines (the ones differences.toml lists).

A difference line is `<where>: <what>`, e.g.
    result.user.emails: ours [] vs theirs ["x@example.com"]
    result: keys only ours ["task"]
    result: key order ours ["a", "b"] vs theirs ["b", "a"]
    http.status: ours 405 vs theirs 200
Values are compact JSON, so a line reads the same on every run.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

import requests

#: keys whose integer values are database ids (they may differ between the servers)
ID_KEYS = frozenset({"user_id", "users_group_id", "repo_id", "group_id", "gist_id",
                     "pull_request_id", "id", "user_ip_id"})
#: keys holding a time the servers cannot agree on
TIME_KEYS = frozenset({"created_on", "last_login", "updated_on", "modified_at", "expires",
                       "last_changeset_date"})
#: keys holding secrets that differ by construction
SECRET_KEYS = frozenset({"api_key", "api_keys"})
#: keys whose list values are sets in all but form
UNORDERED_KEYS = frozenset({"global", "members", "followers", "repositories", "user_ips", "emails",
                            "added", "removed", "modules"})
#: methods whose list result is a set. Not the list methods (get_users, get_repos,
#: get_user_groups, get_repo_groups): their order is compared, because scripts see it
#: (docs/protocol.md, "Paging"); a step whose order is Kallithea's accident says `unordered`.
UNORDERED_RESULTS = frozenset({"get_gists", "get_repo_nodes"})


def order_key(value: Any) -> str:
    """Records sort by their values in key order: the id (normalised) first, then the name."""
    return json.dumps(value)


@dataclass
class Answer:
    status: int
    content_type: str
    text: str
    body: Any  # parsed JSON, or NOTJSON when the body is not JSON

    def envelope(self) -> dict[str, Any] | None:
        return self.body if isinstance(self.body, dict) else None


NOTJSON = object()


def send(url: str, *, http_method: str = "POST", body: bytes | None = None,
         headers: dict[str, str] | None = None, query: str = "") -> Answer:
    """One raw HTTP request; `body=None` sends none (no Content-Length)."""
    response = requests.request(http_method, url + query, data=body, headers=headers or {},
                                timeout=120, allow_redirects=False)
    try:
        parsed: Any = json.loads(response.text)
    except ValueError:
        parsed = NOTJSON
    return Answer(response.status_code, response.headers.get("Content-Type", ""),
                  response.text, parsed)


_ID_TEXT = re.compile(r"\bID:\d+")
_USER_ID_TEXT = re.compile(r"\buser ID \d+")


#: keys whose values are {name: permission} maps: sets, whatever order they come in
UNORDERED_MAPS = frozenset({"repositories", "repositories_groups", "user_groups"})


def normalise(value: Any, *, hosts: dict[str, str], key: str | None = None,
              unordered: bool = False, depth: int = 0) -> Any:
    """`value` (the answer's `result` or `error`) with ids, times, secrets and our own server
    addresses replaced by placeholders, and set-like lists sorted."""
    if isinstance(value, dict):
        items = [(k, normalise(v, hosts=hosts, key=k, depth=depth + 1)) for k, v in value.items()]
        if key in UNORDERED_MAPS:
            items.sort()
        return dict(items)
    if isinstance(value, list):
        items = [normalise(v, hosts=hosts, depth=depth + 1) for v in value]
        if unordered or key in UNORDERED_KEYS:
            items.sort(key=order_key)
        return items
    if key in ID_KEYS and isinstance(value, int) and not isinstance(value, bool):
        return "<id>"
    if key in TIME_KEYS and value is not None:
        return "<time>"
    if key in SECRET_KEYS and value is not None:
        return "<key>"
    if isinstance(value, str):
        for address, placeholder in hosts.items():
            value = value.replace(address, placeholder)
        value = _USER_ID_TEXT.sub("user ID <id>", _ID_TEXT.sub("ID:<id>", value))
    return value


def normalised_envelope(answer: Answer, *, hosts: dict[str, str], method: str | None,
                        unordered_paths: tuple[str, ...] = ()) -> Any:
    """The answer body with `result` and `error` normalised (the envelope's own keys, their
    order and `id` are kept as sent)."""
    env = answer.envelope()
    if env is None:
        # an error page's HTML is the web framework's, not the API's: only its presence counts
        return answer.body if answer.body is not NOTJSON else "<not JSON>"
    out: dict[str, Any] = {}
    for k, v in env.items():
        if k in ("result", "error"):
            v = normalise(v, hosts=hosts, unordered=(k == "result"
                                                     and method in UNORDERED_RESULTS))
            for path in unordered_paths:
                v = _sort_at(v, path.split(".")[1:]) if path.startswith(k) else v
        out[k] = v
    return out


def _sort_at(value: Any, parts: list[str]) -> Any:
    if not parts:
        if isinstance(value, list):
            return sorted(value, key=order_key)
        return value
    head, rest = parts[0], parts[1:]
    if head == "*" and isinstance(value, list):
        return [_sort_at(v, rest) for v in value]
    if head == "*" and isinstance(value, dict):
        return {k: _sort_at(v, rest) for k, v in value.items()}
    if isinstance(value, dict) and head in value:
        return {**value, head: _sort_at(value[head], rest)}
    return value


def show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def differences(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Every difference between two normalised JSON values, as lines."""
    here = where or "<body>"
    if isinstance(ours, dict) and isinstance(theirs, dict):
        lines: list[str] = []
        only_ours = [k for k in ours if k not in theirs]
        only_theirs = [k for k in theirs if k not in ours]
        if only_ours:
            lines.append(f"{here}: keys only ours {show(only_ours)}")
        if only_theirs:
            lines.append(f"{here}: keys only theirs {show(only_theirs)}")
        common_ours = [k for k in ours if k in theirs]
        common_theirs = [k for k in theirs if k in ours]
        if common_ours != common_theirs:
            lines.append(f"{here}: key order ours {show(common_ours)} vs theirs "
                         f"{show(common_theirs)}")
        for k in common_theirs:
            lines += differences(ours[k], theirs[k], f"{where}.{k}" if where else k)
        return lines
    if (isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs)
            and ours and all(isinstance(v, dict) for v in ours + theirs)):
        lines = []
        for i, (a, b) in enumerate(zip(ours, theirs, strict=True)):
            lines += differences(a, b, f"{here}[{i}]")
        return lines
    if ours == theirs and type(ours) is type(theirs):
        return []
    return [f"{here}: ours {show(ours)} vs theirs {show(theirs)}"]


def http_differences(ours: Answer, theirs: Answer) -> list[str]:
    lines = []
    if ours.status != theirs.status:
        lines.append(f"http.status: ours {ours.status} vs theirs {theirs.status}")
    if ours.content_type.lower() != theirs.content_type.lower():
        lines.append(f"http.content-type: ours {show(ours.content_type)} vs theirs "
                     f"{show(theirs.content_type)}")
    return lines
