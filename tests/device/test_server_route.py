"""The adb-server route (device/server_route.py) against Debian's real adb server, with the
host emulator attached to it by `adb connect 127.0.0.1:P`, as a user's phone on Wi-Fi or a
device farm's phone would be."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time

import pytest

from mnv3bench.device.profiles import load_profile
from mnv3bench.device.protocol import Device, DeviceLinkError
from mnv3bench.device.server_route import (
    ServerAddress,
    ServerDevice,
    find_server,
    list_server_devices,
    pick_serial,
    server_answers,
)
from mnv3bench.device.session import open_device
from mnv3bench.errors import MnvError, UsageError
from tests.helpers import QUICK, REPO, SMALL

pytestmark = pytest.mark.adb


@pytest.fixture
def attached(rel_env, adb_server, emulator):
    server = emulator()
    serial = adb_server.attach(server.address)
    return adb_server, server, serial


def test_the_server_device_satisfies_the_device_protocol(attached) -> None:
    adb_server, _, serial = attached
    device = ServerDevice(ServerAddress("127.0.0.1", adb_server.port), serial)
    assert isinstance(device, Device)
    assert device.transport_name == "adb-server"


def test_find_server_uses_the_running_one_and_never_starts_one(rel_env, adb_server) -> None:
    assert find_server() == ServerAddress("127.0.0.1", adb_server.port)
    assert find_server(f"127.0.0.1:{adb_server.port}") == ServerAddress("127.0.0.1", adb_server.port)
    adb_server.adb("kill-server")
    assert find_server() is None
    with pytest.raises(MnvError, match="no adb server answers"):
        find_server(f"127.0.0.1:{adb_server.port}")
    assert not server_answers(ServerAddress("127.0.0.1", adb_server.port))  # and nothing started one


def test_shell_exit_status_output_timeout_and_push(attached, tmp_path) -> None:
    adb_server, server, serial = attached
    device = ServerDevice(ServerAddress("127.0.0.1", adb_server.port), serial)
    result = device.shell("echo hello; false")
    assert (result.output, result.exit_code, result.timed_out) == ("hello\n", 1, False)
    assert device.shell("echo bye; exit 3").exit_code is None  # the command ended the shell itself
    started = time.monotonic()
    slow = device.shell("echo first; sleep 30", timeout_s=1.0)
    assert slow.timed_out and slow.exit_code is None and slow.output == "first\n"
    assert time.monotonic() - started < 5
    assert device.shell("echo still usable").ok
    local = tmp_path / "blob.bin"
    local.write_bytes(bytes(range(256)) * 4000)
    seen: list[tuple[int, int]] = []
    device.push(local, "/data/local/tmp/blob.bin", lambda sent, total: seen.append((sent, total)))
    assert seen[-1] == (local.stat().st_size, local.stat().st_size)
    assert device.sha256("/data/local/tmp/blob.bin") == hashlib.sha256(local.read_bytes()).hexdigest()
    assert device.sha256("/data/local/tmp/none") is None
    device.close()
    with pytest.raises(DeviceLinkError):
        device.shell("true")


def test_a_device_that_goes_away_is_a_link_error(attached) -> None:
    adb_server, server, serial = attached
    device = ServerDevice(ServerAddress("127.0.0.1", adb_server.port), serial)
    assert device.shell("true").ok
    server.stop()
    with pytest.raises(DeviceLinkError, match="lost the connection"):
        device.shell("echo x; sleep 1")


def test_serial_picks_one_device_among_several(rel_env, adb_server, emulator) -> None:
    first, second = emulator(), emulator()
    adb_server.attach(first.address)
    adb_server.attach(second.address)
    address = ServerAddress("127.0.0.1", adb_server.port)
    assert {e.serial for e in list_server_devices(address)} >= {first.address, second.address}
    with pytest.raises(UsageError, match="--serial"):
        pick_serial(address, None)
    assert pick_serial(address, second.address) == second.address
    with pytest.raises(MnvError, match="has no device 127.0.0.1:1"):
        pick_serial(address, "127.0.0.1:1")


def test_the_route_is_automatic_and_overridable(attached) -> None:
    adb_server, server, serial = attached
    profile = load_profile("emulator", REPO / "mnv3bench" / "devices")
    with open_device(profile, serial=serial) as session:
        assert session.device.transport_name == "adb-server" and session.info.device == "mnv3emu"
    with open_device(profile, serial=serial, adb_server=f"127.0.0.1:{adb_server.port}") as session:
        assert session.device.transport_name == "adb-server"
    with open_device(profile, adb=server.address, direct=True) as session:
        assert session.device.transport_name == "tcp"
    with pytest.raises(UsageError, match="both --direct and --adb-server"):
        with open_device(profile, serial=serial, adb_server="127.0.0.1:1", direct=True):
            pass


def test_devices_lists_what_the_server_knows_with_the_matching_profile(attached, mnv3) -> None:
    _, _, serial = attached
    result = mnv3("devices", "--json")
    assert result.code == 0, result.err
    [row] = [r for r in json.loads(result.out)["reachable"] if r["serial"] == serial]
    assert row["transport"].startswith("adb-server") and row["state"] == "device"
    assert row["profile"] == "emulator" and row["device"] == "mnv3emu"


@pytest.mark.slow
def test_run_measures_through_the_server_with_no_adb_option_and_records_the_route(attached, small_model, cli,
                                                                                 tmp_path) -> None:
    _, _, serial = attached
    db = tmp_path / "r.db"
    result = cli("run", "--serial", serial, "--device", "emulator", "--variant", SMALL, "--trials", "2", *QUICK,
                 "--db", str(db), "--models-dir", str(small_model))
    assert result.code == 0, result.err
    with sqlite3.connect(db) as conn:
        infos = [json.loads(r[0]) for r in conn.execute("SELECT device_info FROM sessions")]
        oks = [r[0] for r in conn.execute("SELECT ok FROM trials")]
    assert [i["route"] for i in infos] == ["adb-server"] and oks == [1, 1]
