"""Device profiles: the shipped ones load, and every kind of broken file names file, key and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnv3bench.device.profiles import devices_dir, list_profiles, load_profile
from mnv3bench.errors import UsageError
from tests.helpers import REPO

GOOD = REPO / "mnv3bench" / "devices" / "pixel3.toml"


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
    assert "pixel1, pixel2, pixel3, pixel4" in text and "Use --device pixel3 if you meant that phone" in text


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


# -- Pixel 1-9: clusters, the pinned core and the temperature rules --------------------------

PIXELS = [f"pixel{n}" for n in range(1, 10)]


@pytest.mark.parametrize("name", PIXELS)
def test_every_pixel_pins_a_core_of_its_fastest_cluster(name: str) -> None:
    profile = load_profile(name)
    fastest = profile.fastest_cluster
    assert profile.pin_core in fastest.cpus and set(profile.big_cores) == set(fastest.cpus)
    assert sorted(c for cl in profile.clusters for c in cl.cpus) == list(range(profile.cpu_count))
    assert profile.platform and profile.thermal.cpu_zones
    cpu_zones = [z for z in profile.thermal.zones if profile.thermal.is_cpu(z.type)]
    assert cpu_zones and all(0 < (z.celsius or 0) < 125 for z in cpu_zones)


def test_tensor_profiles_pin_the_prime_not_the_mid_cluster() -> None:
    assert load_profile("pixel6").pin_core == 6 and load_profile("pixel8").pin_core == 8
    assert load_profile("pixel8").cpu_count == 9 and load_profile("pixel9").pin_core == 7
    rules = load_profile("pixel6").thermal
    assert [rules.is_cpu(t) for t in ("BIG", "MID", "LITTLE", "ocp_cpu1", "soft_ocp_cpu2", "soc")] == \
        [True, True, True, False, False, False]


def test_pixel1_and_2_count_tenths_of_a_degree() -> None:
    for name in ("pixel1", "pixel2"):
        rules = load_profile(name).thermal
        assert rules.units == "decidegrees" and rules.to_celsius(372) == pytest.approx(37.2)
    assert load_profile("pixel1").paper_column == "P-1" and load_profile("pixel4").paper_column == ""


def test_every_fact_line_carries_a_source_comment() -> None:
    for name in PIXELS:
        text = (devices_dir() / f"{name}.toml").read_text()
        for key in ("codenames", "soc", "platform", "abi", "pin_core", "foreground_cpus"):
            line = next(line for line in text.splitlines() if line.startswith(f"{key} ="))
            assert "#" in line, f"{name}: {key} has no source comment"
        assert "kHz" in text and "[thermal]\n#" in text


@pytest.mark.parametrize(("edit", "message"), [
    (('clusters = [', 'clusters = [\n  { name = "x", cpus = [7], max_freq_khz = 1 },'), "must list every cpu"),
    (('units = "millidegrees"', 'units = "kelvin"'), "'thermal.units' = 'kelvin' is not a unit"),
    (('cpu_zones = ["cpu[0-3]-(silver|gold)-usr"]', 'cpu_zones = ["cpu[0-"]'), "bad pattern"),
    (("big_cores = [4, 5, 6, 7]", "big_cores = [0, 1, 2, 3]"), "pin_core"),
    (("foreground_cpus = [0", 'foreground_cpus = "0'), None),
])
def test_new_keys_are_checked_with_file_key_and_fix(tmp_path: Path, edit: tuple[str, str],
                                                    message: str | None) -> None:
    text = GOOD.read_text()
    assert edit[0] in text
    broken = text.replace(edit[0], edit[1], 1)
    if message is None:  # foreground_cpus = "0, 1, ...]": not TOML, or a string
        broken = text.replace("foreground_cpus = [0, 1, 2, 3, 6, 7]", 'foreground_cpus = "0-3"')
        message = r"'twin.foreground_cpus' is a string"
    with pytest.raises(UsageError, match=message) as err:
        load_profile(_write(tmp_path, broken))
    assert "phone.toml" in err.value.message and (err.value.hint or "?").split()[0] in ("Give", "Pin", "Set", "Write", "Use")


def test_clusters_must_agree_with_big_cores(tmp_path: Path) -> None:
    text = GOOD.read_text().replace("big_cores = [4, 5, 6, 7]", "big_cores = [4, 5]")
    text = text.replace("pin_core = 4", "pin_core = 4")
    with pytest.raises(UsageError, match="is not the fastest cluster"):
        load_profile(_write(tmp_path, text))
