"""SSRF-safe outbound HTTP for user-supplied URLs (voice_url downloads, webhooks).

Rules, applied to the first URL and to every redirect hop:

- http and https only, no credentials in the URL;
- the host is resolved once and every address it resolves to must be public: loopback,
  private, link-local, multicast, reserved, unspecified, shared (CGNAT) and cloud
  metadata addresses are refused, unless the host, exactly as written in the URL, is
  listed in `settings.fetch_allow_hosts`;
- the connection goes to the address that was checked (the URL's host is replaced by
  that address; the Host header and TLS SNI/certificate name keep the original host),
  so a second DNS answer cannot swap in another address (no rebinding window);
- redirects are followed by hand, at most MAX_REDIRECTS, each hop checked again;
- the body is capped in bytes while it streams in, and the whole exchange in time.

Refusals raise InvalidInput (400) with a message naming the parameter; an oversized
body raises PayloadTooLarge (413).
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass

import httpx

from app.core.config import Settings
from app.core.errors import InvalidInput, PayloadTooLarge

MAX_REDIRECTS = 3
MAX_URL_LENGTH = 2048
USER_AGENT = "Chorus/0.1 (+self-hosted voice API)"
_REDIRECTS = (301, 302, 303, 307, 308)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Cloud metadata services (AWS, ECS, GCP, Azure, Alibaba, Oracle, AWS IPv6). Most are also
# link-local; they are listed so the check does not depend on that.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.169.253",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd00:ec2::23",
    )
)
METADATA_HOSTS = frozenset({"metadata.google.internal", "metadata.goog", "metadata", "instance-data"})


def is_forbidden_address(ip: IPAddress) -> bool:
    """True for every address a user-supplied URL must not reach."""
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is not None and is_forbidden_address(embedded):
            return True
    return (
        ip in METADATA_ADDRESSES
        or ip.is_loopback
        or ip.is_private
        or ip.is_link_local
        or ip.is_multicast
        or ip.is_reserved
        or ip.is_unspecified
        or not ip.is_global
    )


@dataclass(frozen=True)
class Target:
    """A checked URL: where to connect (`address`) and what to call the host on the wire."""

    url: httpx.URL
    host: str
    port: int
    address: IPAddress

    @property
    def connect_url(self) -> httpx.URL:
        return self.url.copy_with(host=str(self.address))

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.url.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


@dataclass(frozen=True)
class FetchResponse:
    status_code: int
    headers: httpx.Headers
    content: bytes
    url: str  # the final URL, after redirects

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


def resolve(host: str, port: int) -> list[IPAddress]:
    """Every address `host` resolves to (an IP literal resolves to itself)."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[IPAddress] = []
    for info in infos:
        ip = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if ip not in addresses:
            addresses.append(ip)
    return addresses


def _allowed(name: str, settings: Settings) -> bool:
    return name.lower() in settings.fetch_allow_hosts


def check_url(url: str, settings: Settings, *, what: str = "url") -> Target:
    """Parse, resolve and check `url`; raise InvalidInput naming `what` when it is refused."""
    if not isinstance(url, str) or not url.strip():
        raise InvalidInput(f"{what} must be an http or https URL", param=what)
    if len(url) > MAX_URL_LENGTH:
        raise InvalidInput(f"{what} is longer than {MAX_URL_LENGTH} characters", param=what)
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, ValueError) as exc:
        raise InvalidInput(f"{what} is not a valid URL", param=what) from exc
    if parsed.scheme not in ("http", "https"):
        raise InvalidInput(f"{what} must be an http or https URL", param=what)
    host = parsed.host.lower().rstrip(".")
    if not host:
        raise InvalidInput(f"{what} must name a host", param=what)
    if parsed.userinfo:
        raise InvalidInput(f"{what} must not contain credentials", param=what)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    host_allowed = _allowed(host, settings)
    if host in METADATA_HOSTS and not host_allowed:
        raise InvalidInput(f"{what} must not point at a cloud metadata address", param=what)
    try:
        addresses = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        raise InvalidInput(f"{what} host {host} could not be resolved", param=what) from exc
    if not addresses:
        raise InvalidInput(f"{what} host {host} could not be resolved", param=what)
    if not host_allowed:
        for ip in addresses:
            if is_forbidden_address(ip):
                if ip in METADATA_ADDRESSES:
                    raise InvalidInput(f"{what} must not point at a cloud metadata address", param=what)
                raise InvalidInput(f"{what} must not point at a private or loopback address", param=what)
    return Target(url=parsed, host=host, port=port, address=addresses[0])


