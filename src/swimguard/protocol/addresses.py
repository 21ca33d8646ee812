"""Conversions between text addresses ("127.0.0.1", "::1") and wire address bytes."""

from __future__ import annotations

import functools
import ipaddress

__all__ = ["bytes_to_host", "host_to_bytes", "ip_allowed"]


@functools.lru_cache(maxsize=8192)
def host_to_bytes(host: str) -> bytes:
    """4 bytes for IPv4, 16 for IPv6; raises ValueError for anything but an IP literal."""
    return ipaddress.ip_address(host).packed


@functools.lru_cache(maxsize=8192)
def bytes_to_host(raw: bytes) -> str | None:
    """Text form of 4- or 16-byte wire addresses (IPv4-mapped IPv6 -> IPv4); None if invalid."""
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw))
    if len(raw) == 16:
        addr = ipaddress.IPv6Address(raw)
        mapped = addr.ipv4_mapped
        return str(mapped) if mapped is not None else addr.compressed
    return None


def ip_allowed(nets: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...], host: str) -> bool:
    """memberlist `IPAllowed`: True unless `nets` (`cidrs_allowed`) is set and excludes `host`."""
    if not nets:
        return True
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        return False
    return any(ip in net for net in nets)
