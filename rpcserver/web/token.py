"""``GET /_admin/token``: an API key, presented with HTTP Basic, exchanged for a short-lived
token bound to a scope (the Docker registry token spec; docs/authentication.md).

``?service=<name>&scope=<scope>&scope=...``; the answer is ``{token, access_token, scope,
expires_in, issued_at}``. Bad credentials answer 401 with ``WWW-Authenticate: Basic``; a bad
``service`` or ``scope`` 400. Answers are JSON in the registry spec's error shape.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from typing import Any

from sqlalchemy.exc import DBAPIError
from werkzeug.wrappers import Request, Response

from rpcserver.core.credentials import API_KEY, BASIC, ApiRequest, Credential
from rpcserver.core.errors import ApiError, DatabaseUnavailable, InvalidApiKey, TooManyFailures
from rpcserver.domain.tokens import BadScope, issue
from rpcserver.rpc.dispatch import Dispatcher

log = logging.getLogger(__name__)

TOKEN_PATH = "/_admin/token"  # noqa: S105 (a path, not a secret)
#: A service name or a scope longer than this is refused before anything else.
MAX_PARAM = 300


def token_response(dispatcher: Dispatcher, request: Request) -> Response:
    """The exchange; never raises."""
    service = request.args.get("service", dispatcher.config.token_service)
    asked = request.args.getlist("scope")
    if service != dispatcher.config.token_service or len(service) > MAX_PARAM:
        return _error(400, "UNSUPPORTED", f"this server is service "
                      f"`{dispatcher.config.token_service}`")
    if any(len(s) > MAX_PARAM for s in asked):
        return _error(400, "INVALID_SCOPE", f"a scope is at most {MAX_PARAM} characters")
    basic = [c for c in ApiRequest(b"", headers=dict(request.headers)).outside_body()
             if c.kind == BASIC]
    if len(basic) != 1:
        return _unauthorized("authenticate with HTTP Basic: your username and an API key")
    key = Credential(API_KEY, secret=basic[0].secret)
    try:
        answer = dispatcher.run(key, "token-exchange", partial(_issue, asked, service),
                                client_ip=request.remote_addr, outside=(basic[0],))
    except InvalidApiKey:
        return _unauthorized("the username and API key do not match a usable key")
    except TooManyFailures as exc:
        response = _error(429, "TOOMANYREQUESTS", exc.text)
        response.headers["Retry-After"] = exc.text.split(" in ")[1].removesuffix(" s")
        return response
    except BadScope as exc:
        return _error(400, "INVALID_SCOPE", str(exc))
    except ApiError as exc:
        if isinstance(exc, DatabaseUnavailable):
            return _error(503, "UNAVAILABLE", exc.text)
        return _error(400, "DENIED", exc.text)
    except DBAPIError:
        log.exception("token exchange failed")
        return _error(503, "UNAVAILABLE", "Database unavailable, try again")
    except Exception:
        log.exception("token exchange failed")
        return _error(500, "UNKNOWN", "Internal server error")
    return Response(json.dumps(answer), status=200, mimetype="application/json")


def _issue(asked: list[str], service: str, ctx: Any) -> dict[str, Any]:
    return issue(ctx, asked, service)


def _unauthorized(message: str) -> Response:
    response = _error(401, "UNAUTHORIZED", message)
    response.headers["WWW-Authenticate"] = 'Basic realm="rpcserver"'
    return response


def _error(status: int, code: str, message: str) -> Response:
    body = {"errors": [{"code": code, "message": message}]}
    return Response(json.dumps(body), status=status, mimetype="application/json")
