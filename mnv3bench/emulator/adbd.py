"""The emulated adbd: a loopback TCP server that speaks the real ADB protocol.

Clients no one here wrote (adb-shell, Debian's `adb`) connect to it as to a phone reached
with `adb tcpip`: CNXN handshake, RSA AUTH against the keys it trusts, OPEN/OKAY/WRTE/CLSE
streams, and two services, `shell:` (v1, output only) and `sync:` (v1 file transfer). What
a command does is the phone's business (`EmulatedPhone.run_shell`, `phone.fs`); this module
only moves bytes and keeps the protocol honest.

Threads: one acceptor, one reader per client connection, one worker per open stream. The
reader never blocks on a service, so OKAYs for our writes always get through.
"""

from __future__ import annotations

import base64
import logging
import os
import queue
import secrets
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

from adb_shell import constants
from adb_shell.adb_message import AdbMessage, checksum, unpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

from mnv3bench.emulator.faults import DropConnection
from mnv3bench.emulator.sandbox import SandboxError
from mnv3bench.errors import MnvError, UsageError

log = logging.getLogger(__name__)

# What we tell the host in CNXN. 0x01000001 is the version of adbd that stopped needing
# checksums (the official client then sends 0); we still verify nonzero ones and always
# send correct ones, which adb-shell requires.
DEVICE_VERSION = 0x01000001
MAX_PAYLOAD = 1024 * 1024
TOKEN_SIZE = 20
# No shell_v2 / stat_v2 / sendrecv_v2: the official client then falls back to `shell:`
# and sync v1, which is what we implement.
FEATURES: tuple[str, ...] = ()
# Sync protocol limits, as in AOSP's file_sync_protocol.h.
SYNC_DATA_MAX = 64 * 1024
SYNC_PATH_MAX = 1024
# A client that does not finish the handshake in this time is dropped.
HANDSHAKE_TIMEOUT_S = 30.0
# Unacknowledged WRTEs a client may queue on one stream before we call it a protocol error
# (a well-behaved client waits for OKAY, so it never has more than one).
MAX_QUEUED_WRITES = 64

A_CNXN, A_AUTH, A_OPEN, A_OKAY, A_WRTE, A_CLSE = (
    constants.ID_TO_WIRE[c]
    for c in (constants.CNXN, constants.AUTH, constants.OPEN, constants.OKAY, constants.WRTE, constants.CLSE)
)
SYNC_WIRE = constants.FILESYNC_ID_TO_WIRE
ANDROID_PUBKEY_STRUCT = struct.Struct("<LL256s256sL")


class Phone(Protocol):
    """What the server needs from the emulated phone (EmulatedPhone in phone.py)."""

    props: dict[str, str]
    faults: frozenset[str]
    fs: Any  # SandboxFS: resolve, stat, listdir, set_mode; raises SandboxError

    def run_shell(self, command: str, write: Callable[[bytes], None], cancelled: threading.Event) -> int: ...


class ProtocolError(Exception):
    """The client broke the ADB protocol; its connection is closed."""


class _AbortConnection(Exception):
    """Drop the TCP connection now, without a goodbye (a fault, or DropConnection)."""


class _StreamClosed(Exception):
    """The stream (or its connection) closed while a service was using it."""


# ---------------------------------------------------------------------------------------
# Keys


def default_trusted_keys() -> list[Path]:
    """The public key the host's client signs with: $MNV3BENCH_ADBKEY.pub or ~/.android/adbkey.pub."""
    from mnv3bench.device.adb import default_key_path  # the one place that names the key file

    return [Path(f"{default_key_path()}.pub")]


def parse_android_pubkey(line: str) -> rsa.RSAPublicKey:
    """One line of an adbkey.pub / adb_keys file: base64 RSAPublicKey struct, then " user@host"."""
    blob = base64.b64decode(line.strip().strip("\0").split()[0], validate=True)
    if len(blob) != ANDROID_PUBKEY_STRUCT.size:
        raise ValueError(f"an Android RSA public key is {ANDROID_PUBKEY_STRUCT.size} bytes, got {len(blob)}")
    words, _n0inv, modulus, _rr, exponent = ANDROID_PUBKEY_STRUCT.unpack(blob)
    if words != 64:
        raise ValueError(f"only 2048-bit keys are used by adb, got {words * 32} bits")
    return rsa.RSAPublicNumbers(exponent, int.from_bytes(modulus, "little")).public_key()


