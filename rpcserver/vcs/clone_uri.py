"""``clone_uri``: what the server may fetch from, checked on every use, and how it is shown.

A clone_uri is checked when it is saved (create_repo, update_repo) and again before every
fetch (create, pull), because the address a host name resolves to can change. The rules
(docs/repositories.md):

- schemes ``http``, ``https``, ``git``, ``ssh`` (and ssh's ``user@host:path`` form);
- hosts that resolve to loopback, private, link-local or otherwise non-public addresses are
  refused unless ``clone_uri_allow_private_hosts``;
- ``file://`` URLs and local paths are refused unless ``clone_uri_allow_local_paths``;
- transport helpers (``ext::...``), option-like values (``-u...``, ``--upload-pack=...``) and
  control characters are always refused.

A password inside a clone_uri is stored, but answered masked (``https://user:***@host/r``) and
never logged.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

NETWORK_SCHEMES = ("http", "https", "git", "ssh")
DEFAULT_PORTS = {"http": 80, "https": 443, "git": 9418, "ssh": 22}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_HELPER = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*::")
#: ssh's scp-like form: [user@]host:path, where no ``/`` comes before the colon.
_SCP = re.compile(r"^(?:(?P<user>[^@/:]+)@)?(?P<host>\[[0-9A-Fa-f:.]+\]|[^@/:\[\]]+):(?P<path>.*)$")
_HOSTNAME = re.compile(r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,62})"
                       r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,62}))*\.?$")


class CloneUriError(ValueError):
    """The clone_uri may not be used; ``reason`` is safe to send (it never echoes secrets)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Source:
    """A checked clone_uri, ready for git."""

    url: str
    scheme: str
    #: The transports git may use for it (``GIT_ALLOW_PROTOCOL``).
    protocols: tuple[str, ...]
    #: ``host:port:addr[,addr]`` entries that pin an http(s) host to the checked addresses.
    pins: tuple[str, ...] = ()
    #: Strings to blank out of anything logged (the password, raw and decoded).
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: ssh: the host name the URL named, when ``url`` names its checked address instead;
    #: the host key is looked up under this name (ssh's ``HostKeyAlias``).
    ssh_host_key_alias: str | None = None

    @property
    def masked(self) -> str:
        return mask(self.url) or ""


@dataclass(frozen=True)
class Policy:
    allow_private_hosts: bool = False
    allow_local_paths: bool = False


