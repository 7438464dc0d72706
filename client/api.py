"""ApiClient: call a Kallithea-dialect JSON-RPC server from Python.

The server always answers HTTP 200 with `{"id", "result", "error"}`; anything else means we are
not talking to the API (wrong URL, a proxy's error page, a redirect) and is reported as such
instead of as a confusing JSON error.
"""

from __future__ import annotations

import base64
import json
import secrets
from importlib import metadata
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from client.errors import (
    ApiError,
    ConnectError,
    InvalidApiKey,
    ProtocolError,
    Timeout,
    TransportError,
)

__all__ = ["API_PATH", "AUTH_MODES", "DEFAULT_TIMEOUT", "TOKEN_PATH", "ApiClient", "ApiError",
           "api_url", "safe_url", "version"]

#: Where the endpoint lives below the server's base URL (as kallithea-api assumes).
API_PATH = "/_admin/api"
#: rpcserver's token exchange, beside the endpoint (docs/authentication.md).
TOKEN_PATH = "/_admin/token"  # noqa: S105 (a path, not a secret)

#: How the key reaches the server: in the body (Kallithea's way, works everywhere), or in the
#: ``Authorization`` header (rpcserver only), where proxies and logs treat it as a credential.
BODY, BEARER, BASIC = "body", "bearer", "basic"
AUTH_MODES = (BODY, BEARER, BASIC)

#: Seconds to wait for an answer. Long, because `pull` of a big mirror runs inside the request.
DEFAULT_TIMEOUT = 300.0

#: Connecting never needs as long as answering does; fail fast on a dead host.
CONNECT_TIMEOUT = 10.0


def api_url(url: str) -> str:
    """Return the endpoint URL for a base URL or an endpoint URL.

    kallithea-api takes the base URL (`http://host:5000`); people also paste the endpoint
    (`http://host:5000/_admin/api`). Both must work.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"API host must be an http:// or https:// URL, got {url!r}")
    base = url.strip().rstrip("/")
    if base.endswith(API_PATH):
        return base
    return base + API_PATH


def safe_url(url: str) -> str:
    """The URL with any password in it masked, for messages and logs."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    user = userinfo.partition(":")[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def version() -> str:
    """The installed distribution's version (the client ships inside rpcserver's)."""
    try:
        return metadata.version("rpcserver")
    except metadata.PackageNotFoundError:
        return "unknown"


def _reason(exc: BaseException) -> str:
    """Dig the operating system's words ("Connection refused") out of requests' wrapping."""
    seen: set[int] = set()
    todo: list[Any] = [exc]
    while todo:
        item = todo.pop(0)
        if not isinstance(item, BaseException) or id(item) in seen:
            continue
        seen.add(id(item))
        if isinstance(item, OSError) and item.strerror:
            return item.strerror
        todo.extend([item.__cause__, item.__context__, getattr(item, "reason", None), *item.args])
    return str(exc)


