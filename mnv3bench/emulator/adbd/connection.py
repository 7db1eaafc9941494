"""One ADB client connection: message framing, the CNXN/AUTH handshake, stream multiplexing.

`Connection` reads packets on its own thread, answers the handshake (the token check is
auth.py's), and dispatches OPEN/OKAY/WRTE/CLSE to `Stream`s. Each OPENed stream runs its
service (a `Service`, looked up by the server) on a worker thread, so the reader never
blocks on a service and OKAYs for our writes always get through. What a service does is
services.py's business; this module only moves bytes and keeps the protocol honest.
"""

from __future__ import annotations

import logging
import queue
import secrets
import socket
import struct
import threading
import time
from collections.abc import Callable

from adb_shell import constants
from adb_shell.adb_message import AdbMessage, checksum, unpack

from mnv3bench.emulator.adbd.auth import TOKEN_SIZE, TrustedKeys
from mnv3bench.emulator.adbd.ratelimit import RateLimitedLog

log = logging.getLogger(__name__)

# What we tell the host in CNXN. 0x01000001 is the version of adbd that stopped needing
# checksums (the official client then sends 0); we still verify nonzero ones and always
# send correct ones, which adb-shell requires.
DEVICE_VERSION = 0x01000001
MAX_PAYLOAD = 1024 * 1024
# A client that has not authenticated this long after it connected is dropped. The deadline
# is fixed when the connection is accepted: neither a CNXN nor a trickle of bytes moves it.
HANDSHAKE_TIMEOUT_S = 30.0
# Signatures and public keys a client may offer on one connection. The adb client tries
# each of its keys once (~/.android/adbkey plus $ADB_VENDOR_KEYS: a handful), then offers
# its public key; more than this is a flood, not a client looking for the right key.
MAX_AUTH_ATTEMPTS = 32
# Streams open at once on one connection. The runner uses one or two (a shell and a sync);
# an adb server multiplexing several `adb shell`/`adb push` commands uses a few more. Each
# stream costs a worker thread, so the cap bounds threads as well as memory.
MAX_STREAMS = 64
# Bytes a client may have written to a stream that its service has not taken yet. A
# client that waits for OKAY (as adb and adb-shell do) never has more than one payload
# queued; two leave room for one in flight. More is a client ignoring flow control, and
# its connection is closed. The connection-wide budget bounds a client with many streams.
MAX_QUEUED_BYTES = 2 * MAX_PAYLOAD
MAX_CONNECTION_QUEUED_BYTES = 16 * MAX_PAYLOAD

A_CNXN, A_AUTH, A_OPEN, A_OKAY, A_WRTE, A_CLSE = (
    constants.ID_TO_WIRE[c]
    for c in (constants.CNXN, constants.AUTH, constants.OPEN, constants.OKAY, constants.WRTE, constants.CLSE)
)

# A service runs on its stream's worker thread until it returns (then the stream closes).
Service = Callable[["Stream"], None]


class ProtocolError(Exception):
    """The client broke the ADB protocol; its connection is closed."""


class AbortConnection(Exception):
    """Raised by a service to drop the TCP connection now, without a goodbye (a fault)."""


class StreamClosed(Exception):
    """The stream (or its connection) closed while a service was using it."""


