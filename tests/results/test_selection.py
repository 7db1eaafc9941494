"""Which session's trials a report reads (selection.py), from a database written by ResultStore."""

from __future__ import annotations

import pytest

from mnv3bench.errors import UsageError
from mnv3bench.results import ResultStore, SessionRecord
from mnv3bench.selection import choose
from tests.results.helpers import trial


def _session(store: ResultStore, variants: list[str], builds_on: dict[str, list[int]] | None = None) -> int:
    return store.start_session(SessionRecord("run", "pixel3", "S1", "Pixel 3", "google/blueline:12",
                                             {"num_threads": "1"}, variants, "0.1.0", builds_on=builds_on or {}))


def _measure(store: ResultStore, session: int, variant: str, n: int = 3) -> list[int]:
    return [store.record_trial(trial(session, i, variant=variant)) for i in range(1, n + 1)]


def test_trials_a_session_built_on_count_as_measured_in_it(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        first = _session(store, ["a"])
        ids = _measure(store, first, "a")
        store.record_trial(trial(first, 4, ok=False, variant="a"))  # failed trials never count
        second = _session(store, ["a", "b"], builds_on={"a": ids})
        _measure(store, second, "b")
        measured = store.measured_trials(device="pixel3")
    by_session = measured.groupby("measured_in")["id"].apply(sorted).to_dict()
    assert by_session == {first: ids, second: sorted([*ids, 5, 6, 7])}


def test_default_is_the_session_that_measured_most_newest_first(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        one = _session(store, ["a", "b"])
        _measure(store, one, "a"), _measure(store, one, "b")
        two = _session(store, ["a"])
        _measure(store, two, "a")
        three = _session(store, ["a", "b"])
        _measure(store, three, "a"), _measure(store, three, "b")
        measured = store.measured_trials()
    chosen = choose(measured, ["a", "b"])
    assert chosen.session == three and set(chosen.trials["session_id"]) == {three}
    assert [(m.session, m.variant) for m in chosen.others] == [(one, "a"), (one, "b"), (two, "a")]
    assert [w.split(":")[0] for w in chosen.warnings()] == ["also measured in session 2", "also measured in session 1"]
    assert choose(measured, ["a"]).session == three  # every session measured a: the newest
    assert choose(measured, ["a", "b"], session=two).trials["variant"].tolist() == ["a"] * 3
    assert choose(measured, ["a", "b"], session=9).trials.empty


def test_pooling_is_on_purpose_and_named(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        for _ in range(2):
            _measure(store, _session(store, ["a"]), "a")
        measured = store.measured_trials()
    chosen = choose(measured, ["a"], all_sessions=True)
    assert chosen.session is None and chosen.pooled_sessions == [1, 2] and len(chosen.trials) == 6
    [warning] = chosen.warnings()
    assert warning.startswith("pooled trials of sessions 1, 2 (--all-sessions): session 1: a 9.5 ms (3 trials); "
                              "session 2: a 9.5 ms (3 trials).")
    with pytest.raises(UsageError, match="exclude each other"):
        choose(measured, ["a"], session=1, all_sessions=True)