class ApiClient:
    """One server, one API key, one HTTP session (connections are reused between calls).

    `call()` returns the method's result or raises a `client.errors.ClientError` subclass.
    `auth` says where the key goes (`AUTH_MODES`); `basic` and `token()` need the key's
    `username` too.
    """

    def __init__(
        self,
        url: str,
        api_key: str,
        timeout: float = DEFAULT_TIMEOUT,
        *,
        session: requests.Session | None = None,
        auth: str = BODY,
        username: str | None = None,
    ) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout!r}")
        if auth not in AUTH_MODES:
            raise ValueError(f"auth must be one of {', '.join(AUTH_MODES)}, got {auth!r}")
        if auth == BASIC and not username:
            raise ValueError("basic authentication needs the key's username")
        self.auth = auth
        self.username = username
        self.url = api_url(url)
        self._shown_url = safe_url(self.url)
        self.timeout = timeout
        self._api_key = api_key
        self._session = session or requests.Session()
        self._session.headers["User-Agent"] = (
            f"rpc-api/{version()} {requests.utils.default_user_agent()}"
        )

    def __repr__(self) -> str:
        # Never the key: reprs end up in logs and tracebacks.
        return f"ApiClient({safe_url(self.url)!r})"

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the pooled connections."""
        self._session.close()

    def call(self, method: str, /, **args: Any) -> Any:
        """Call `method` with `args` and return its result."""
        request_id = secrets.randbelow(2**31 - 1) + 1
        envelope: dict[str, Any] = {"id": request_id, "method": method, "args": args}
        headers = {"Content-Type": "application/json"}
        if self.auth == BODY:
            envelope["api_key"] = self._api_key
        elif self.auth == BEARER:
            headers["Authorization"] = f"Bearer {self._api_key}"
        else:
            headers["Authorization"] = self._basic()
        answer = self._send("POST", self.url, data=json.dumps(envelope).encode(),
                            headers=headers)
        return self._result(answer, request_id, method)

    def token(self, scopes: list[str] | tuple[str, ...] = (),
              service: str | None = None) -> dict[str, Any]:
        """Exchange the key for a short-lived token bound to `scopes` (rpcserver's
        `/_admin/token`): the server's answer, `{token, access_token, scope, expires_in,
        issued_at}`. The granted `scope` may be narrower than asked; no scope at all gives a
        token that can do nothing."""
        if not self.username:
            raise ValueError("a token exchange needs the key's username")
        params: list[tuple[str, str]] = [("scope", scope) for scope in scopes]
        if service is not None:
            params.insert(0, ("service", service))
        url = self.url.removesuffix(API_PATH) + TOKEN_PATH
        response = self._send("GET", url, params=params,
                              headers={"Authorization": self._basic()})
        return self._token_answer(response, url)

    def _basic(self) -> str:
        pair = f"{self.username}:{self._api_key}".encode()
        return "Basic " + base64.b64encode(pair).decode("ascii")

    def _send(self, verb: str, url: str, **kwargs: Any) -> requests.Response:
        try:
            return self._session.request(
                verb,
                url,
                timeout=(min(CONNECT_TIMEOUT, self.timeout), self.timeout),
                # A redirected POST turns into a GET without a body; say so instead.
                allow_redirects=False,
                **kwargs,
            )
        except requests.ConnectTimeout as exc:
            connect = min(CONNECT_TIMEOUT, self.timeout)
            raise Timeout(f"timed out connecting to {self._shown_url} after {connect:g}s") from exc
        except requests.ReadTimeout as exc:
            raise Timeout(
                f"no answer from {self._shown_url} within {self.timeout:g}s "
                "(the call may still complete on the server)"
            ) from exc
        except requests.ConnectionError as exc:
            raise ConnectError(f"cannot connect to {self._shown_url}: {_reason(exc)}") from exc
        except requests.RequestException as exc:
            raise TransportError(f"request to {self._shown_url} failed: {_reason(exc)}") from exc

    def _result(self, response: requests.Response, request_id: int, method: str) -> Any:
        if response.is_redirect:
            where = response.headers.get("Location", "?")
            raise ProtocolError(
                f"{self._shown_url} redirects to {where}; use the final URL as the API host"
            )
        if response.status_code != 200:
            raise ProtocolError(
                f"HTTP {response.status_code} {response.reason} from {self._shown_url}: "
                "not an API endpoint (check the API host)"
            )
        try:
            answer = json.loads(response.content)
        except ValueError as exc:
            raise ProtocolError(
                f"the answer from {self._shown_url} is not JSON: "
                "not an API endpoint (check the API host)"
            ) from exc
        if not isinstance(answer, dict) or "result" not in answer or "error" not in answer:
            raise ProtocolError(f"the answer from {self._shown_url} is not a JSON-RPC answer")
        error = answer["error"]
        got_id = answer.get("id")
        # The server reads the id only after the body: when it could not read the body (too
        # large, say) it answers id null, and its error text is the useful part.
        if error is not None and got_id is None:
            raise _api_error(error, method)
        if got_id != request_id:
            raise ProtocolError(f"answer id {got_id!r} does not match request id {request_id}")
        if error is not None:
            raise _api_error(error, method)
        return answer["result"]


    def _token_answer(self, response: requests.Response, url: str) -> dict[str, Any]:
        shown = safe_url(url)
        try:
            answer = json.loads(response.content)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise ProtocolError(f"HTTP {response.status_code} {response.reason} from {shown}: "
                                "not a token endpoint (an older server, or the wrong host)")
        if response.status_code == 200 and isinstance(answer.get("token"), str):
            return answer
        errors = answer.get("errors")
        message = (errors[0].get("message") if isinstance(errors, list) and errors
                   and isinstance(errors[0], dict) else None) or f"HTTP {response.status_code}"
        if response.status_code == 401:
            raise InvalidApiKey(str(message), "token")
        if response.status_code in (400, 403, 429, 503):
            raise ApiError(str(message), "token")
        raise ProtocolError(f"HTTP {response.status_code} {response.reason} from {shown}: "
                            f"{message}")


def _api_error(error: Any, method: str) -> ApiError:
    text = error if isinstance(error, str) else json.dumps(error)
    if text == InvalidApiKey.TEXT:
        return InvalidApiKey(text, method)
    return ApiError(text, method)
