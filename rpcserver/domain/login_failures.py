"""Failed authentications, counted per client address and per username (docs/security.md,
"Failed logins"): past ``max_failed_logins`` within ``failed_login_window`` seconds, every
call from that address (or naming that user in HTTP Basic) answers
``too many failed logins, try again in <N> s`` before its key is even looked up.

The counts live in each worker process's memory: no write per failure (a guesser would
otherwise make the database work for it), at the price that each worker counts on its own, so
with ``workers`` processes a guesser gets up to that many times the limit. Memory is bounded:
at most ``MAX_TRACKED`` subjects, the oldest forgotten first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable

from rpcserver.core.errors import TooManyFailures

#: The most addresses and usernames remembered at once.
MAX_TRACKED = 100_000


class LoginFailures:
    def __init__(self, limit: int, window: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, subjects: Iterable[str]) -> None:
        """Raise ``TooManyFailures`` when any of ``subjects`` is over the limit."""
        if self.limit <= 0:
            return
        now = self.clock()
        with self._lock:
            for subject in subjects:
                recent = self._recent(subject, now)
                if recent is not None and len(recent) >= self.limit:
                    raise TooManyFailures(max(1, math.ceil(recent[0] + self.window - now)))

    def record(self, subjects: Iterable[str]) -> None:
        if self.limit <= 0:
            return
        now = self.clock()
        with self._lock:
            for subject in subjects:
                recent = self._recent(subject, now)
                if recent is None:
                    recent = self._failures[subject] = deque(maxlen=self.limit)
                    while len(self._failures) > MAX_TRACKED:
                        self._failures.popitem(last=False)
                recent.append(now)
                self._failures.move_to_end(subject)

    def _recent(self, subject: str, now: float) -> deque[float] | None:
        recent = self._failures.get(subject)
        if recent is None:
            return None
        while recent and recent[0] <= now - self.window:
            recent.popleft()
        if not recent:
            del self._failures[subject]
            return None
        return recent