def load_trusted_keys(paths: Iterable[Path]) -> list[rsa.RSAPublicKey]:
    """Every key in the given files; unreadable files and bad lines are skipped with a log line."""
    keys = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="ascii", errors="replace")
        except OSError as exc:
            log.info("trusted key file %s not readable: %s", path, exc)
            continue
        for line in text.splitlines():
            if not line.strip().strip("\0").strip():  # blank, or only NULs
                continue
            try:
                keys.append(parse_android_pubkey(line))
            except (ValueError, TypeError) as exc:
                log.warning("skipping a bad key in %s: %s", path, exc)
    return keys


def signature_is_trusted(token: bytes, signature: bytes, keys: Iterable[rsa.RSAPublicKey]) -> bool:
    """adb signs the token as if it were a SHA-1 digest: PKCS#1 v1.5, no hashing of its own."""
    if len(token) != TOKEN_SIZE:
        return False
    for key in keys:
        try:
            key.verify(signature, token, padding.PKCS1v15(), utils.Prehashed(hashes.SHA1()))
            return True
        except (InvalidSignature, ValueError):
            continue
    return False


# ---------------------------------------------------------------------------------------
# The server


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
        self.trusted_key_paths = list(trusted_keys) if trusted_keys is not None else default_trusted_keys()
        self._listener: socket.socket | None = None
        self._acceptor: threading.Thread | None = None
        self._stopping = threading.Event()
        self._connections: set[_Connection] = set()
        self._lock = threading.Lock()
        self._next_conn_id = 0

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

    def __enter__(self) -> EmulatorServer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _accept_loop(self) -> None:
        assert self._listener is not None
        while not self._stopping.is_set():
            try:
                sock, peer = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                log.exception("accept failed")
                continue
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with self._lock:
                self._next_conn_id += 1
                conn = _Connection(self, sock, f"{peer[0]}:{peer[1]}#{self._next_conn_id}")
                self._connections.add(conn)
            conn.start()

    def _forget(self, conn: _Connection) -> None:
        with self._lock:
            self._connections.discard(conn)

    def banner(self) -> bytes:
        props = self.phone.props
        fields = [
            f"ro.product.name={props.get('ro.product.name', '')}",
            f"ro.product.model={props.get('ro.product.model', '')}",
            f"ro.product.device={props.get('ro.product.device', '')}",
            "features=" + ",".join(FEATURES),
        ]
        return ("device::" + ";".join(fields)).encode()


# ---------------------------------------------------------------------------------------
# One client connection