def request(
    method: str,
    url: str,
    settings: Settings,
    *,
    what: str = "url",
    content: bytes | None = None,
    headers: dict[str, str] | None = None,
    max_bytes: int | None = None,
    timeout: float | None = None,
    follow_redirects: bool = True,
    read_body: bool = True,
) -> FetchResponse:
    """One SSRF-checked exchange. Any status is returned; refusals and transport errors raise.

    With `read_body=False` the answer's body is not read (webhooks only need the status)."""
    cap = settings.resolved_fetch_max_bytes if max_bytes is None else max_bytes
    limit = settings.fetch_timeout_seconds if timeout is None else timeout
    deadline = time.monotonic() + limit
    current, verb, body = url, method.upper(), content
    for hop in range(MAX_REDIRECTS + 1):
        target = check_url(current, settings, what=what)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise InvalidInput(f"{what} did not respond within {limit:g} s", param=what)
        try:
            result = _exchange(
                target,
                verb,
                body,
                headers,
                remaining,
                follow_redirects,
                cap if read_body else -1,
                deadline,
                what,
                limit,
            )
        except httpx.TimeoutException as exc:
            raise InvalidInput(f"{what} did not respond within {limit:g} s", param=what) from exc
        except httpx.HTTPError as exc:
            raise InvalidInput(f"{what} could not be fetched: {type(exc).__name__}", param=what) from exc
        if isinstance(result, FetchResponse):
            return result
        status, location = result
        if hop == MAX_REDIRECTS:
            break
        current = str(target.url.join(location))
        if status in (301, 302, 303) and verb != "HEAD":
            verb, body = "GET", None
    raise InvalidInput(f"{what} redirected more than {MAX_REDIRECTS} times", param=what)


def _exchange(
    target: Target,
    verb: str,
    body: bytes | None,
    headers: dict[str, str] | None,
    remaining: float,
    follow_redirects: bool,
    cap: int,
    deadline: float,
    what: str,
    limit: float,
) -> FetchResponse | tuple[int, str]:
    """One hop, connected to the checked address: the response, or (status, Location) to follow.

    A negative `cap` skips reading the body."""
    wire_headers = {
        "User-Agent": USER_AGENT,
        "Accept-Encoding": "identity",
        **(headers or {}),
        "Host": target.host_header,
    }
    extensions = {"sni_hostname": target.host} if target.url.scheme == "https" else {}
    client = httpx.Client(timeout=httpx.Timeout(remaining), follow_redirects=False, trust_env=False)
    with (
        client,
        client.stream(
            verb, target.connect_url, content=body, headers=wire_headers, extensions=extensions
        ) as resp,
    ):
        location = resp.headers.get("location")
        if follow_redirects and resp.status_code in _REDIRECTS and location:
            return resp.status_code, location
        data = _read_capped(resp, cap, deadline, what, limit) if cap >= 0 else b""
        return FetchResponse(resp.status_code, resp.headers, data, str(target.url))


def _read_capped(resp: httpx.Response, cap: int, deadline: float, what: str, limit: float) -> bytes:
    declared = resp.headers.get("content-length", "")
    if declared.isascii() and declared.isdigit() and int(declared) > cap:
        raise PayloadTooLarge(f"{what} file is larger than the limit of {cap} bytes", param=what)
    parts: list[bytes] = []
    total = 0
    for chunk in resp.iter_bytes():
        total += len(chunk)
        if total > cap:
            raise PayloadTooLarge(f"{what} file is larger than the limit of {cap} bytes", param=what)
        if time.monotonic() > deadline:
            raise InvalidInput(f"{what} did not respond within {limit:g} s", param=what)
        parts.append(chunk)
    return b"".join(parts)


def fetch(url: str, settings: Settings, *, what: str = "url", max_bytes: int | None = None) -> FetchResponse:
    """GET `url` under the SSRF rules; a non-2xx or empty answer is InvalidInput."""
    resp = request("GET", url, settings, what=what, max_bytes=max_bytes)
    if not resp.ok:
        raise InvalidInput(f"{what} answered HTTP {resp.status_code}", param=what)
    if not resp.content:
        raise InvalidInput(f"{what} returned an empty body", param=what)
    return resp


def fetch_bytes(url: str, settings: Settings, *, what: str = "url", max_bytes: int | None = None) -> bytes:
    """The body of `fetch`."""
    return fetch(url, settings, what=what, max_bytes=max_bytes).content
