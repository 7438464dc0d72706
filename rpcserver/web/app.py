"""The WSGI application: reads bytes, hands them to the dispatcher, writes the answer.

``POST``/``GET /_admin/api`` always answers HTTP 200 with a JSON envelope; other HTTP methods
get 405, and so does a request asking for a method override (a ``_method`` query parameter, as
Kallithea). ``GET /_admin/token`` exchanges a key for a token (``web.token``). Paths outside
``/_admin/`` that end in ``/info/refs``, ``/git-upload-pack`` or ``/git-receive-pack`` are git's
smart HTTP (``web.git_http``); others with a ``cmd`` in their query are Mercurial's wire
protocol (``web.hg_http``, which runs hgweb in a child: Mercurial is never imported here).
Other paths 404.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from rpcserver.core.config import Config
from rpcserver.core.credentials import ApiRequest
from rpcserver.core.errors import InternalError
from rpcserver.core.registry import Registry
from rpcserver.db.database import Database
from rpcserver.domain.repositories import name_known
from rpcserver.rpc import protocol
from rpcserver.rpc.dispatch import Dispatcher
from rpcserver.vcs import Store, journal
from rpcserver.web.git_http import GitHttp, git_route
from rpcserver.web.hg_http import HgHttp, hg_route
from rpcserver.web.token import TOKEN_PATH, token_response
from rpcserver.web.vcs_http import Gate

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

log = logging.getLogger(__name__)

API_PATHS = frozenset({"/_admin/api", "/_admin/api/"})
API_METHODS = ("GET", "POST")
#: The query parameter of TurboGears' method override, which Kallithea refuses with HTTP 405
#: whatever its value (``?_method=PUT``, ``?_method=``, a bare ``?_method``).
METHOD_OVERRIDE = "_method"


class ApiApp:
    def __init__(self, config: Config, db: Database, registry: Registry) -> None:
        self.config = config
        self.db = db
        self.dispatcher = Dispatcher(config, db, registry)
        # One failure count for the API, git and hg: a guesser gets no second budget.
        gate = Gate(config, db, self.dispatcher.failures, self.dispatcher.keys)
        self.git = GitHttp(config, gate)
        self.hg = HgHttp(config, gate)

    def __call__(self, environ: WSGIEnvironment,
                 start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        if git_route(request.path) is not None:
            return self.git(environ, start_response)
        if hg_route(request.path, request.query_string.decode("latin-1")) is not None:
            return self.hg(environ, start_response)
        try:
            if request.path == TOKEN_PATH:
                if request.method != "GET":
                    raise MethodNotAllowed(valid_methods=("GET",))
                return token_response(self.dispatcher, request)(environ, start_response)
            if request.path not in API_PATHS:
                raise NotFound()
            if request.method not in API_METHODS:
                raise MethodNotAllowed(valid_methods=API_METHODS)
            if METHOD_OVERRIDE in request.args:
                raise MethodNotAllowed(valid_methods=API_METHODS, description=(
                    "The API takes POST or GET as they are: a method override "
                    "(the _method query parameter) is not allowed."))
        except HTTPException as exc:
            return exc(environ, start_response)
        return self.api_response(request)(environ, start_response)

    def api_response(self, request: Request) -> Response:
        length = request.content_length
        if length is None:
            answer = protocol.answer(None, None, "No Content-Length in request")
        elif length == 0:
            answer = protocol.answer(None, None, "Content-Length is 0")
        elif length > self.config.max_body_bytes:
            answer = protocol.answer(None, None, "Request body too large")
        else:
            body = request.get_data(cache=False)
            answer = self.dispatcher.handle(ApiRequest(
                body, request.remote_addr, dict(request.headers),
                query=tuple(request.args.items(multi=True))))
        return Response(_encode(answer), status=200, mimetype="application/json")


def _encode(answer: dict[str, Any]) -> bytes:
    try:
        return protocol.encode(answer)
    except (TypeError, ValueError):
        log.exception("could not encode the answer to JSON")
        fallback = protocol.answer(answer.get("id"), None, InternalError.text,
                                   has_id="id" in answer)
        return json.dumps(fallback).encode()


def create_app(config: Config | None = None, registry: Registry | None = None,
               db: Database | None = None) -> ApiApp:
    """Build the WSGI app; every part can be passed in (tests pass their own registry)."""
    if config is None:
        config = Config.load()
    if registry is None:
        from rpcserver.api import build_registry

        registry = build_registry()
    if db is None:
        db = Database.connect(config.database_url)
    _sweep(config, db)
    return ApiApp(config, db, registry)


def _sweep(config: Config, db: Database) -> None:
    """What a process killed mid-call left goes at start-up (each worker process builds its
    app: a worker that died and was replaced too): its transaction's changes on disk are
    finished or undone, as the database says it ended, then its scratch is removed. Live
    journals and scratch of another worker are kept (they are locked)."""
    store = Store.at(config.repos_root)
    try:
        journal.recover(store, lambda name: name_known(db, name))
    except (OSError, SQLAlchemyError) as exc:
        log.warning("could not recover unfinished disk changes in %s (kept for the next "
                    "start): %s", config.repos_root, exc)
    try:
        store.sweep()
    except OSError as exc:
        log.warning("could not sweep %s: %s", config.repos_root, exc)
