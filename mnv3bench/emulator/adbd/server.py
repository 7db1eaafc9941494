"""The emulated adbd's server: a loopback TCP listener that hands each client a Connection.

It owns the accept loop, the set of live connections and start/stop; it gives each
connection the keys it trusts (auth.py), the CNXN banner made from the phone's properties
and the service lookup bound to the phone (services.py).
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Protocol

from mnv3bench.emulator.adbd.auth import TrustedKeys, default_trusted_keys
from mnv3bench.emulator.adbd.connection import Connection
from mnv3bench.emulator.adbd.ratelimit import RateLimitedLog
from mnv3bench.emulator.adbd.services import FEATURES, ServicePhone, services_for
from mnv3bench.errors import MnvError, UsageError

log = logging.getLogger(__name__)

# Client connections at once, authenticated or not. The runner holds one; `adb` through
# its server holds one more; a few tools side by side stay far below. Each connection is a
# thread and up to MAX_STREAMS streams, so this bounds what local clients can take. A
# connection past the cap is closed at once; one that never authenticates frees its slot
# at the handshake deadline.
MAX_CONNECTIONS = 32
# An accept that fails (EMFILE: out of file descriptors, ENOBUFS, ...) fails again at once
# until something is freed: wait before the next try, doubling up to a second, instead of
# spinning a core and flooding the log while the clients that would free descriptors wait.
ACCEPT_BACKOFF_MIN_S = 0.01
ACCEPT_BACKOFF_MAX_S = 1.0


class Phone(ServicePhone, Protocol):
    """What the server needs from the emulated phone (EmulatedPhone in phone.py)."""

    props: dict[str, str]   # the CNXN banner's product name, model and device

    def shutdown(self) -> None:
        """Stop every benchmark process the phone started."""


class EmulatorServer:
    """An adbd for `phone` on 127.0.0.1:port (0 = any free port). Loopback only."""

    def __init__(
        self,
        phone: Phone,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        trusted_keys: list[Path] | None = None,
    ):
        if host not in ("127.0.0.1", "localhost"):
            raise UsageError(
                f"the emulator only listens on loopback, not on {host!r}",
                hint="Use host 127.0.0.1; reach it from this machine with --adb 127.0.0.1:PORT.",
            )
        if not 0 <= port <= 65535:
            raise UsageError(f"port {port} is not a TCP port", hint="Use a port between 1024 and 65535, or 0 for any free one.")
        self.phone = phone
        self.host = "127.0.0.1"
        self.port = port
        self.trusted_keys = TrustedKeys(trusted_keys if trusted_keys is not None else default_trusted_keys())
        self._services = services_for(phone)
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[Connection] = set()
        self._lock = threading.Lock()
        self._next_conn_id = 0
        self.limited_log = RateLimitedLog(log)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> tuple[str, int]:
        """Bind, listen and accept in a background thread; returns (host, port)."""
        if self._listener is not None:
            return self.host, self.port
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            listener.bind((self.host, self.port))
        except OSError as exc:
            listener.close()
            raise MnvError(
                f"cannot listen on {self.host}:{self.port}: {exc.strerror or exc}",
                hint="Pick another --port, or omit it to use any free port.",
            ) from exc
        listener.listen(16)
        listener.settimeout(0.25)  # so stop() is noticed without closing under accept()
        self._listener = listener
        self.port = listener.getsockname()[1]
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept_loop, name=f"adbd-accept-{self.port}", daemon=True)
        self._acceptor.start()
        log.info("emulated adbd listening on %s", self.address)
        return self.host, self.port

    def serve_forever(self) -> None:
        """Start (if needed) and block until stop() is called from another thread."""
        self.start()
        while not self._stopping.wait(0.5):
            pass

    def stop(self) -> None:
        """Stop accepting, close every client connection and wait for their threads."""
        self._stopping.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
            self._acceptor = None
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            conn.close()
        for conn in connections:
            conn.join(timeout=5)
        # Benchmarks run in their own sessions: without this they outlive the emulator.
        self.phone.shutdown()
        self.limited_log.flush()

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def banner(self) -> bytes:
        """The CNXN payload after a successful AUTH: who this device is, what it supports."""
        props = self.phone.props
        fields = [
            f"ro.product.name={props.get('ro.product.name', '')}",
            f"ro.product.model={props.get('ro.product.model', '')}",
            f"ro.product.device={props.get('ro.product.device', '')}",
            "features=" + ",".join(FEATURES),
        ]
        return ("device::" + ";".join(fields)).encode()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        backoff = 0.0
        while not self._stopping.is_set():
            self.limited_log.flush()
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError as exc:
                if self._stopping.is_set():
                    return
                backoff = min(ACCEPT_BACKOFF_MAX_S, max(ACCEPT_BACKOFF_MIN_S, 2 * backoff))
                self.limited_log.log("accept failed", logging.WARNING, "accept failed (%s); next try in %.2f s",
                                     exc.strerror or exc, backoff)
                self._stopping.wait(backoff)
                continue
            backoff = 0.0
            with self._lock:
                full = len(self._connections) >= MAX_CONNECTIONS
            if full:
                self.limited_log.log("connection cap", logging.WARNING,
                                     "%d clients connected already; closing the connection from %s:%s",
                                     MAX_CONNECTIONS, peer[0], peer[1])
                sock.close()
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._next_conn_id += 1
                conn = Connection(
                    sock,
                    f"{peer[0]}:{peer[1]}#{self._next_conn_id}",
                    keys=self.trusted_keys,
                    banner=self.banner,
                    open_service=self._services,
                    on_close=self._forget,
                    limited_log=self.limited_log,
                    require_tls="stls" in getattr(self.phone, "faults", ()),
                )
                self._connections.add(conn)
            conn.start()

    def _forget(self, conn: Connection) -> None:
        with self._lock:
            self._connections.discard(conn)