def check(uri: str, policy: Policy, *, resolve: bool = True) -> Source:
    """The checked ``Source`` for ``uri``; ``CloneUriError`` says why it is refused.

    With ``resolve=False`` host names are not looked up (used nowhere a fetch follows).
    """
    if not uri:
        raise CloneUriError("must not be empty")
    if uri != uri.strip() or any(ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        raise CloneUriError("must not contain whitespace at its ends or control characters")
    if uri.startswith("-"):
        raise CloneUriError("must not start with `-`")
    scheme_match = _SCHEME.match(uri)
    if scheme_match is None and _HELPER.match(uri):
        raise CloneUriError("git transport helpers (`<transport>::<address>`) are not allowed")
    if scheme_match is not None:
        scheme = scheme_match.group(1).lower()
        if scheme == "file":
            return _local(uri, urlsplit(uri).path, policy, file_url=True)
        if scheme not in NETWORK_SCHEMES:
            raise CloneUriError(f"scheme `{scheme}` is not allowed (use http, https, git or "
                                "ssh)")
        return _network(uri, scheme, policy, resolve)
    scp = _SCP.match(uri)
    if scp is not None and not uri.startswith(("/", ".")):
        return _scp(uri, scp, policy, resolve)
    return _local(uri, uri, policy, file_url=False)


def mask(uri: str | None) -> str | None:
    """``uri`` with the password of its user info replaced by ``***``."""
    if not uri:
        return uri
    found = _SCHEME.match(uri)
    if found is None:
        return uri
    start = found.end()
    end = len(uri)
    for stop in "/?#":
        pos = uri.find(stop, start)
        if pos != -1:
            end = min(end, pos)
    netloc = uri[start:end]
    userinfo, at, hostport = netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return uri
    user = userinfo.split(":", 1)[0]
    return f"{uri[:start]}{user}:***@{hostport}{uri[end:]}"


#: Characters that end the host part for one parser but not for another: ``urlsplit`` stops at
#: ``#`` and ``?``, git hands ssh the whole authority and ssh takes the host after the last
#: ``@`` (``ssh://good.example#@127.0.0.1/x`` would dial loopback).
_AMBIGUOUS = "#?\\ \t"


def _authority(uri: str) -> tuple[str, str]:
    """(the text between ``://`` and the next ``/``, the rest from that ``/`` on)."""
    start = uri.index("://") + 3
    end = uri.find("/", start)
    end = len(uri) if end == -1 else end
    return uri[start:end], uri[end:]


def _check_authority(authority: str) -> None:
    if any(c in authority for c in _AMBIGUOUS):
        raise CloneUriError("the host part must not contain `#`, `?`, `\\` or spaces")
    if authority.count("@") > 1:
        raise CloneUriError("the host part must not contain more than one `@`")


def _bracketed(address: str) -> str:
    return f"[{address}]" if ":" in address else address


def _network(uri: str, scheme: str, policy: Policy, resolve: bool) -> Source:
    if scheme in ("ssh", "git"):
        _check_authority(_authority(uri)[0])
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        raise CloneUriError("is not a valid URL") from None
    host = parts.hostname
    if not host:
        raise CloneUriError("has no host")
    if scheme == "ssh" and parts.password is not None:
        # ssh takes no password from a URL: git would hand it on as part of the user name, in
        # ssh's command line, where every local user can read it.
        raise CloneUriError("an ssh URL must not carry a password (ssh signs in with a key)")
    if scheme == "git" and parts.username is not None:
        raise CloneUriError("a git:// URL has no user part")
    _check_host_syntax(host)
    secrets = tuple(s for s in {parts.password or "", unquote(parts.password or "")} if s)
    port = port or DEFAULT_PORTS[scheme]
    addresses = _allowed_addresses(host, port, policy, resolve)
    protocols = ("http", "https") if scheme in ("http", "https") else (scheme,)
    if scheme in ("http", "https"):
        pins: tuple[str, ...] = ()
        if addresses and _is_name(host):
            pins = (f"{host}:{port}:{','.join(_bracketed(a) for a in addresses)}",)
        return Source(url=uri, scheme=scheme, protocols=protocols, pins=pins, secrets=secrets)
    # ssh and git: git is handed a URL rebuilt from the checked parts, naming the checked
    # address, so nothing can resolve or parse the host differently later.
    authority, rest = _authority(uri)
    userinfo, at, _hostport = authority.rpartition("@")
    pinned = _pin(host, port, addresses, policy, resolve)
    hostpart = _bracketed(pinned or host)
    portpart = f":{parts.port}" if parts.port else ""
    url = f"{scheme}://{userinfo}{at}{hostpart}{portpart}{rest}"
    alias = host if pinned is not None and scheme == "ssh" else None
    return Source(url=url, scheme=scheme, protocols=protocols, secrets=secrets,
                  ssh_host_key_alias=alias)


def _scp(uri: str, found: re.Match[str], policy: Policy, resolve: bool) -> Source:
    host = found.group("host").strip("[]")
    user = found.group("user")
    if any(c in (user or "") + host for c in _AMBIGUOUS):
        raise CloneUriError("the host part must not contain `#`, `?`, `\\` or spaces")
    _check_host_syntax(host)
    addresses = _allowed_addresses(host, DEFAULT_PORTS["ssh"], policy, resolve)
    pinned = _pin(host, DEFAULT_PORTS["ssh"], addresses, policy, resolve)
    url = f"{user + '@' if user else ''}{_bracketed(pinned or host)}:{found.group('path')}"
    return Source(url=url, scheme="ssh", protocols=("ssh",),
                  ssh_host_key_alias=host if pinned is not None else None)


def _local(uri: str, path: str, policy: Policy, *, file_url: bool) -> Source:
    if not policy.allow_local_paths:
        what = "`file://` URLs" if file_url else "local paths"
        raise CloneUriError(f"{what} are not allowed (see clone_uri_allow_local_paths)")
    if file_url:
        host = urlsplit(uri).hostname
        if host not in (None, "", "localhost"):
            raise CloneUriError("a `file://` URL must not name a host")
    if not path.startswith("/"):
        raise CloneUriError("a local path must be absolute")
    return Source(url=uri, scheme="file", protocols=("file",))


def _pin(host: str, port: int, addresses: list[str], policy: Policy,
         resolve: bool) -> str | None:
    """The address an ssh or git host name is pinned to (None: an address already, or not
    resolved). With private hosts allowed the name is not checked, but is still pinned when
    it resolves, so that the host git dials is the one resolved now."""
    if not _is_name(host):
        return None
    if addresses:
        return addresses[0]
    if not (policy.allow_private_hosts and resolve):
        return None
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return None
    return sorted({str(info[4][0]).split("%", 1)[0] for info in infos})[0]


def _check_host_syntax(host: str) -> None:
    if host.startswith("-"):
        raise CloneUriError("host must not start with `-`")
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not _HOSTNAME.fullmatch(host):
        raise CloneUriError("host is not a valid host name")


def _is_name(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return True
    return False


def _allowed_addresses(host: str, port: int, policy: Policy, resolve: bool) -> list[str]:
    """The host's addresses, all of them public unless private hosts are allowed."""
    if policy.allow_private_hosts:
        return []
    if not _is_name(host):
        addresses = [host]
    elif not resolve:
        return []
    else:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (OSError, UnicodeError):
            raise CloneUriError(f"host `{host}` cannot be resolved") from None
        addresses = sorted({str(info[4][0]).split("%", 1)[0] for info in infos})
    for address in addresses:
        if not _is_public(address):
            raise CloneUriError(f"host `{host}` is on a loopback, private or link-local "
                                "network (see clone_uri_allow_private_hosts)")
    return addresses


#: IPv6 ranges whose addresses carry an IPv4 address in their last 32 bits, which a NAT64
#: gateway, an SIIT translator or a host's own stack may forward to: IPv4-mapped,
#: IPv4-translated, NAT64 (well-known and local-use prefixes), IPv4-compatible.
_EMBEDDING_V4 = tuple(ipaddress.ip_network(n) for n in (
    "::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96", "64:ff9b:1::/48", "::/96"))


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.sixtofour is not None and not _is_public(str(ip.sixtofour)):
            return False  # 6to4: 2002:AABB:CCDD::/48 is relayed to AA.BB.CC.DD
        if any(ip in net for net in _EMBEDDING_V4):
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            if ip.ipv4_mapped is not None:
                return embedded.is_global and not embedded.is_multicast
            if not (embedded.is_global and not embedded.is_multicast):
                return False
    return ip.is_global and not ip.is_multicast
