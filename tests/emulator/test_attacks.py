"""The emulator under attack, over the real ADB protocol with adb-shell as the client.

A real EmulatedPhone (sandbox, allow-listed shell) behind the real EmulatorServer. The
hypothesis fuzz of random and truncated packets and sync requests lives in
tests/emulator/test_adbd_fuzz.py (the adbd's own suite) and is not repeated here.
"""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from adb_shell.adb_device import AdbDeviceTcp
from adb_shell.auth.keygen import keygen

from mnv3bench.device.adb import load_signer
from mnv3bench.emulator.adbd.server import EmulatorServer
from mnv3bench.errors import UsageError

pytestmark = pytest.mark.security


def adb_client(server, key: Path, auth_timeout_s: float = 5) -> AdbDeviceTcp:
    client = AdbDeviceTcp("127.0.0.1", server.port, default_transport_timeout_s=10)
    client.connect(rsa_keys=[load_signer(key)], auth_timeout_s=auth_timeout_s, read_timeout_s=10)
    return client


@pytest.fixture
def phone_server(emulator):
    return emulator()


@pytest.fixture
def client(phone_server, adb_key):
    c = adb_client(phone_server, adb_key)
    yield c
    c.close()


def _non_loopback_ip() -> str | None:
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        probe.connect(("10.255.255.255", 1))  # no packet is sent; picks the outgoing interface
        ip = probe.getsockname()[0]
    except OSError:
        return None
    finally:
        probe.close()
    return None if ip.startswith("127.") else ip


def test_listens_on_loopback_only(phone_server, rel_env, cli):
    for host in ("0.0.0.0", "::", "192.168.1.20", ""):
        with pytest.raises(UsageError, match="only listens on loopback"):
            EmulatorServer(phone_server.phone, host=host)
    assert phone_server.address.startswith("127.0.0.1:")
    ip = _non_loopback_ip()
    if ip is not None:  # reachable on loopback, refused on the machine's network address
        with pytest.raises(OSError):
            socket.create_connection((ip, phone_server.port), timeout=2).close()
    assert cli("emulator", "serve", "--host", "0.0.0.0").code == 2  # no way to ask for another address


def test_refuses_a_key_it_does_not_trust_and_keeps_serving(phone_server, adb_key, tmp_path):
    stranger = tmp_path / "stranger"
    keygen(str(stranger))
    with pytest.raises(Exception):  # noqa: B017 - adb-shell raises DeviceAuthError or a closed link
        # Nobody answers the emulated "Allow USB debugging?" prompt: a short wait proves as much.
        c = adb_client(phone_server, stranger, auth_timeout_s=0.5)
        c.shell("echo should-not-run")
    trusted = adb_client(phone_server, adb_key)
    try:
        assert trusted.shell("echo still-serving").strip() == "still-serving"
    finally:
        trusted.close()


def _escape_targets(phone_server, outside: Path) -> dict[str, str]:
    """Device paths that try to reach `outside` (a host folder next to the emulator's root)."""
    link = phone_server.phone.fs.resolve("/data/local/tmp") / "link-out"
    link.symlink_to(outside, target_is_directory=True)  # e.g. left by a careless tool on the host
    return {
        "dot-dot": "/data/local/tmp/" + "../" * 12 + str(outside).lstrip("/") + "/{name}",
        "absolute": str(outside) + "/{name}",
        "symlink": "/data/local/tmp/link-out/{name}",
    }


def test_push_cannot_write_outside_the_sandbox(phone_server, client, tmp_path):
    outside = tmp_path / "host-outside"
    outside.mkdir()
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"pushed by an attacker\n")
    for kind, template in _escape_targets(phone_server, outside).items():
        try:
            client.push(str(payload), template.format(name=f"escaped-{kind}"))
        except Exception:  # noqa: BLE001 - a refused push is one right answer
            pass
        assert list(outside.iterdir()) == [], f"{kind}: a push escaped the sandbox"
    assert client.shell("echo alive").strip() == "alive"


def test_pull_cannot_read_outside_the_sandbox(phone_server, client, tmp_path):
    outside = tmp_path / "host-outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("TOP SECRET host file\n")
    for kind, template in _escape_targets(phone_server, outside).items():
        local = tmp_path / f"pulled-{kind}"
        try:
            client.pull(template.format(name="secret.txt"), str(local))
        except Exception:  # noqa: BLE001 - a refused pull is one right answer
            pass
        assert not local.exists() or b"TOP SECRET" not in local.read_bytes(), f"{kind}: a pull read a host file"
    assert client.shell("echo alive").strip() == "alive"


@pytest.mark.parametrize("template", [
    "echo hi; touch {m}",
    "echo hi && touch {m}",
    "echo `touch {m}`",
    "echo $(touch {m})",
    "ls /data/local/tmp/x;touch {m}",
    "ls '/data/local/tmp/$(touch {m})'",
    "sha256sum /data/local/tmp/a`touch {m}`",
    "taskset 10 /data/local/tmp/benchmark_model --graph=$(touch {m})",
    "sh -c 'touch {m}'",
    "python3 -c \"open('{m}', 'w')\"",
])
def test_shell_injection_runs_nothing_on_the_host(template, phone_server, client, tmp_path):
    marker = tmp_path / "host-marker"
    client.shell(template.format(m=marker), read_timeout_s=30)
    assert not marker.exists()
    assert client.shell("echo alive").strip() == "alive"


def test_file_names_with_shell_metacharacters_stay_file_names(phone_server, client, tmp_path):
    marker = tmp_path / "host-marker"
    payload = tmp_path / "payload.bin"
    payload.write_bytes(b"x")
    for name in (f"a;touch {marker}", f"b$(touch {marker})", f"c`touch {marker}`"):
        remote = "/data/local/tmp/" + name.replace("/", "_")
        client.push(str(payload), remote)
        listing = client.shell("ls /data/local/tmp")
        assert name.replace("/", "_") in listing
        assert client.shell(f"sha256sum '{remote}'").split()[0] == (
            "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881")
    assert not marker.exists()
