"""The emulated adbd: a loopback TCP server that speaks the real ADB protocol.

Clients no one here wrote (adb-shell, Debian's `adb`) connect to it as to a phone reached
with `adb tcpip`. Layered as adb_shell is, bottom up:

- auth.py: the keys it trusts and the RSA check of a signed AUTH token;
- connection.py: message framing, the CNXN/AUTH handshake and its deadline, and the
  OPEN/OKAY/WRTE/CLSE streams multiplexed on one connection;
- services.py: what an OPEN runs on a stream, `shell:` (v1) and `sync:` (v1), as calls
  on the phone;
- server.py: `EmulatorServer`, the accept loop and start/stop.

Threads: one acceptor, one reader per client connection, one worker per open stream.
"""