class Connection:
    """One TCP client: handshake, then packets dispatched to streams."""

    def __init__(
        self,
        sock: socket.socket,
        name: str,
        *,
        keys: TrustedKeys,
        banner: Callable[[], bytes],
        open_service: Callable[[str], Service | None],
        on_close: Callable[[Connection], None],
        limited_log: RateLimitedLog | None = None,
        require_tls: bool = False,
    ):
        self.sock = sock
        self.name = name
        self.max_write = MAX_PAYLOAD  # lowered to the host's maxdata after CNXN
        self._keys = keys
        self._banner = banner
        self._open_service = open_service
        self._on_close = on_close
        self.limited_log = limited_log or RateLimitedLog(log)
        self._send_lock = threading.Lock()
        self._streams: dict[int, Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_stream_id = 0
        self._closed = threading.Event()
        self._authenticated = False
        self._handshake_deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        self._auth_attempts = 0
        self._token = b""
        self._queued_bytes = 0  # WRTE payloads held for services, over all streams
        self._queued_lock = threading.Lock()
        self._require_tls = require_tls  # the "stls" fault: answer CNXN as Wireless debugging does
        self._thread = threading.Thread(target=self._run, name=f"adbd-conn-{name}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    # -- sending ------------------------------------------------------------------------

    def send(self, command: bytes, arg0: int, arg1: int, data: bytes = b"") -> None:
        message = AdbMessage(command, arg0, arg1, data)
        packet = message.pack() + bytes(data)
        with self._send_lock:
            if self.closed:
                raise StreamClosed("connection closed")
            try:
                self.sock.sendall(packet)
            except OSError as exc:
                self.close()
                raise StreamClosed(f"connection lost: {exc}") from exc

    # -- closing ------------------------------------------------------------------------

    def close(self) -> None:
        """Orderly close: shut the socket so the reader wakes up; streams see closure."""
        if self._closed.is_set():
            return
        self._closed.set()
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._close_all_streams()

    def abort(self) -> None:
        """Abrupt close (RST), as when a phone's link dies: the client gets no CLSE."""
        if self._closed.is_set():
            return
        try:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        self._closed.set()
        # shutdown(SHUT_RD) wakes the reader thread blocked in recv() without sending a FIN
        # (a bare close() would not wake it, and the kernel would keep the link up until that
        # recv() returned); the close with zero linger then sends the RST. Clients see a
        # reset at once, where an orderly EOF leaves adb-shell waiting for its read timeout.
        try:
            self.sock.shutdown(socket.SHUT_RD)
        except OSError:
            pass
        self.sock.close()
        self._close_all_streams()

    def _close_all_streams(self) -> None:
        with self._streams_lock:
            streams = list(self._streams.values())
            self._streams.clear()
        for stream in streams:
            stream.mark_closed()

    # -- reading ------------------------------------------------------------------------

    def _recv_exact(self, size: int) -> bytes:
        buf = bytearray()
        while len(buf) < size:
            if not self._authenticated:
                # A deadline, not a per-recv timeout: a client trickling a byte now and
                # then must not hold an unauthenticated connection open for ever.
                left = self._handshake_deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("handshake deadline passed")
                self.sock.settimeout(left)
            chunk = self.sock.recv(min(size - len(buf), 1 << 20))
            if not chunk:
                raise EOFError("client closed the connection")
            buf += chunk
        return bytes(buf)

    def _read_packet(self) -> tuple[int, int, int, bytes]:
        header = self._recv_exact(constants.MESSAGE_SIZE)
        command, arg0, arg1, length, data_checksum = unpack(header)
        magic = struct.unpack_from("<I", header, 20)[0]
        if magic != command ^ 0xFFFFFFFF:
            raise ProtocolError(f"bad magic in packet header {header.hex()}")
        if length > MAX_PAYLOAD:
            raise ProtocolError(f"payload of {length} bytes exceeds maxdata {MAX_PAYLOAD}")
        data = self._recv_exact(length) if length else b""
        if data_checksum and checksum(data) != data_checksum:
            raise ProtocolError("payload checksum mismatch")
        return command, arg0, arg1, data

    def _run(self) -> None:
        try:
            while not self.closed:
                self._dispatch(*self._read_packet())
        except (EOFError, StreamClosed):
            log.debug("%s: client went away", self.name)
        except (ProtocolError, ValueError) as exc:
            self.limited_log.log("protocol error", logging.WARNING, "%s: protocol error, closing: %s",
                                 self.name, exc)
        except TimeoutError:
            self.limited_log.log("handshake deadline", logging.WARNING,
                                 "%s: not authenticated within %.0f s, closing", self.name, HANDSHAKE_TIMEOUT_S)
        except OSError as exc:
            if not self.closed:
                self.limited_log.log("connection error", logging.INFO, "%s: connection error: %s",
                                     self.name, exc)
        except Exception:  # one client must never take the server down
            self.limited_log.log("unexpected error", logging.ERROR,
                                 "%s: unexpected error, closing the connection", self.name, exc_info=True)
        finally:
            self.close()
            self._on_close(self)

    def _dispatch(self, command: int, arg0: int, arg1: int, data: bytes) -> None:
        if command == A_CNXN:
            self._on_connect(arg1, data)
        elif command == A_AUTH:
            self._on_auth(arg0, data)
        elif not self._authenticated:
            raise ProtocolError(f"packet {command:#x} before authentication")
        elif command == A_OPEN:
            self._on_open(arg0, data)
        elif command in (A_OKAY, A_WRTE, A_CLSE):
            self._on_stream_packet(command, arg0, arg1, data)
        else:
            log.debug("%s: ignoring unknown command %#x", self.name, command)

    # -- handshake ----------------------------------------------------------------------

    def _on_connect(self, host_maxdata: int, banner: bytes) -> None:
        # A CNXN after the handshake restarts the session, as on adbd, with a new deadline
        # (the client proved its key once). Before it, a CNXN never extends the deadline:
        # otherwise a client that never authenticates could stay connected for ever.
        self._close_all_streams()
        if self._authenticated:
            self._authenticated = False
            self._auth_attempts = 0
            self._handshake_deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        self._count_auth_attempt()
        self.max_write = max(256, min(host_maxdata, MAX_PAYLOAD))
        log.debug("%s: CNXN %r", self.name, banner[:80])
        if self._require_tls:
            # Android 11+ Wireless debugging: STLS (version 0x01000000), then TLS, which we do not speak.
            stls = int.from_bytes(b"STLS", "little")
            with self._send_lock:
                self.sock.sendall(struct.pack("<6I", stls, 0x01000000, 0, 0, 0, stls ^ 0xFFFFFFFF))
            return
        self._send_token()

    def _count_auth_attempt(self) -> None:
        """Each CNXN and AUTH before authentication costs a token (and a signature check)."""
        self._auth_attempts += 1
        if self._auth_attempts > MAX_AUTH_ATTEMPTS:
            raise ProtocolError(f"more than {MAX_AUTH_ATTEMPTS} CNXN/AUTH packets without a trusted key")

    def _send_token(self) -> None:
        self._token = secrets.token_bytes(TOKEN_SIZE)
        self.send(constants.AUTH, constants.AUTH_TOKEN, 0, self._token)

    def _on_auth(self, kind: int, data: bytes) -> None:
        if not self._token:
            raise ProtocolError("AUTH before CNXN")
        self._count_auth_attempt()
        if kind == constants.AUTH_SIGNATURE:
            if self._keys.trust(self._token, data):
                self._authenticated = True
                self.sock.settimeout(None)  # benchmarks may be silent for minutes
                log.info("%s: authenticated", self.name)
                self.send(constants.CNXN, DEVICE_VERSION, MAX_PAYLOAD, self._banner())
            else:
                self._send_token()  # adbd offers a fresh token for the next key
        elif kind == constants.AUTH_RSAPUBLICKEY:
            # A phone would show "Allow USB debugging?"; nobody is there to tap it, so the
            # key stays unknown and the client waits until it gives up.
            self.limited_log.log(
                "unknown key", logging.WARNING,
                "%s: refused an unknown adb key (trust it by adding it to the emulator's trusted keys): %s",
                self.name,
                data.rstrip(b"\0").decode(errors="replace")[-40:],
            )
        else:
            raise ProtocolError(f"unknown AUTH type {kind}")

    # -- streams ------------------------------------------------------------------------

    def _on_open(self, remote_id: int, data: bytes) -> None:
        service = data.rstrip(b"\0").decode("utf-8", errors="replace")
        if remote_id == 0:
            raise ProtocolError("OPEN with local id 0")
        handler = self._open_service(service)
        if handler is None:
            self.limited_log.log("unknown service", logging.INFO, "%s: refusing service %r",
                                 self.name, service[:80])
            self.send(constants.CLSE, 0, remote_id)
            return
        with self._streams_lock:
            full = len(self._streams) >= MAX_STREAMS
            if not full:
                self._next_stream_id += 1
                stream = Stream(self, self._next_stream_id, remote_id, service)
                self._streams[stream.local_id] = stream
        if full:  # refused like an unknown service: the client sees its OPEN closed
            self.limited_log.log("stream cap", logging.WARNING,
                                 "%s: %d streams already open, refusing another", self.name, MAX_STREAMS)
            self.send(constants.CLSE, 0, remote_id)
            return
        self.send(constants.OKAY, stream.local_id, remote_id)
        stream.start(handler)

    def _on_stream_packet(self, command: int, remote_id: int, local_id: int, data: bytes) -> None:
        with self._streams_lock:
            stream = self._streams.get(local_id)
        if stream is None or stream.remote_id != remote_id:
            # Late packets for a stream that is gone (e.g. the CLSE answering ours).
            return
        if command == A_OKAY:
            stream.on_okay()
        elif command == A_WRTE:
            stream.on_write(data)
        else:  # CLSE
            self.forget_stream(stream)
            stream.on_close()

    def charge_queued(self, size: int) -> None:
        """Count `size` bytes held for a service; ProtocolError past the connection's budget."""
        with self._queued_lock:
            if self._queued_bytes + size > MAX_CONNECTION_QUEUED_BYTES:
                raise ProtocolError(f"more than {MAX_CONNECTION_QUEUED_BYTES} bytes written to streams "
                                    "without waiting for OKAY")
            self._queued_bytes += size

    def release_queued(self, size: int) -> None:
        with self._queued_lock:
            self._queued_bytes -= size

    def forget_stream(self, stream: Stream) -> None:
        with self._streams_lock:
            if self._streams.get(stream.local_id) is stream:
                del self._streams[stream.local_id]


class Stream:
    """One OPENed service: flow-controlled writes to the host, queued writes from it."""

    def __init__(self, conn: Connection, local_id: int, remote_id: int, service: str):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self._sent_close = False
        self._close_lock = threading.Lock()
        self.cancelled = threading.Event()  # the host closed the stream, or the link died
        self._can_send = threading.Event()
        self._can_send.set()  # after our OKAY to OPEN, we may send one WRTE
        self._inbox: queue.Queue[bytes | None] = queue.Queue()
        self._queued = 0  # bytes in _inbox, charged to the connection's budget too
        self._queued_lock = threading.Lock()
        self._inbuf = bytearray()
        self._thread: threading.Thread | None = None

    @property
    def max_write(self) -> int:
        """The largest WRTE payload the host accepts (its maxdata)."""
        return self.conn.max_write

    def start(self, handler: Service) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(handler,), name=f"adbd-{self.conn.name}-{self.local_id}", daemon=True
        )
        self._thread.start()

    def _run(self, handler: Service) -> None:
        try:
            handler(self)
            self.close()
        except StreamClosed:
            pass
        except AbortConnection as exc:
            log.info("%s: dropping the connection (%s)", self.conn.name, exc)
            self.conn.abort()
        except Exception:
            self.conn.limited_log.log("service failed", logging.ERROR, "%s: service %r failed",
                                      self.conn.name, self.service[:80], exc_info=True)
            self.close()

    # -- events from the reader thread --------------------------------------------------

    def on_okay(self) -> None:
        self._can_send.set()

    def on_write(self, data: bytes) -> None:
        # The OKAY is sent when the service takes the data (read()), so a fast host is
        # held back by a slow service instead of filling memory.
        with self._queued_lock:
            if self.cancelled.is_set():
                return  # a late write to a closed stream: nothing will read it
            if self._queued + len(data) > MAX_QUEUED_BYTES:
                raise ProtocolError("host keeps writing without waiting for OKAY")
            self.conn.charge_queued(len(data))
            self._queued += len(data)
            self._inbox.put(data)

    def on_close(self) -> None:
        """The host sent CLSE: answer it unless we already sent ours, then stop the service."""
        with self._close_lock:
            answer = not self._sent_close
            self._sent_close = True
        if answer:
            try:
                self.conn.send(constants.CLSE, self.local_id, self.remote_id)
            except StreamClosed:
                pass
        self.mark_closed()

    def mark_closed(self) -> None:
        with self._queued_lock:
            self.cancelled.set()
            self.conn.release_queued(self._queued)
            self._queued = 0
            while True:  # what the service will never read is freed now
                try:
                    self._inbox.get_nowait()
                except queue.Empty:
                    break
            self._inbox.put(None)
        self._can_send.set()

    def _take(self) -> bytes | None:
        """The next payload the host wrote (None once closed), no longer counted as queued."""
        payload = self._inbox.get()
        if payload is not None:
            with self._queued_lock:
                if not self.cancelled.is_set():
                    self.conn.release_queued(len(payload))
                    self._queued -= len(payload)
        return payload

    # -- used by services ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send `data` to the host as WRTEs of at most maxdata, each after the previous OKAY."""
        view = memoryview(data)
        for start in range(0, len(view), self.conn.max_write):
            while not self._can_send.wait(0.5):
                if self.conn.closed:
                    break
            if self.cancelled.is_set() or self.conn.closed:
                raise StreamClosed(self.service)
            self._can_send.clear()
            self.conn.send(constants.WRTE, self.local_id, self.remote_id, bytes(view[start : start + self.conn.max_write]))

    def read(self, size: int) -> bytes:
        """Exactly `size` bytes of what the host wrote, across WRTE boundaries."""
        while len(self._inbuf) < size:
            payload = self._take()
            if payload is None:
                self._inbox.put(None)  # stay closed for later readers
                raise StreamClosed(self.service)
            self._inbuf += payload
            self.conn.send(constants.OKAY, self.local_id, self.remote_id)
        out = bytes(self._inbuf[:size])
        del self._inbuf[:size]
        return out

    def discard_input(self) -> None:
        """Acknowledge and drop host writes (shell v1 has no stdin worth reading)."""
        while True:
            payload = self._take()
            if payload is None:
                return
            try:
                self.conn.send(constants.OKAY, self.local_id, self.remote_id)
            except StreamClosed:
                return

    def close(self) -> None:
        """Our side is done: send CLSE once; the host's answering CLSE is ignored."""
        with self._close_lock:
            if self._sent_close or self.cancelled.is_set():
                return
            self._sent_close = True
        try:
            self.conn.send(constants.CLSE, self.local_id, self.remote_id)
        except StreamClosed:
            pass
