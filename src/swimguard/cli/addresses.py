"""HOST[:PORT] flag values: parsed and resolved so that every mistake names its flag."""

from __future__ import annotations

from swimguard.aio.sockets import is_ip, parse_address, resolve_host
from swimguard.protocol.outgoing import Address

__all__ = ["CannotStart", "address_arg", "resolve", "rpc_addr_arg"]


class CannotStart(Exception):
    """A runtime failure before the agent runs (an address that does not resolve)."""


def address_arg(flag: str, text: str, default_port: int | None) -> Address:
    """Parse a HOST[:PORT] flag value (`default_port` None: the port is required);
    ValueError names the flag and the value."""
    stripped = text.strip()
    if stripped.count(":") > 1 and not stripped.startswith("["):
        # "::1:0" is a valid IPv6 address *and* looks like host ::1 port 0: refuse to guess.
        whole = f"[{stripped}]:{'PORT' if default_port is None else default_port}"
        head, _, last = stripped.rpartition(":")
        raise ValueError(
            f"{flag} {text!r}: write an IPv6 address in brackets: {whole}, or [{head}]:{last}"
            " if the last part is the port"
        )
    try:
        host, port = parse_address(stripped, default_port=default_port)
    except ValueError as exc:
        raise ValueError(f"{flag} {text!r}: {exc}") from None
    if ":" in host and not is_ip(host):
        raise ValueError(f"{flag} {text!r}: {host!r} is not an IPv6 address")
    return host, port


def resolve(flag: str, text: str, addr: Address) -> Address:
    """`addr` with its host as an IP literal; `CannotStart` names the flag if it fails."""
    host, port = addr
    try:
        return resolve_host(host), port
    except OSError as exc:
        detail = exc.strerror or str(exc)
        raise CannotStart(f"{flag} {text}: cannot resolve {host!r}: {detail}") from None


def rpc_addr_arg(text: str) -> Address | None:
    """`--rpc-addr`: None when empty (no RPC), else the address (port 7373 if omitted)."""
    if not text.strip():
        return None
    host, port = address_arg("--rpc-addr", text, 7373)
    if not is_ip(host):
        host = resolve("--rpc-addr", text, (host, port))[0]
    return host, port
