"""Server configuration: what `lianbo serve` was told, as one frozen value."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from urllib.parse import unquote

from aiortc import RTCIceServer

from commerce.values import value


@value(kw_only=True)
class Config:
    host: str = "127.0.0.1"
    port: int = 8080
    data_dir: Path = Path("data")
    redis_url: str | None = None
    ice_servers: tuple[str, ...] = ()  # stun:host:port, turn:user:pass@host:port?transport=udp
    ice_hosts: tuple[str, ...] = ()  # gather ICE host candidates only on these addresses
    pli_interval_s: float = 1.0
    send_buffer_bytes_max: int = 256 * 1024
    connect_timeout_s: float = 20.0  # a peer that has not connected by then is dropped
    sqlite_synchronous: str = "FULL"  # or NORMAL: survives a process crash, not a power loss
    expiry_sweep_interval_s: float = 1.0
    allowed_origins: tuple[str, ...] = ()  # other sites that may open room websockets
    staff_session_s: int = 12 * 3600  # a signed-in operator's, host's or franchisee's session
    shopper_session_s: int = 30 * 86400  # a shopper's guest session

    @property
    def loopback_only(self) -> bool:
        return bool(self.ice_hosts) and all(
            ipaddress.ip_address(a).is_loopback for a in self.ice_hosts
        )

    def rtc_ice_servers(self) -> tuple[RTCIceServer, ...]:
        return tuple(parse_ice_server(url) for url in self.ice_servers)


def parse_ice_server(url: str) -> RTCIceServer:
    """`turn:user:pass@host:3478` → RTCIceServer with credentials; `stun:host` as is."""
    scheme, sep, rest = url.partition(":")
    if not sep or scheme not in ("stun", "stuns", "turn", "turns") or not rest:
        raise ValueError(f"not a STUN/TURN URL: {url!r}")
    if "@" not in rest:
        return RTCIceServer(urls=url)
    userinfo, _, hostpart = rest.rpartition("@")
    username, _, credential = userinfo.partition(":")
    return RTCIceServer(
        urls=f"{scheme}:{hostpart}", username=unquote(username), credential=unquote(credential)
    )
