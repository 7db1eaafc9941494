"""ResultStore.last_session: the session --resume continues."""

from __future__ import annotations

from mnv3bench.results import ResultStore, SessionRecord


def _session(store, variants, flags, serial="S1", fingerprint="fp"):
    return store.start_session(SessionRecord("mnv3bench run", "pixel3", serial, "Pixel 3", fingerprint, flags,
                                             variants, "0.1.0"))


def test_the_newest_session_of_this_device_that_measured_one_of_the_variants(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        first = _session(store, ["a", "b"], {"num_runs": "20"})
        _session(store, ["c"], {"num_runs": "30"})  # other variants
        _session(store, ["a"], {"num_runs": "40"}, serial="S2")  # another phone
        _session(store, ["a"], {"num_runs": "50"}, fingerprint="other")  # another build
        found = store.last_session(device_profile="pixel3", device_fingerprint="fp", device_serial="S1",
                                   variants=["b", "x"])
        assert found == {"id": first, "flags": {"num_runs": "20"}, "command": "mnv3bench run"}
        assert store.last_session(device_profile="pixel3", device_fingerprint="fp", device_serial=None,
                                  variants=["a"])["flags"] == {"num_runs": "40"}
        assert store.last_session(device_profile="pixel6", device_fingerprint="fp", device_serial=None,
                                  variants=["a"]) is None
