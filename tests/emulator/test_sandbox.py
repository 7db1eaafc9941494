"""The emulated phone's file system cannot be left: `..`, host paths, symlinks."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from mnv3bench.emulator.sandbox import SandboxError, SandboxFS

pytestmark = pytest.mark.security


@pytest.fixture
def fs(tmp_path: Path) -> SandboxFS:
    return SandboxFS(tmp_path / "root")


def test_device_paths_map_inside_the_root(fs: SandboxFS) -> None:
    assert fs.resolve("/data/local/tmp/m.tflite") == fs.root / "data/local/tmp/m.tflite"
    assert fs.resolve("/") == fs.root
    assert fs.resolve("relative/x", cwd="/sdcard") == fs.root / "sdcard/relative/x"


@pytest.mark.parametrize("path", ["../etc/passwd", "/../../../etc/passwd", "/data/../../../../etc/passwd",
                                  "/data/local/tmp/../../../../../../etc/passwd", "//etc//passwd"])
def test_dot_dot_stops_at_the_root(fs: SandboxFS, path: str) -> None:
    assert fs.resolve(path) == fs.root / "etc/passwd"


def test_absolute_host_paths_name_files_inside_the_root(fs: SandboxFS) -> None:
    host_passwd = "/etc/passwd"
    assert fs.resolve(host_passwd) == fs.root / "etc/passwd"
    assert fs.stat(host_passwd) is None   # the host's /etc/passwd is not visible
    tmp_root = str(fs.root)              # even the root's own host path is a device path
    assert fs.resolve(tmp_root) == fs.root / tmp_root.lstrip("/")


def test_symlinks_that_point_out_are_refused(fs: SandboxFS, tmp_path: Path) -> None:
    outside = tmp_path / "secret.txt"
    outside.write_text("host secret")
    (fs.root / "data").mkdir()
    os.symlink(outside, fs.root / "data/link")
    os.symlink(tmp_path, fs.root / "data/dirlink")
    os.symlink("../../secret.txt", fs.root / "data/rel")
    for path in ("/data/link", "/data/dirlink/secret.txt", "/data/rel"):
        with pytest.raises(SandboxError, match="outside"):
            fs.resolve(path)
    with pytest.raises(SandboxError):
        fs.open_read("/data/link")
    with pytest.raises(SandboxError):
        fs.write_bytes("/data/dirlink/new.txt", b"x")
    assert not (tmp_path / "new.txt").exists()
    assert [name for name, _ in fs.listdir("/data")] == []  # escaping entries are not listed


def test_symlinks_inside_the_root_are_followed(fs: SandboxFS) -> None:
    fs.write_bytes("/data/local/tmp/a", b"abc")
    os.symlink(fs.root / "data/local/tmp/a", fs.root / "data/local/tmp/b")
    assert fs.resolve("/data/local/tmp/b") == fs.root / "data/local/tmp/a"


def test_nul_and_empty_paths_are_refused(fs: SandboxFS) -> None:
    for bad in ("", "/data/\x00x"):
        with pytest.raises(SandboxError):
            fs.resolve(bad)


def test_bookkeeping_folder_is_hidden_and_unreachable(fs: SandboxFS) -> None:
    fs.write_bytes("/x", b"1", permissions=0o755)
    assert [name for name, _ in fs.listdir("/")] == ["x"]
    with pytest.raises(SandboxError):
        fs.resolve("/.mnv3emu/modes.json")


def test_modes_are_kept_per_file_and_survive_a_restart(fs: SandboxFS) -> None:
    fs.write_bytes("/data/local/tmp/bin", b"x", permissions=0o644)
    st = fs.stat("/data/local/tmp/bin")
    assert st is not None and st.is_file and st.permissions == 0o644 and st.size == 1
    assert not fs.is_executable("/data/local/tmp/bin")
    fs.set_mode("/data/local/tmp/bin", 0o755)
    again = SandboxFS(fs.root)
    assert again.is_executable("/data/local/tmp/bin")
    assert stat.S_ISDIR(again.stat("/data/local/tmp").mode)
    again.remove("/data/local/tmp/bin")
    assert again.stat("/data/local/tmp/bin") is None
    again.write_bytes("/data/local/tmp/bin", b"y")
    assert again.stat("/data/local/tmp/bin").permissions == 0o644  # the old mode is forgotten


def test_root_cannot_be_removed(fs: SandboxFS) -> None:
    with pytest.raises(SandboxError):
        fs.remove("/../", recursive=True)
    assert fs.root.is_dir()


def test_rm_of_a_symlink_removes_the_link_not_its_target(tmp_path: Path) -> None:
    fs = SandboxFS(tmp_path / "root")
    fs.write_bytes("/data/local/tmp/real.bin", b"keep me")
    os.symlink(fs.resolve("/data/local/tmp/real.bin"), fs.root / "data/local/tmp/link.bin")
    os.symlink(fs.root, fs.root / "data/local/tmp/to-root")
    fs.remove("/data/local/tmp/link.bin")
    fs.remove("/data/local/tmp/to-root", recursive=True)  # would have wiped the whole sandbox
    assert fs.resolve("/data/local/tmp/real.bin").read_bytes() == b"keep me"
    assert not (fs.root / "data/local/tmp/link.bin").exists()
    assert not os.path.lexists(fs.root / "data/local/tmp/to-root")
