"""Address parsing and the paired UDP + TCP bind on one port.

memberlist listens with one UDP socket and one TCP listener on the same
IP:port and sends every UDP packet from the bound socket, so a peer that acks
"to the packet source" reaches us. Binding port 0 therefore has to find a port
that is free for both protocols at once.
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket

from swimguard.protocol.outgoing import Address

DEFAULT_PORT = 7946
"""memberlist's default port, used when a bind or seed string has none."""


def parse_address(text: str, *, default_port: int | None = None) -> Address:
    """Parse `HOST:PORT`, `[V6HOST]:PORT` or a bare host (with `default_port`).

    The host may be a name; `resolve_host` turns it into an IP later.
    Raises `ValueError` on malformed input.
    """
    text = text.strip()
    if not text:
        raise ValueError("empty address")
    host: str
    port_text: str | None
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"unclosed '[' in address {text!r}")
        host = text[1:end]
        rest = text[end + 1 :]
        if rest and not rest.startswith(":"):
            raise ValueError(f"junk after ']' in address {text!r}")
        port_text = rest[1:] if rest else None
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    elif text.count(":") > 1:
        # A bare IPv6 address without brackets: no port.
        host, port_text = text, None
    else:
        host, port_text = text, None
    if port_text is None:
        if default_port is None:
            raise ValueError(f"address {text!r} has no port")
        port = default_port
    else:
        try:
            port = int(port_text)
        except ValueError:
            raise ValueError(f"bad port in address {text!r}") from None
    if not 0 <= port <= 65535:
        raise ValueError(f"port out of range in address {text!r}")
    if not host:
        raise ValueError(f"address {text!r} has no host")
    return host, port


def format_address(addr: Address) -> str:
    """`HOST:PORT`, with brackets around IPv6 hosts."""
    host, port = addr
    if ":" in host:
        return f"[{host}]:{port}"
    return f"{host}:{port}"


def is_ip(host: str) -> bool:
    """True if `host` is an IPv4 or IPv6 literal."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def resolve_host(host: str) -> str:
    """Return `host` as an IP literal, resolving a name (first result) if needed.

    Blocking; call it before the agent starts, or in an executor.
    """
    if is_ip(host):
        return str(ipaddress.ip_address(host))
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    if not infos:
        raise OSError(f"cannot resolve {host!r}")
    return str(infos[0][4][0])


def unmap_host(host: str) -> str:
    """Turn an IPv4-mapped IPv6 host (`::ffff:1.2.3.4`) back into IPv4 text."""
    if host.startswith("::ffff:") and "." in host:
        return host[7:]
    return host


def normalize_peer(sockaddr: tuple[object, ...]) -> Address:
    """A socket address (2- or 4-tuple) as the core's `(ip, port)` pair."""
    host = str(sockaddr[0])
    port = sockaddr[1]
    assert isinstance(port, int)
    if "%" in host:  # drop an IPv6 zone id; memberlist addresses carry none
        host = host.split("%", 1)[0]
    return unmap_host(host), port


def destination_for(family: int, addr: Address) -> Address | None:
    """The address to hand `sendto` on a socket of `family`, or None if unreachable.

    An IPv6 socket (bound to `::`) reaches IPv4 peers through mapped addresses;
    an IPv4 socket cannot reach IPv6 peers at all.
    """
    host, port = addr
    v6 = ":" in host
    if family == socket.AF_INET6 and not v6:
        return f"::ffff:{host}", port
    if family == socket.AF_INET and v6:
        return None
    return addr


def literal_address(to: str | Address) -> Address:
    """`to` as an `(ip, port)` pair; ValueError unless its host is an IP literal."""
    host, port = parse_address(to) if isinstance(to, str) else to
    if not is_ip(host):
        raise ValueError(f"send needs an IP address, got {host!r}")
    return host, port


def seed_family_problem(bind_host: str, seed_host: str) -> str | None:
    """Why an agent bound to `bind_host` cannot use UDP with `seed_host`, or None if it can.

    Both are IP literals. Every datagram leaves from the bound socket, so an IPv4
    socket cannot reach an IPv6 peer, and an IPv6 socket reaches IPv4 peers only
    when it is the dual-stack wildcard `::`. Such a join would succeed over TCP and
    leave a member that can neither probe nor gossip with its cluster.
    """
    bind_ip = ipaddress.ip_address(bind_host)
    seed_ip = ipaddress.ip_address(seed_host)
    if bind_ip.version == seed_ip.version:
        return None
    if bind_ip.version == 6 and bind_ip.is_unspecified:
        return None
    return (
        f"seed {seed_host} is IPv{seed_ip.version} but the agent is bound to "
        f"IPv{bind_ip.version} address {bind_host}: UDP between them is impossible"
        + (" (bind to :: to serve both)" if seed_ip.version == 4 else "")
    )


def resolve_reachable(host: str, bind_host: str) -> str:
    """Resolve a seed name, preferring an address the bound socket can reach by UDP.

    A name with both A and AAAA records ("localhost" on many hosts) then joins
    an IPv4-bound agent over IPv4 instead of being refused for its IPv6 address.
    Blocking: run it in an executor.
    """
    infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    ips = [str(info[4][0]) for info in infos]
    if not ips:
        raise OSError(f"cannot resolve {host!r}")
    for ip in ips:
        if seed_family_problem(bind_host, ip) is None:
            return ip
    return ips[0]  # none reachable: join() refuses it, naming the seed


def default_advertise_host(bind_host: str) -> str:
    """The IP to advertise for a wildcard bind (`0.0.0.0` / `::`).

    Asks the kernel which source address it would use for a public destination
    (no packet is sent); falls back to loopback when there is no route.
    """
    ip = ipaddress.ip_address(bind_host)
    if not ip.is_unspecified:
        return bind_host
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    probe = "2001:db8::1" if family == socket.AF_INET6 else "192.0.2.1"
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.connect((probe, 9))
            return normalize_peer(s.getsockname())[0]
    except OSError:
        return "::1" if family == socket.AF_INET6 else "127.0.0.1"


def bind_pair(
    host: str, port: int, *, attempts: int = 32, udp_receive_buffer: int = 0
) -> tuple[socket.socket, socket.socket]:
    """Bind a UDP socket and a listening TCP socket on the same `host:port`.

    With `port == 0` the kernel picks the UDP port and the TCP bind is tried on
    it, up to `attempts` times. Raises `OSError` when no port works.
    Wildcard IPv6 binds (`::`) are dual-stack, like Go's listeners.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    last_error: OSError | None = None
    for _ in range(attempts if port == 0 else 1):
        udp = socket.socket(family, socket.SOCK_DGRAM)
        tcp: socket.socket | None = None
        try:
            if family == socket.AF_INET6 and ipaddress.ip_address(host).is_unspecified:
                udp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            if udp_receive_buffer > 0:
                with contextlib.suppress(OSError):  # a smaller kernel buffer still works
                    udp.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, udp_receive_buffer)
            udp.bind((host, port))
            chosen = udp.getsockname()[1]
            tcp = socket.socket(family, socket.SOCK_STREAM)
            tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6 and ipaddress.ip_address(host).is_unspecified:
                tcp.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
            tcp.bind((host, chosen))
            tcp.listen(128)
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp
        except OSError as exc:
            last_error = exc
            udp.close()
            if tcp is not None:
                tcp.close()
    assert last_error is not None
    raise last_error
