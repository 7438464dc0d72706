"""docs/authentication.md's examples, run as written against a real server with curl: the
documentation cannot drift from what the server does."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.server_process import ServerProcess

DOC = Path(__file__).resolve().parents[2] / "docs" / "authentication.md"
BLOCKS = re.findall(r"```sh\n(.*?)```", DOC.read_text(), flags=re.S)


def answers(output: str) -> list[Any]:
    """Every JSON value curl printed, one after another."""
    decoder = json.JSONDecoder()
    found, at = [], 0
    while at < len(output):
        if output[at].isspace():
            at += 1
            continue
        value, at = decoder.raw_decode(output, at)
        found.append(value)
    return found


def test_the_doc_has_examples() -> None:
    assert len(BLOCKS) >= 3


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_example(index: int, live_server: ServerProcess) -> None:
    env = {**os.environ, "SERVER": live_server.url, "RPC_USER": "admin",
           "KEY": live_server.admin_key}
    done = subprocess.run(["bash", "-euo", "pipefail", "-c", BLOCKS[index]], env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr + done.stdout
    printed = answers(done.stdout)
    assert printed, "the example printed no answer"
    for answer in printed:
        assert answer["error"] is None, answer
        assert answer["result"] is not None