class _Connection:
    """One TCP client: handshake, then packets dispatched to streams."""

    def __init__(self, server: EmulatorServer, sock: socket.socket, name: str):
        self.server = server
        self.sock = sock
        self.name = name
        self.phone = server.phone
        self.max_write = MAX_PAYLOAD  # lowered to the host's maxdata after CNXN
        self._send_lock = threading.Lock()
        self._streams: dict[int, _Stream] = {}
        self._streams_lock = threading.Lock()
        self._next_stream_id = 0
        self._closed = threading.Event()
        self._authenticated = False
        self._handshake_deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        self._token = b""
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
                raise _StreamClosed("connection closed")
            try:
                self.sock.sendall(packet)
            except OSError as exc:
                self.close()
                raise _StreamClosed(f"connection lost: {exc}") from exc

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
        except (EOFError, _StreamClosed):
            log.debug("%s: client went away", self.name)
        except (ProtocolError, ValueError) as exc:
            log.warning("%s: protocol error, closing: %s", self.name, exc)
        except TimeoutError:
            log.warning("%s: no handshake within %.0f s, closing", self.name, HANDSHAKE_TIMEOUT_S)
        except OSError as exc:
            if not self.closed:
                log.info("%s: connection error: %s", self.name, exc)
        except Exception:  # one client must never take the server down
            log.exception("%s: unexpected error, closing the connection", self.name)
        finally:
            self.close()
            self.server._forget(self)

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
        # A CNXN after the handshake restarts the session, as on adbd.
        self._close_all_streams()
        self._authenticated = False
        self._handshake_deadline = time.monotonic() + HANDSHAKE_TIMEOUT_S
        self.max_write = max(256, min(host_maxdata, MAX_PAYLOAD))
        log.debug("%s: CNXN %r", self.name, banner[:80])
        self._send_token()

    def _send_token(self) -> None:
        self._token = secrets.token_bytes(TOKEN_SIZE)
        self.send(constants.AUTH, constants.AUTH_TOKEN, 0, self._token)

    def _on_auth(self, kind: int, data: bytes) -> None:
        if not self._token:
            raise ProtocolError("AUTH before CNXN")
        if kind == constants.AUTH_SIGNATURE:
            keys = load_trusted_keys(self.server.trusted_key_paths)
            if signature_is_trusted(self._token, data, keys):
                self._authenticated = True
                self.sock.settimeout(None)  # benchmarks may be silent for minutes
                log.info("%s: authenticated", self.name)
                self.send(constants.CNXN, DEVICE_VERSION, MAX_PAYLOAD, self.server.banner())
            else:
                self._send_token()  # adbd offers a fresh token for the next key
        elif kind == constants.AUTH_RSAPUBLICKEY:
            # A phone would show "Allow USB debugging?"; nobody is there to tap it, so the
            # key stays unknown and the client waits until it gives up.
            log.warning(
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
        handler = _service_for(service)
        if handler is None:
            log.info("%s: refusing service %r", self.name, service)
            self.send(constants.CLSE, 0, remote_id)
            return
        with self._streams_lock:
            self._next_stream_id += 1
            stream = _Stream(self, self._next_stream_id, remote_id, service)
            self._streams[stream.local_id] = stream
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
            with stream._close_lock:
                answer = not stream.sent_close
                stream.sent_close = True
            if answer:
                try:
                    self.send(constants.CLSE, stream.local_id, stream.remote_id)
                except _StreamClosed:
                    pass
            stream.mark_closed()

    def forget_stream(self, stream: _Stream) -> None:
        with self._streams_lock:
            if self._streams.get(stream.local_id) is stream:
                del self._streams[stream.local_id]


class _Stream:
    """One OPENed service: flow-controlled writes to the host, queued writes from it."""

    def __init__(self, conn: _Connection, local_id: int, remote_id: int, service: str):
        self.conn = conn
        self.local_id = local_id
        self.remote_id = remote_id
        self.service = service
        self.sent_close = False
        self._close_lock = threading.Lock()
        self.cancelled = threading.Event()  # the host closed the stream, or the link died
        self._can_send = threading.Event()
        self._can_send.set()  # after our OKAY to OPEN, we may send one WRTE
        self._inbox: queue.Queue[bytes | None] = queue.Queue()
        self._inbuf = bytearray()
        self._thread: threading.Thread | None = None

    def start(self, handler: Callable[[_Stream], None]) -> None:
        self._thread = threading.Thread(
            target=self._run, args=(handler,), name=f"adbd-{self.conn.name}-{self.local_id}", daemon=True
        )
        self._thread.start()

    def _run(self, handler: Callable[[_Stream], None]) -> None:
        try:
            handler(self)
            self.close()
        except _StreamClosed:
            pass
        except (_AbortConnection, DropConnection) as exc:
            log.info("%s: dropping the connection (%s)", self.conn.name, exc or type(exc).__name__)
            self.conn.abort()
        except Exception:
            log.exception("%s: service %r failed", self.conn.name, self.service)
            self.close()

    # -- events from the reader thread --------------------------------------------------

    def on_okay(self) -> None:
        self._can_send.set()

    def on_write(self, data: bytes) -> None:
        # The OKAY is sent when the service takes the data (read()), so a fast host is
        # held back by a slow service instead of filling memory.
        if self._inbox.qsize() >= MAX_QUEUED_WRITES:
            raise ProtocolError("host keeps writing without waiting for OKAY")
        self._inbox.put(data)

    def mark_closed(self) -> None:
        self.cancelled.set()
        self._can_send.set()
        self._inbox.put(None)

    # -- used by services ---------------------------------------------------------------

    def write(self, data: bytes) -> None:
        """Send `data` to the host as WRTEs of at most maxdata, each after the previous OKAY."""
        view = memoryview(data)
        for start in range(0, len(view), self.conn.max_write):
            while not self._can_send.wait(0.5):
                if self.conn.closed:
                    break
            if self.cancelled.is_set() or self.conn.closed:
                raise _StreamClosed(self.service)
            self._can_send.clear()
            self.conn.send(constants.WRTE, self.local_id, self.remote_id, bytes(view[start : start + self.conn.max_write]))

    def read(self, size: int) -> bytes:
        """Exactly `size` bytes of what the host wrote, across WRTE boundaries."""
        while len(self._inbuf) < size:
            payload = self._inbox.get()
            if payload is None:
                self._inbox.put(None)  # stay closed for later readers
                raise _StreamClosed(self.service)
            self._inbuf += payload
            self.conn.send(constants.OKAY, self.local_id, self.remote_id)
        out = bytes(self._inbuf[:size])
        del self._inbuf[:size]
        return out

    def discard_input(self) -> None:
        """Acknowledge and drop host writes (shell v1 has no stdin worth reading)."""
        while True:
            payload = self._inbox.get()
            if payload is None:
                return
            try:
                self.conn.send(constants.OKAY, self.local_id, self.remote_id)
            except _StreamClosed:
                return

    def close(self) -> None:
        """Our side is done: send CLSE once; the host's answering CLSE is ignored."""
        with self._close_lock:
            if self.sent_close or self.cancelled.is_set():
                return
            self.sent_close = True
        try:
            self.conn.send(constants.CLSE, self.local_id, self.remote_id)
        except _StreamClosed:
            pass


# ---------------------------------------------------------------------------------------
# Services


def _service_for(service: str) -> Callable[[_Stream], None] | None:
    if service.startswith("shell:"):
        return _shell_service
    if service == "sync:":
        return _sync_service
    return None


def _shell_service(stream: _Stream) -> None:
    """`shell:<cmd>` v1: the command's output as it is produced, then CLSE (no exit status)."""
    command = stream.service[len("shell:") :]
    if not command.strip():
        stream.write(b"mnv3bench emulator: no interactive shell; run `adb shell <command>`.\n")
        return
    threading.Thread(target=stream.discard_input, name=f"{stream.service[:20]}-stdin", daemon=True).start()

    def write(data: bytes) -> None:
        if data and not stream.cancelled.is_set():
            try:
                stream.write(data)
            except _StreamClosed:
                stream.cancelled.set()  # the phone sees `cancelled` and stops

    stream.conn.phone.run_shell(command, write, stream.cancelled)


class _SyncSession:
    """sync v1 over one stream: requests are a byte stream across WRTE payloads."""

    def __init__(self, stream: _Stream):
        self.stream = stream
        self.phone = stream.conn.phone
        self._out = bytearray()

    # Replies are batched into WRTEs of up to maxdata, flushed when a reply is complete.
    def reply(self, sync_id: bytes, *fields: int, data: bytes = b"") -> None:
        self._out += struct.pack(f"<I{len(fields)}I", SYNC_WIRE[sync_id], *fields) + data
        if len(self._out) >= self.stream.conn.max_write:
            self.flush()

    def flush(self) -> None:
        if self._out:
            out, self._out = bytes(self._out), bytearray()
            self.stream.write(out)

    def fail(self, message: str) -> None:
        encoded = message.encode()
        self.reply(constants.FAIL, len(encoded), data=encoded)
        self.flush()

    def run(self) -> None:
        while True:
            sync_id, length = struct.unpack("<4sI", self.stream.read(8))
            if sync_id == constants.QUIT:
                return
            if sync_id not in (constants.SEND, constants.RECV, constants.STAT, constants.LIST):
                self.fail(f"unknown sync command {sync_id!r}")
                return
            if length > SYNC_PATH_MAX:
                self.fail(f"path too long ({length} bytes, at most {SYNC_PATH_MAX})")
                return
            arg = self.stream.read(length).decode("utf-8", errors="replace")
            if sync_id == constants.SEND:
                if not self.send(arg):
                    return
            elif sync_id == constants.RECV:
                self.recv(arg)
            elif sync_id == constants.STAT:
                self.stat(arg)
            else:
                self.list(arg)
            self.flush()

    def _resolve(self, device_path: str) -> Path:
        return self.phone.fs.resolve(device_path)

    def stat(self, device_path: str) -> None:
        # The phone's view (permission bits kept by the sandbox); zeros mean "no such file".
        try:
            st = self.phone.fs.stat(device_path)
        except (SandboxError, OSError):
            st = None
        if st is None:
            self.reply(constants.STAT, 0, 0, 0)
        else:
            self.reply(constants.STAT, st.mode & 0xFFFFFFFF, st.size & 0xFFFFFFFF, st.mtime & 0xFFFFFFFF)

    def list(self, device_path: str) -> None:
        # Like readdir on a phone: "." and ".." first, then the entries; DONE even on error.
        try:
            own = self.phone.fs.stat(device_path)
            entries = self.phone.fs.listdir(device_path) if own is not None and own.is_dir else []
        except (SandboxError, OSError):
            own, entries = None, []
        if own is not None and own.is_dir:
            parent = self.phone.fs.stat(device_path.rstrip("/") + "/..") or own
            entries = [(".", own), ("..", parent), *entries]
        for name, st in entries:
            encoded = name.encode("utf-8", errors="surrogateescape")
            self.reply(constants.DENT, st.mode & 0xFFFFFFFF, st.size & 0xFFFFFFFF, st.mtime & 0xFFFFFFFF,
                       len(encoded), data=encoded)
        self.reply(constants.DONE, 0, 0, 0, 0)

    def recv(self, device_path: str) -> None:
        try:
            handle = open(self._resolve(device_path), "rb")
        except (SandboxError, OSError) as exc:
            self.fail(_reason(exc))
            return
        with handle:
            while True:
                try:
                    chunk = handle.read(SYNC_DATA_MAX)
                except OSError as exc:
                    self.fail(_reason(exc))
                    return
                if not chunk:
                    break
                self.reply(constants.DATA, len(chunk), data=chunk)
        self.reply(constants.DONE, 0)

    def send(self, spec: str) -> bool:
        """SEND path,mode; DATA...; DONE mtime. The file appears, atomically, only on DONE.

        Returns False when the stream should end (a bad request)."""
        device_path, _, mode_text = spec.rpartition(",")
        if not device_path:
            device_path, mode_text = spec, ""
        try:
            mode = int(mode_text) if mode_text else 0o100644
        except ValueError:
            mode = 0o100644
        error: str | None = None
        target: Path | None = None
        tmp: Path | None = None
        handle = None
        try:
            target = self._resolve(device_path)
            if target.is_dir():
                raise IsADirectoryError(21, "Is a directory")
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.adbd-tmp")
            handle = open(tmp, "wb")
        except (SandboxError, OSError) as exc:
            error = f"couldn't create file: {_reason(exc)}"
        try:
            received = 0
            while True:
                sync_id, length = struct.unpack("<4sI", self.stream.read(8))
                if sync_id == constants.DONE:
                    mtime = length
                    break
                if sync_id != constants.DATA:
                    self.fail(f"invalid data message {sync_id!r} during SEND")
                    return False
                if length > SYNC_DATA_MAX:
                    self.fail(f"data chunk of {length} bytes exceeds {SYNC_DATA_MAX}")
                    return False
                data = self.stream.read(length)
                received += length
                if handle is not None and error is None:
                    try:
                        handle.write(data)
                    except OSError as exc:
                        error = f"write failed: {_reason(exc)}"
                if "drop-push" in self.phone.faults and received > 0:
                    raise _AbortConnection("fault drop-push: link lost during a push")
            if error is None and handle is not None and tmp is not None and target is not None:
                try:
                    handle.close()
                    # adbd keeps only rwx bits (mode & 0777); the host file never gets
                    # setuid, sticky or world-writable bits from a client.
                    os.chmod(tmp, (stat.S_IMODE(mode) & 0o755) or 0o644)
                    os.utime(tmp, (mtime, mtime))
                    os.replace(tmp, target)
                    tmp = None
                    # The sandbox keeps the phone's permission bits (the host's may differ).
                    self.phone.fs.set_mode(device_path, (mode & 0o777) or 0o644)
                except (SandboxError, OSError) as exc:
                    error = f"couldn't finish file: {_reason(exc)}"
        finally:
            if handle is not None:
                handle.close()
            if tmp is not None:
                tmp.unlink(missing_ok=True)
        if error is not None:
            self.fail(error)
        else:
            self.reply(constants.OKAY, 0)
        return True


def _reason(exc: BaseException) -> str:
    if isinstance(exc, MnvError):
        return exc.message
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _sync_service(stream: _Stream) -> None:
    session = _SyncSession(stream)
    try:
        session.run()
    finally:
        if not stream.cancelled.is_set():
            try:
                session.flush()
            except _StreamClosed:
                pass
