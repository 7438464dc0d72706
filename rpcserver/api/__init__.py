"""The API methods, one module per area; each module fills its own ``registry``."""

from __future__ import annotations

from rpcserver.core.registry import Registry


def build_registry() -> Registry:
    """A registry with every method of the server."""
    from rpcserver.api import (
        gists,
        keys,
        perms,
        pull,
        repo_content,
        repo_create,
        repo_groups,
        repos,
        server,
        user_groups,
        users,
    )

    registry = Registry()
    for module in (server, users, user_groups, repos, repo_create, repo_content, pull,
                   repo_groups, perms, keys, gists):
        registry.include(module.registry)
    return registry
