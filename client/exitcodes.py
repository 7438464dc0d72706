"""rpc-api's exit codes: scripts branch on them, so each means one thing and 0 means success."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """What happened, as `$?` tells a shell script."""

    OK = 0
    #: The server answered with an error; its text is on stderr.
    API_ERROR = 1
    #: Bad options or arguments, or an unusable config file (click's own code for usage errors).
    USAGE = 2
    #: No usable answer: connection refused, DNS, TLS, timeout, or not an API endpoint.
    CONNECTION = 3
    #: The server refused the API key (`Invalid API key`).
    INVALID_API_KEY = 4
    #: Interrupted with Ctrl-C (128 + SIGINT, as shells report it).
    INTERRUPTED = 130
    #: Whoever read stdout stopped early (`| head`), as a shell reports SIGPIPE (128 + 13).
    BROKEN_PIPE = 141
