"""The host recorded with each session, and the table notes it gives on the emulator."""

from __future__ import annotations

import json

import pandas as pd

from mnv3bench.host import cpu_model, governor, high_load, host_facts, host_notes


def test_host_facts_are_read_from_this_machine():
    facts = host_facts()
    assert facts.cores and facts.cores >= 1
    assert facts.load_start is None or len(facts.load_start) == 3
    json.dumps(facts.to_json())


def test_cpu_model_and_governor_from_their_files(tmp_path):
    (tmp_path / "cpuinfo").write_text("processor\t: 0\nmodel name\t: Intel(R) Xeon(R) CPU @ 2.20GHz\n")
    assert cpu_model(tmp_path / "cpuinfo") == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    for cpu, gov in (("cpu0", "performance"), ("cpu1", "powersave")):
        (tmp_path / cpu / "cpufreq").mkdir(parents=True)
        (tmp_path / cpu / "cpufreq" / "scaling_governor").write_text(gov + "\n")
    assert governor(tmp_path) == "performance, powersave"
    assert governor(tmp_path / "none") is None  # unreadable: absent, never guessed


def test_high_load_counts_other_work_only():
    assert high_load({"cores": 2, "load_start": [0.3, 0, 0]}, {"load_end": [1.4, 0, 0]}) is None  # 1.0 is ours
    busy = high_load({"cores": 2, "load_start": [2.5, 0, 0]}, {"load_end": [1.2, 0, 0]})
    assert busy and "2.50 at the start" in busy and "above 1 for 2 core(s)" in busy
    assert "at the end" in high_load({"cores": 2, "load_start": [0.1, 0, 0]}, {"load_end": [3.0, 0, 0]})
    assert high_load({}, None) is None


def _sessions(load_start, emulated=1):
    host = {"cpu_model": "Xeon", "cores": 2, "load_start": load_start, "governor": None}
    return pd.DataFrame([{"id": 7, "host": json.dumps(host), "host_end": json.dumps({"load_end": [1.0, 0, 0]}),
                          "sensors_emulated": emulated}])


def test_notes_say_the_sensors_are_emulated_and_flag_a_busy_host():
    quiet = host_notes(_sessions([0.2, 0, 0]), [7])
    assert len(quiet) == 1 and "invented (emulated sensors)" in quiet[0] and "host: Xeon, 2 cores" in quiet[0]
    busy = host_notes(_sessions([3.0, 0, 0]), [7])
    assert len(busy) == 2 and "HIGH HOST LOAD" in busy[1]
    assert host_notes(_sessions([3.0, 0, 0], emulated=0), [7]) == []  # a phone: the host's load is not the phone's
    assert host_notes(_sessions([3.0, 0, 0]), [8]) == []  # not a session of this table
