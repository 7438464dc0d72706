"""clone_uri pointing into the server's own network, with private hosts not allowed (the
default): whatever spelling of the address, nothing is created, stored or fetched."""

from __future__ import annotations

import pytest

from rpcserver.core.config import Config
from tests.conftest import Rpc
from tests.gitremotes import leftovers, on_disk
from tests.security.conftest import err, ok

REFUSED = "Invalid `clone_uri` arg in JSON DATA: "
PRIVATE = "is on a loopback, private or link-local network (see clone_uri_allow_private_hosts)"

#: Spellings of loopback and private addresses that resolvers and kernels accept.
SPELLINGS = [
    "http://2130706433/r",                 # 127.0.0.1 as one decimal number
    "http://017700000001/r",               # ... in octal
    "http://0x7f.1/r",                     # ... hex and short form
    "http://127.1/r",
    "http://0/r",                          # 0.0.0.0: this host
    "http://LOCALHOST/r",
    "https://[::ffff:127.0.0.1]/r",        # IPv4-mapped IPv6
    "https://[::ffff:7f00:1]/r",
    "git://[::]/r",
    "http://[0:0:0:0:0:ffff:a00:5]:8080/r",
    "ssh://git@[fd00::1]/r",               # unique-local
    "git@[fe80::1]:r",                     # scp-like, link-local
]

#: IPv6 addresses that carry an IPv4 address which a NAT64 gateway, a 6to4 relay or an
#: SIIT translator on the server's network forwards to: the IPv4 address decides.
EMBEDDED = [
    "http://[64:ff9b::a00:5]/r",           # NAT64 well-known prefix -> 10.0.0.5
    "http://[64:ff9b::7f00:1]/r",          # -> 127.0.0.1
    "http://[64:ff9b::a9fe:a9fe]/latest",  # -> 169.254.169.254 (cloud metadata)
    "http://[2002:a00:5::1]/r",            # 6to4 -> 10.0.0.5
    "http://[2002:7f00:1::]/r",            # 6to4 -> 127.0.0.1
    "http://[::ffff:0:a00:5]/r",           # SIIT IPv4-translated -> 10.0.0.5
    "http://[::a00:5]/r",                  # IPv4-compatible (deprecated) -> 10.0.0.5
    "http://[::7f00:1]/r",
]


@pytest.mark.parametrize("uri", SPELLINGS + EMBEDDED)
def test_private_addresses_are_refused_however_spelled(rpc: Rpc, config: Config,
                                                       uri: str) -> None:
    assert not config.clone_uri_allow_private_hosts
    answer = err(rpc("create_repo", repo_name="r", clone_uri=uri))
    assert answer.startswith(REFUSED) and answer.endswith(PRIVATE), answer
    ok(rpc("create_repo", repo_name="s"))
    assert err(rpc("update_repo", repoid="s", clone_uri=uri)).endswith(PRIVATE)
    assert err(rpc("pull", repoid="s", clone_uri=uri)).endswith(PRIVATE)
    assert ok(rpc("get_repo", repoid="s"))["clone_uri"] is None
    assert err(rpc("get_repo", repoid="r")) == "repository `r` does not exist"
    assert on_disk(config.repos_root) == ["s"] and leftovers(config.repos_root) == []


@pytest.mark.parametrize("uri", ["http://[64:ff9b::808:808]/r", "http://[2002:808:808::1]/r",
                                 "https://[2606:4700:4700::1111]/r"])
def test_public_addresses_embedded_in_ipv6_stay_allowed(rpc: Rpc, uri: str) -> None:
    ok(rpc("create_repo", repo_name="s"))
    assert ok(rpc("update_repo", repoid="s", clone_uri=uri))["repository"]["clone_uri"] == uri


def test_unresolvable_names_are_refused_before_anything_is_made(rpc: Rpc,
                                                                config: Config) -> None:
    answer = err(rpc("create_repo", repo_name="r", clone_uri="http://no-such-host.invalid/r"))
    assert answer == REFUSED + "host `no-such-host.invalid` cannot be resolved"
    assert on_disk(config.repos_root) == [] and leftovers(config.repos_root) == []
