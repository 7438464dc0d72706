"""clone_uri rules: schemes, hosts, local paths, helpers, options; masking."""

from __future__ import annotations

import socket

import pytest

from rpcserver.vcs.clone_uri import CloneUriError, Policy, check, mask

STRICT = Policy()
LAN = Policy(allow_private_hosts=True)
LOCAL = Policy(allow_local_paths=True)


@pytest.mark.parametrize("uri", [
    "https://93.184.215.14/r.git",
    "http://93.184.215.14:8080/r",
    "git://93.184.215.14/r",
    "ssh://git@93.184.215.14/r",
    "ssh://git@[2606:4700::6810:84e5]:2222/r",
    "git@93.184.215.14:org/r.git",
])
def test_public_addresses_are_allowed(uri: str) -> None:
    source = check(uri, STRICT)
    assert source.url == uri
    assert source.scheme in ("http", "https", "git", "ssh")


@pytest.mark.parametrize("uri", [
    "http://127.0.0.1/r", "https://10.1.2.3/r", "git://192.168.0.1/r", "ssh://172.16.0.1/r",
    "http://169.254.169.254/latest/meta-data", "http://[::1]/r", "http://[fe80::1]/r",
    "http://[::ffff:127.0.0.1]/r", "http://0.0.0.0/r", "http://100.64.0.1/r",
    "http://localhost/r", "git@127.0.0.1:r.git", "http://224.0.0.1/r",
])
def test_private_loopback_and_link_local_hosts_are_refused(uri: str) -> None:
    with pytest.raises(CloneUriError) as exc:
        check(uri, STRICT)
    assert "loopback, private or link-local" in exc.value.reason
    assert check(uri, LAN).url == uri


@pytest.mark.parametrize("uri", ["file:///srv/git/r", "/srv/git/r", "../r", "r", "./r:x"])
def test_local_paths_are_refused_unless_allowed(uri: str) -> None:
    with pytest.raises(CloneUriError, match="are not allowed"):
        check(uri, LAN)


def test_allowed_local_paths_must_be_absolute() -> None:
    assert check("/srv/git/r", LOCAL).protocols == ("file",)
    assert check("file:///srv/git/r", LOCAL).protocols == ("file",)
    with pytest.raises(CloneUriError, match="absolute"):
        check("relative/r", LOCAL)
    with pytest.raises(CloneUriError, match="must not name a host"):
        check("file://evil.example/r", LOCAL)


@pytest.mark.parametrize("uri", ["ext::sh -c touch% /tmp/pwned", "fd::17", "EXT::x",
                                 "transport::anything"])
def test_transport_helpers_are_always_refused(uri: str) -> None:
    for policy in (STRICT, Policy(True, True)):
        with pytest.raises(CloneUriError, match="transport helpers"):
            check(uri, policy)


@pytest.mark.parametrize("uri", ["-uecho", "--upload-pack=touch /tmp/x", "-oProxyCommand=x"])
def test_option_like_values_are_always_refused(uri: str) -> None:
    with pytest.raises(CloneUriError, match="must not start with `-`"):
        check(uri, Policy(True, True))


@pytest.mark.parametrize("uri", ["ssh://-oProxyCommand=x/r", "-oProxyCommand=x:r",
                                 "ssh://git@-x:22/r"])
def test_option_like_hosts_are_refused(uri: str) -> None:
    with pytest.raises(CloneUriError):
        check(uri, LAN)


@pytest.mark.parametrize(("uri", "scheme"), [("ftp://93.184.215.14/r", "ftp"),
                                             ("svn://h/r", "svn"), ("HTTPX://h/r", "httpx")])
def test_other_schemes_are_refused(uri: str, scheme: str) -> None:
    with pytest.raises(CloneUriError, match=f"scheme `{scheme}` is not allowed"):
        check(uri, Policy(True, True))


@pytest.mark.parametrize("uri", ["https://h/r\n", " https://h/r", "https://h/\x00r", ""])
def test_control_characters_and_blank_values_are_refused(uri: str) -> None:
    with pytest.raises(CloneUriError):
        check(uri, LAN)


def test_unresolvable_hosts_are_refused() -> None:
    with pytest.raises(CloneUriError, match="cannot be resolved"):
        check("https://no-such-host.invalid/r", STRICT)


def test_invalid_ports_and_missing_hosts_are_refused() -> None:
    with pytest.raises(CloneUriError, match="not a valid URL"):
        check("http://93.184.215.14:99999/r", STRICT)
    with pytest.raises(CloneUriError, match="has no host"):
        check("https:///r", STRICT)


def fake_dns(monkeypatch: pytest.MonkeyPatch, answers: dict[str, list[str]]) -> None:
    def getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[object]:
        if host not in answers:
            raise socket.gaierror("no such host")
        return [(socket.AF_INET6 if ":" in a else socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 (a, port)) for a in answers[host]]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)


def test_http_host_names_are_pinned_to_the_checked_addresses(
        monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"mirror.example.com": ["93.184.215.14", "2606:4700::6810:84e5"]})
    source = check("https://mirror.example.com/r", STRICT)
    assert source.pins == ("mirror.example.com:443:[2606:4700::6810:84e5],93.184.215.14",)
    assert check("git://mirror.example.com/r", STRICT).pins == ()
    assert check("https://93.184.215.14/r", STRICT).pins == ()  # an address needs no pin
    assert check("https://93.184.215.14/r", STRICT).protocols == ("http", "https")
    assert check("git://93.184.215.14/r", STRICT).protocols == ("git",)


def test_a_name_with_any_private_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"sneaky.example.com": ["93.184.215.14", "10.0.0.5"]})
    with pytest.raises(CloneUriError, match="private"):
        check("https://sneaky.example.com/r", STRICT)
    assert check("https://sneaky.example.com/r", LAN).pins == ()


def test_passwords_are_kept_for_git_and_listed_as_secrets() -> None:
    source = check("https://bob:s%40cret@127.0.0.1/r", LAN)
    assert source.url == "https://bob:s%40cret@127.0.0.1/r"
    assert set(source.secrets) == {"s%40cret", "s@cret"}
    assert source.masked == "https://bob:***@127.0.0.1/r"


@pytest.mark.parametrize(("uri", "masked"), [
    ("https://user:secret@host/r", "https://user:***@host/r"),
    ("https://user:p@ss@host/r?x=1", "https://user:***@host/r?x=1"),
    ("https://user@host/r", "https://user@host/r"),
    ("https://host/r", "https://host/r"),
    ("git@host:r.git", "git@host:r.git"),
    ("ssh://git:pw@host:22/r", "ssh://git:***@host:22/r"),
    ("https://:token@host/r", "https://:***@host/r"),
    (None, None),
    ("", ""),
])
def test_mask(uri: str | None, masked: str | None) -> None:
    assert mask(uri) == masked
