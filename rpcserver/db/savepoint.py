"""Writing what a unique index or a foreign key may refuse: the database decides (also when two
calls race), and the refusal becomes the call's answer instead of a failed transaction."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from rpcserver.core.errors import ApiError

log = logging.getLogger(__name__)


@contextlib.contextmanager
def flushed_or(session: Session, refusal: ApiError | Callable[[], ApiError | None], *,
               why: str = "") -> Iterator[None]:
    """Flush the block's changes in a savepoint; if the database refuses them, roll back to it
    and raise ``refusal`` (or what ``refusal()`` answers; None: re-raise the database's
    error, a refusal nobody expected), logging ``why``. The transaction stays usable."""
    try:
        with session.begin_nested():
            yield
            session.flush()
    except IntegrityError:
        if why:
            log.info("%s", why)
        answer = refusal() if callable(refusal) else refusal
        if answer is None:
            raise
        raise answer from None
