"""SSRF-safe fetching against real HTTP servers on loopback (allow-listed where a test needs it).

Also home of `LocalServer`, the recording HTTP server the family and webhook tests use.
"""

from __future__ import annotations

import http.server
import ipaddress
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pytest

from app.core import fetch
from app.core.config import Settings
from app.core.errors import InvalidInput, PayloadTooLarge
from tests.plugins.services import make_settings


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Reply = tuple[int, dict[str, str], bytes | Callable[[Any], None]]


@dataclass
class LocalServer:
    """Answers from `routes` (path -> reply, or a callable of the Seen request) and records requests."""

    routes: dict[str, Reply | Callable[[Seen], Reply]] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    port: int = 0

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[Seen]:
        return [s for s in self.seen if s.path == path]


@contextmanager
def running_server() -> Iterator[LocalServer]:
    """A LocalServer on 127.0.0.1 for the duration of the block."""
    state = LocalServer()

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            seen = Seen(
                self.command,
                self.path,
                {k.lower(): v for k, v in self.headers.items()},
                self.rfile.read(length) if length else b"",
            )
            state.seen.append(seen)
            route = state.routes.get(self.path.split("?")[0], (404, {}, b"no such path"))
            status, headers, body = route(seen) if callable(route) else route
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            if callable(body):  # streams by itself (chunked, slow, ...)
                self.send_header("Connection", "close")
                self.end_headers()
                body(self.wfile)
                return
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_POST = _handle  # noqa: N815

        def log_message(self, *args: Any) -> None:
            return None

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def local_server() -> Iterator[LocalServer]:
    with running_server() as server:
        yield server


@pytest.fixture
def settings(tmp_path: Any) -> Settings:
    return make_settings(
        tmp_path, fetch_allow_hosts=["127.0.0.1"], fetch_timeout_seconds=2, fetch_max_bytes=1000
    )


# -- address rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "127.0.0.1",
        "127.8.9.10",
        "10.0.0.1",
        "172.16.5.4",
        "192.168.1.1",
        "169.254.169.254",
        "169.254.1.1",
        "100.64.0.1",
        "0.0.0.0",
        "224.0.0.1",
        "255.255.255.255",
        "240.0.0.1",
        "192.0.2.10",
        "::1",
        "::",
        "fe80::1",
        "fc00::1",
        "fd00:ec2::254",
        "ff02::1",
        "::ffff:127.0.0.1",
        "::ffff:10.0.0.1",
        "2002:7f00:1::",  # 6to4 wrapping 127.0.0.1
    ],
)
def test_forbidden_addresses(address: str) -> None:
    assert fetch.is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111"])
def test_public_addresses_pass(address: str) -> None:
    assert not fetch.is_forbidden_address(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1:9/x", "private or loopback"),  # not allow-listed in this test
        ("http://localhost/x", "private or loopback"),
        ("http://2130706433/", "private or loopback"),  # 127.0.0.1 as one number
        ("http://0x7f.1/", "private or loopback"),
        ("http://[::1]/", "private or loopback"),
        ("http://[::ffff:127.0.0.1]/", "private or loopback"),
        ("http://10.20.30.40/", "private or loopback"),
        ("http://169.254.169.254/latest/meta-data/", "metadata"),
        ("http://[fd00:ec2::254]/", "metadata"),
        ("http://metadata.google.internal/computeMetadata/v1/", "metadata"),
        ("ftp://example.com/a.wav", "http or https"),
        ("file:///etc/passwd", "http or https"),
        ("gopher://127.0.0.1:6379/_INFO", "http or https"),
        ("javascript:alert(1)", "http or https"),
        ("http://user:secret@example.com/", "credentials"),
        ("not a url", "http or https"),
        ("", "http or https"),
    ],
)
def test_check_url_refusals(url: str, message: str, tmp_path: Any) -> None:
    with pytest.raises(InvalidInput) as caught:
        fetch.check_url(url, make_settings(tmp_path), what="voice_url")
    assert message in caught.value.message and caught.value.message.startswith("voice_url")


