"""A spinner on stderr for calls that keep a person waiting (`pull` of a big mirror).

Only on a terminal, and only after a second, so quick calls and scripts never see it; it erases
itself before the result is printed.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

DELAY = 1.0
INTERVAL = 0.1
FRAMES = "|/-\\"
ERASE_LINE = "\r\x1b[K"


class Progress:
    """Context manager: shows `<frame> <label> (<seconds>s)` while the block runs."""

    def __init__(self, stream: TextIO, label: str, delay: float = DELAY) -> None:
        self._stream = stream
        self._label = label
        self._delay = delay
        self._done = threading.Event()
        self._thread: threading.Thread | None = None
        self._shown = False

    def __enter__(self) -> Progress:
        if _is_tty(self._stream):
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()
        if self._shown:
            self._stream.write(ERASE_LINE)
            self._stream.flush()

    def _run(self) -> None:
        start = time.monotonic()
        if self._done.wait(self._delay):
            return
        frame = 0
        while not self._done.is_set():
            elapsed = time.monotonic() - start
            self._stream.write(
                f"{ERASE_LINE}{FRAMES[frame % len(FRAMES)]} {self._label} ({elapsed:.0f}s)"
            )
            self._stream.flush()
            self._shown = True
            frame += 1
            self._done.wait(INTERVAL)


def _is_tty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
