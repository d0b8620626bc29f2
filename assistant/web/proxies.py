"""Who is calling: the client address of a request, from forwarded headers only when a trusted proxy sent them.

`TrustedProxies`, an ASGI middleware in front of everything, sets each request's client
address. It believes `X-Forwarded-For` (or RFC 7239 `Forwarded`) only when the direct peer
is one of the configured reverse proxies (`--trusted-proxy`); from anyone else those headers
are ignored, so nobody can pick the address the sign-in throttle counts against.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from assistant.core.errors import InputError

__all__ = ["TRUSTED_PROXIES_ENV", "TrustedProxies", "client_address", "parse_trusted_proxies"]

TRUSTED_PROXIES_ENV = "CALIBRATED_CHAT_TRUSTED_PROXIES"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_trusted_proxies(values: Iterable[str], source: str = "--trusted-proxy") -> tuple[Network, ...]:
    """The networks of `values` ("10.0.0.5", "10.0.0.0/24, fd00::/8", …); InputError naming a bad one."""
    networks = []
    for item in (part.strip() for value in values for part in value.split(",")):
        if not item:
            continue
        try:
            network = ipaddress.ip_network(item, strict=True)
        except ValueError as err:
            raise InputError(f"{source}: {item!r} is not an IP address or network ({err}); give the reverse "
                             "proxies' addresses or CIDR networks, comma-separated, e.g. 10.0.0.5,10.1.0.0/24 "
                             "(host names are not accepted)") from None
        if network.prefixlen == 0:
            raise InputError(f"{source}: {item!r} would trust every address, so anyone could forge theirs; "
                             "name only your reverse proxies")
        networks.append(network)
    return tuple(networks)


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address in a forwarded hop ("1.2.3.4", "1.2.3.4:5", "[::1]:5", '"[::1]"'); None when not one."""
    value = value.strip().strip('"')
    if value.startswith("["):
        value = value[1:value.find("]")] if "]" in value else ""
    elif value.count(":") == 1:
        value = value.split(":")[0]
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    mapped = getattr(address, "ipv4_mapped", None)  # "::ffff:10.0.0.5" from a dual-stack socket
    return mapped or address


def _header(scope, name: bytes) -> str | None:
    values = [v.decode("latin-1") for k, v in scope.get("headers", ()) if k == name]
    return ",".join(values) if values else None


def _forwarded_hops(scope) -> tuple[list[str], str | None]:
    """(client hops, left to right; protocol) from X-Forwarded-For/-Proto, else from Forwarded."""
    xff = _header(scope, b"x-forwarded-for")
    if xff is not None:
        return xff.split(","), _header(scope, b"x-forwarded-proto")
    hops, proto = [], None
    for element in (_header(scope, b"forwarded") or "").split(","):
        for pair in element.split(";"):
            key, _, value = pair.partition("=")
            if key.strip().lower() == "for":
                hops.append(value)
            elif key.strip().lower() == "proto":
                proto = value.strip().strip('"')
    return hops, proto


class TrustedProxies:
    """ASGI middleware: sets `scope["client"]` (and the scheme) from forwarded headers when, and only
    when, the direct peer is a trusted proxy. The forwarded hops are read right to left, past other
    trusted proxies: the first one that is not trusted is the client (the left part of the header
    comes from the client and proves nothing)."""

    def __init__(self, app, proxies: Iterable[Network] = ()):
        self.app = app
        self.proxies = tuple(proxies)

    def trusted(self, address) -> bool:
        return address is not None and any(address in network for network in self.proxies)

    def client_of(self, scope) -> tuple[str | None, str | None]:
        """(the client's address, the forwarded protocol); (None, None) when the peer is no trusted proxy."""
        peer = _ip(scope["client"][0]) if scope.get("client") else None
        if not self.trusted(peer):
            return None, None
        hops, proto = _forwarded_hops(scope)
        client = peer
        for hop in reversed(hops):
            address = _ip(hop)
            if address is None:  # "unknown", an obfuscated name or garbage: the last proxy is all we know
                break
            client = address
            if not self.trusted(address):
                break
        return str(client), proto

    async def __call__(self, scope, receive, send):
        if scope["type"] in ("http", "websocket") and self.proxies:
            client, proto = self.client_of(scope)
            if client is not None:
                scope = {**scope, "client": (client, 0)}
                if proto in ("http", "https"):
                    scope["scheme"] = proto.replace("http", "ws") if scope["type"] == "websocket" else proto
        await self.app(scope, receive, send)


def client_address(scope) -> str:
    """The request's client address as `TrustedProxies` left it; \"unknown\" when there is none."""
    client = scope.get("client")
    return client[0] if client else "unknown"
