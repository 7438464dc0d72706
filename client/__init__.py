"""Python client for Kallithea-dialect JSON-RPC servers (rpcserver, Kallithea).

    from client import ApiClient, ApiError

    with ApiClient("http://127.0.0.1:5000", api_key) as api:
        repo = api.call("get_repo", repoid="myrepo")

Everything public is listed here; the modules behind it may change.
"""

from client.api import DEFAULT_TIMEOUT, ApiClient
from client.errors import (
    ApiError,
    ClientError,
    ConnectError,
    InvalidApiKey,
    ProtocolError,
    Timeout,
    TransportError,
)

__all__ = [
    "DEFAULT_TIMEOUT",
    "ApiClient",
    "ApiError",
    "ClientError",
    "ConnectError",
    "InvalidApiKey",
    "ProtocolError",
    "Timeout",
    "TransportError",
]
