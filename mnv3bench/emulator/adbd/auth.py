"""adbd's side of ADB authentication: the host keys it trusts, and the check of a token.

The device sends a random token; the host signs it with its private key (adbkey) and the
device accepts when the signature verifies against one of the public keys it trusts (a
phone's adb_keys; here the host's adbkey.pub by default). Nothing here touches a socket.
"""

from __future__ import annotations

import base64
import logging
import struct
import threading
from collections.abc import Iterable
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa, utils

log = logging.getLogger(__name__)

TOKEN_SIZE = 20
ANDROID_PUBKEY_STRUCT = struct.Struct("<LL256s256sL")


def default_trusted_keys() -> list[Path]:
    """The public key the host's client signs with: $MNV3BENCH_ADBKEY.pub or ~/.android/adbkey.pub."""
    from mnv3bench.device.adb import (
        default_key_path,  # the one place that names the key file
    )

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


class TrustedKeys:
    """The key files a server trusts. They are checked at each signature check, as adbd reads
    adb_keys, so a key added while the emulator runs is trusted from the next AUTH on.

    A file is parsed again only when its size or mtime changed: a client sending AUTH after
    AUTH neither re-reads the keys nor repeats the warning about a bad line each time."""

    def __init__(self, paths: Iterable[Path]):
        self.paths = list(paths)
        self._parsed: dict[Path, tuple[tuple[int, int] | None, list[rsa.RSAPublicKey]]] = {}
        self._lock = threading.Lock()

    def keys(self) -> list[rsa.RSAPublicKey]:
        keys: list[rsa.RSAPublicKey] = []
        with self._lock:
            for path in self.paths:
                try:
                    st = Path(path).stat()
                    version: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
                except OSError:
                    version = None
                cached = self._parsed.get(path)
                if cached is None or cached[0] != version:
                    cached = (version, load_trusted_keys([path]))
                    self._parsed[path] = cached
                keys.extend(cached[1])
        return keys

    def trust(self, token: bytes, signature: bytes) -> bool:
        return signature_is_trusted(token, signature, self.keys())