def test_a_name_resolving_to_any_private_address_is_refused(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = {"mixed.example": ["93.184.216.34", "10.0.0.7"], "inner.example": ["192.168.0.2"]}
    monkeypatch.setattr(fetch, "resolve", lambda host, port: [ipaddress.ip_address(a) for a in answers[host]])
    for host in answers:
        with pytest.raises(InvalidInput, match="private or loopback"):
            fetch.check_url(f"http://{host}/a.wav", make_settings(tmp_path), what="voice_url")


def test_allow_list_is_by_host_as_written(settings: Settings) -> None:
    assert str(fetch.check_url("http://127.0.0.1:1/x", settings).address) == "127.0.0.1"
    with pytest.raises(InvalidInput):  # resolves to 127.0.0.1, but "localhost" is not listed
        fetch.check_url("http://localhost:1/x", settings)


def test_allow_hosts_from_the_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    monkeypatch.setenv("CHORUS_FETCH_ALLOW_HOSTS", "127.0.0.1, Media.Internal")
    assert make_settings(tmp_path).fetch_allow_hosts == ["127.0.0.1", "media.internal"]
    monkeypatch.setenv("CHORUS_FETCH_ALLOW_HOSTS", '["10.0.0.5"]')
    assert make_settings(tmp_path).fetch_allow_hosts == ["10.0.0.5"]
    monkeypatch.delenv("CHORUS_FETCH_ALLOW_HOSTS")
    defaults = make_settings(tmp_path)
    assert defaults.fetch_allow_hosts == [] and defaults.fetch_timeout_seconds == 10
    assert defaults.resolved_fetch_max_bytes == defaults.max_upload_bytes


# -- fetching ------------------------------------------------------------------------------


def test_fetch_bytes_from_an_allowed_host(local_server: LocalServer, settings: Settings) -> None:
    local_server.routes["/a.wav"] = (200, {"Content-Type": "audio/wav"}, b"RIFF-ish")
    assert fetch.fetch_bytes(local_server.url("/a.wav"), settings, what="voice_url") == b"RIFF-ish"
    (hit,) = local_server.seen
    assert hit.headers["host"] == f"127.0.0.1:{local_server.port}"
    local_server.routes["/gone"] = (404, {}, b"")
    with pytest.raises(InvalidInput, match="answered HTTP 404"):
        fetch.fetch_bytes(local_server.url("/gone"), settings, what="voice_url")


def test_connects_to_the_checked_address_keeping_the_host_name(
    local_server: LocalServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The name is resolved once per hop and the socket goes to that address (no rebinding)."""
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
        calls.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    monkeypatch.setattr(fetch, "resolve", resolver)
    local_server.routes["/v.wav"] = (200, {}, b"voice")
    settings = make_settings(tmp_path, fetch_allow_hosts=["media.example"])
    url = f"http://media.example:{local_server.port}/v.wav"
    assert fetch.fetch_bytes(url, settings, what="voice_url") == b"voice"
    assert calls == ["media.example"]
    assert local_server.seen[0].headers["host"] == f"media.example:{local_server.port}"


def test_redirects_are_checked_at_every_hop(local_server: LocalServer, settings: Settings) -> None:
    local_server.routes["/ok"] = (200, {}, b"fine")
    local_server.routes["/to-ok"] = (302, {"Location": "/ok"}, b"")
    local_server.routes["/to-metadata"] = (302, {"Location": "http://169.254.169.254/latest/meta-data/"}, b"")
    to_localhost = f"http://localhost:{local_server.port}/ok"
    local_server.routes["/to-localhost"] = (307, {"Location": to_localhost}, b"")
    local_server.routes["/to-private"] = (301, {"Location": "http://10.1.1.1/"}, b"")
    local_server.routes["/to-file"] = (302, {"Location": "file:///etc/passwd"}, b"")
    for n in range(5):
        local_server.routes[f"/loop{n}"] = (302, {"Location": f"/loop{n + 1}"}, b"")

    assert fetch.fetch_bytes(local_server.url("/to-ok"), settings, what="voice_url") == b"fine"
    for path, message in [
        ("/to-metadata", "metadata"),
        ("/to-localhost", "private or loopback"),
        ("/to-private", "private or loopback"),
        ("/to-file", "http or https"),
        ("/loop0", "more than 3"),
    ]:
        with pytest.raises(InvalidInput) as caught:
            fetch.fetch_bytes(local_server.url(path), settings, what="voice_url")
        assert message in caught.value.message, path
    assert not local_server.hits("/ok")[1:]  # only the first, allowed redirect reached /ok
    assert len([s for s in local_server.seen if s.path.startswith("/loop")]) == 4  # 1 + 3 redirects


def test_size_cap_declared_and_while_streaming(local_server: LocalServer, settings: Settings) -> None:
    local_server.routes["/big"] = (200, {}, b"x" * 1001)

    def chunked(out: Any) -> None:
        for _ in range(50):
            out.write(b"64\r\n" + b"y" * 100 + b"\r\n")
        out.write(b"0\r\n\r\n")

    local_server.routes["/chunked"] = (200, {"Transfer-Encoding": "chunked"}, chunked)
    local_server.routes["/exact"] = (200, {}, b"z" * 1000)
    for path in ("/big", "/chunked"):
        with pytest.raises(PayloadTooLarge, match="larger than the limit of 1000 bytes"):
            fetch.fetch_bytes(local_server.url(path), settings, what="voice_url")
    assert len(fetch.fetch_bytes(local_server.url("/exact"), settings, what="voice_url")) == 1000


def test_time_cap(local_server: LocalServer, settings: Settings) -> None:
    def slow(out: Any) -> None:
        for _ in range(30):
            out.write(b"1\r\na\r\n")
            out.flush()
            time.sleep(0.2)
        out.write(b"0\r\n\r\n")

    local_server.routes["/slow"] = (200, {"Transfer-Encoding": "chunked"}, slow)
    local_server.routes["/stall"] = lambda seen: (200, {}, lambda out: time.sleep(5))
    started = time.monotonic()
    for path in ("/slow", "/stall"):
        with pytest.raises(InvalidInput, match="did not respond within 2 s"):
            fetch.fetch_bytes(local_server.url(path), settings, what="voice_url")
    assert time.monotonic() - started < 8


def test_post_without_reading_the_answer(local_server: LocalServer, settings: Settings) -> None:
    local_server.routes["/hook"] = (200, {}, b"z" * 5000)  # bigger than the cap, not read
    resp = fetch.request(
        "POST",
        local_server.url("/hook"),
        settings,
        content=b'{"a":1}',
        headers={"Content-Type": "application/json"},
        follow_redirects=False,
        read_body=False,
    )
    assert resp.status_code == 200 and resp.content == b""
    assert local_server.seen[0].body == b'{"a":1}' and local_server.seen[0].method == "POST"
    local_server.routes["/moved"] = (302, {"Location": "/hook"}, b"")
    moved = fetch.request(
        "POST", local_server.url("/moved"), settings, content=b"{}", follow_redirects=False, read_body=False
    )
    assert moved.status_code == 302 and len(local_server.hits("/hook")) == 1
