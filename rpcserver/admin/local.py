"""The admin command's calls: through the dispatcher, as the API's are, with a ``local-cli``
credential, so that every check and hook runs for them too."""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Iterator

import click

from rpcserver.core.config import Config
from rpcserver.core.credentials import LOCAL_CLI, Credential
from rpcserver.core.errors import ApiError
from rpcserver.db.database import Database
from rpcserver.domain.auth import NoActiveAdmin
from rpcserver.rpc.dispatch import Dispatcher


@contextlib.contextmanager
def as_admin(config: Config) -> Iterator[tuple[Dispatcher, Credential]]:
    """A dispatcher on ``config``'s database and the credential of whoever runs the command;
    an ``ApiError`` becomes the command's error message."""
    from rpcserver.api import build_registry

    database = Database.connect(config.database_url)
    try:
        yield (Dispatcher(config, database, build_registry()),
               Credential(LOCAL_CLI, os_user=_os_user()))
    except NoActiveAdmin:
        raise click.ClickException("no active admin: run `rpcserver init`, or "
                                   "`rpcserver recover-admin USERNAME`") from None
    except ApiError as exc:
        raise click.ClickException(exc.text) from None
    finally:
        database.dispose()


def _os_user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
