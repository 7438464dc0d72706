"""The baseline: the thinnest WSGI app on the server's own stack, the floor of every figure.

werkzeug reads the request, ``json`` parses the envelope and checks its keys, and a fixed
get_repo-shaped answer goes back -- no database, no authentication, no registry. It runs under
gunicorn with exactly the settings ``rpcserver serve`` uses (``serve.gunicorn_options``), so
that a ratio to it measures our code, not the HTTP stack or the machine.

    python -m bench.baseline --bind 127.0.0.1:8001 --workers 2
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from rpcserver.core.config import Config
from rpcserver.web.serve import GunicornServer, gunicorn_options

EMPTY_CHANGESET = {
    "short_id": "000000000000",
    "raw_id": "0" * 40,
    "revision": -1,
    "message": "",
    "date": "1970-01-01T00:00:00",
    "author": "",
}

#: What get_repo answers for a typical repository (API.md §4), members and followers included.
REPO: dict[str, Any] = {
    "repo_id": 17,
    "repo_name": "group-1/repo-0017",
    "repo_type": "git",
    "clone_uri": None,
    "private": True,
    "created_on": "2026-11-23T17:16:41.587",
    "description": "group-1/repo-0017",
    "landing_rev": ["rev", "tip"],
    "owner": "admin",
    "fork_of": None,
    "enable_statistics": False,
    "enable_downloads": False,
    "last_changeset": EMPTY_CHANGESET,
    "members": [{"name": "admin", "type": "user", "permission": "repository.admin"},
                {"name": "bench-reader", "type": "user", "permission": "repository.read"}],
    "followers": [{"user_id": 2, "username": "admin", "firstname": "Admin", "lastname": "",
                   "email": "admin@localhost", "emails": [], "active": True, "admin": True}],
}


def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
    request = Request(environ)
    try:
        data = json.loads(request.get_data(cache=False))
        missing = [k for k in ("api_key", "method", "args") if k not in data]
        answer = {"id": data.get("id"), "result": None if missing else REPO,
                  "error": f"Incorrect JSON query missing '{missing[0]}'" if missing else None}
    except (ValueError, TypeError, AttributeError):
        answer = {"id": None, "result": None, "error": "JSON parse error"}
    response = Response(json.dumps(answer).encode("ascii"), mimetype="application/json")
    return response(environ, start_response)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bind", default="127.0.0.1:8001")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    config = Config.load()
    options = gunicorn_options(config, args.bind, args.workers)
    options["proc_name"] = "rpcserver-bench-baseline"
    GunicornServer(config, options, app_factory=lambda _config: app).run()


if __name__ == "__main__":
    main()
