"""Server-wide methods: test, get_server_info, get_ip."""

from __future__ import annotations

import functools
import importlib.metadata
import ipaddress
import platform
from typing import Any

from sqlalchemy import select

from rpcserver import KALLITHEA_API_VERSION, __version__
from rpcserver.core import schemas
from rpcserver.core.errors import ApiError
from rpcserver.core.registry import Registry
from rpcserver.db.models import UserIpRule
from rpcserver.domain import rows
from rpcserver.domain.context import ReadContext
from rpcserver.domain.permissions import ADMIN
from rpcserver.domain.repositories import backend
from rpcserver.vcs.backend import BACKENDS

registry = Registry()

#: The libraries whose versions get_server_info reports (what an admin debugging needs).
REPORTED_MODULES = ("werkzeug", "SQLAlchemy", "alembic", "jsonschema", "argon2-cffi",
                    "gunicorn", "psycopg", "mercurial")


@registry.method("test", schema=schemas.obj(required=("args",), args=schemas.not_null()),
                 permission=ADMIN)
def test(ctx: ReadContext, args: Any) -> Any:
    """Echo ``args`` back: checks that the key and the server work."""
    return args


@registry.method("get_server_info", schema=schemas.obj(), permission=ADMIN)
def get_server_info(ctx: ReadContext) -> dict[str, Any]:
    """Versions of the server, Python, the platform and git."""
    info: dict[str, Any] = {
        "modules": _modules(),
        "py_version": platform.python_version(),  # as Kallithea: 3.11.7, no build string
        "platform": platform.platform(),
        "kallithea_version": KALLITHEA_API_VERSION,
    }
    for repo_type in BACKENDS:  # git: git_version, git_path
        try:
            vcs = backend(ctx.config, repo_type)
        except ApiError:  # a tool this server lacks: the rest is still worth answering
            continue
        info.update(vcs.version_info())
    return info


@functools.cache
def _modules() -> list[list[str]]:
    found = [["rpcserver", __version__]]
    for name in REPORTED_MODULES:
        try:
            found.append([name, importlib.metadata.version(name)])
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


@registry.method("get_ip", schema=schemas.obj(userid=schemas.nullable(schemas.id_or_name())),
                 permission=ADMIN, aliases=("show_ip",))
def get_ip(ctx: ReadContext, userid: Any = None) -> dict[str, Any]:
    """The address the server sees the call come from, and the user's allowed addresses."""
    user = ctx.caller if userid is None else rows.get_user(ctx.conn, userid)
    rules = ctx.conn.scalars(
        select(UserIpRule.ip_addr).where(UserIpRule.user_id == user.id).order_by(UserIpRule.id)
    ).all()
    return {
        "server_ip_addr": ctx.client_ip,
        "user_ips": [_ip_rule(rule) for rule in rules],
    }


def _ip_rule(rule: str) -> dict[str, Any]:
    network = ipaddress.ip_network(rule, strict=False)
    return {"ip_addr": rule,
            "ip_range": [str(network.network_address), str(network.broadcast_address)]}
