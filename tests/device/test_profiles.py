"""Device profiles: the shipped ones load, and every kind of broken file names file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnv3bench.device.profiles import devices_dir, list_profiles, load_profile
from mnv3bench.errors import UsageError
from tests.helpers import REPO

GOOD = REPO / "devices" / "pixel3.toml"


def test_shipped_profiles_load_with_paper_columns() -> None:
    profiles = {p.name: p for p in list_profiles()}
    assert {"pixel1", "pixel2", "pixel3", "pixel4", "emulator"} <= set(profiles)
    assert profiles["pixel1"].paper_column == "P-1"
    assert profiles["pixel3"].paper_column == "P-3"
    assert profiles["pixel3"].codenames == ("blueline", "crosshatch")
    assert profiles["emulator"].emulated and profiles["emulator"].emulator["big_max_freq_khz"] > 0
    for profile in profiles.values():
        assert profile.pin_core in profile.big_cores


def test_affinity_mask_is_hex_of_pin_core() -> None:
    assert load_profile("pixel3").affinity_mask == "10"
    assert load_profile("pixel1").affinity_mask == "4"
    from dataclasses import replace
    assert replace(load_profile("pixel3"), pin_core=7).affinity_mask == "80"


def _write(tmp_path: Path, text: str, name: str = "phone") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def _without(key: str) -> str:
    return "\n".join(line for line in GOOD.read_text().splitlines() if not line.startswith(f"{key} ="))


def test_missing_key_names_file_key_and_fix(tmp_path: Path) -> None:
    path = _write(tmp_path, _without("pin_core"))
    with pytest.raises(UsageError) as err:
        load_profile(path)
    text = str(err.value)
    assert "phone.toml" in text and "missing key 'pin_core'" in text and "pin_core = 4" in text
    assert err.value.exit_code == 2


def test_bad_type_is_named(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.read_text().replace("pin_core = 4", 'pin_core = "4"'))
    with pytest.raises(UsageError, match=r"key 'pin_core' is a string .* expected an integer"):
        load_profile(path)
    path = _write(tmp_path, GOOD.read_text().replace("big_cores = [4, 5, 6, 7]", 'big_cores = [4, "5"]'))
    with pytest.raises(UsageError, match="big_cores"):
        load_profile(path)


def test_pin_core_must_be_a_big_core(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.read_text().replace("pin_core = 4", "pin_core = 1"))
    with pytest.raises(UsageError, match=r"'pin_core' = 1 is not one of big_cores \[4, 5, 6, 7\]"):
        load_profile(path)


def test_malformed_toml(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.read_text() + "\nthis is = = not toml\n")
    with pytest.raises(UsageError, match=r"phone.toml: not valid TOML"):
        load_profile(path)


def test_unknown_key_and_bad_column(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unknown key"):
        load_profile(_write(tmp_path, GOOD.read_text() + 'pin_cores = 4\n'))
    with pytest.raises(UsageError, match="paper_column"):
        load_profile(_write(tmp_path, GOOD.read_text().replace('"P-3"', '"P-9"')))


def test_unknown_name_lists_profiles_and_closest(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as err:
        load_profile("pixel33")
    text = str(err.value)
    assert "unknown device profile 'pixel33'" in text
    assert "pixel1, pixel2, pixel3, pixel4" in text and "Did you mean 'pixel3'" in text


def test_env_selects_devices_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "myphone.toml").write_text(GOOD.read_text().replace('name = "pixel3"', 'name = "myphone"'))
    monkeypatch.setenv("MNV3BENCH_DEVICES", str(tmp_path))
    assert devices_dir() == tmp_path
    assert [p.name for p in list_profiles()] == ["myphone"]
    assert load_profile("myphone").soc == "Snapdragon 845"


def test_name_must_match_file(tmp_path: Path) -> None:
    (tmp_path / "other.toml").write_text(GOOD.read_text())
    with pytest.raises(UsageError, match="differs from the file name"):
        load_profile("other", devices_dir=tmp_path)
