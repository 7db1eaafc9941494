"""The progress displays (commands/progress.py) without a terminal: a recording rich Console
and a list of plain lines, driven by a hand-moved clock."""

from __future__ import annotations

import io

from rich.console import Console

from mnv3bench.commands.progress import (
    BuildBoard,
    PlainProgress,
    RichProgress,
    TrialClock,
    kept_line,
    kept_report,
    newest_session_id,
    rich_bar,
)
from mnv3bench.results import ResultStore, SessionRecord, TrialRecord


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_model_is_queued_until_a_worker_starts_it_then_timed_from_that_moment():
    clock = Clock()
    board = BuildBoard(clock)
    for name in ("a", "b", "c"):
        board.update(name, "queued")
    clock.now += 30  # waiting for a worker does not count as building
    board.update("a", "building")
    clock.now += 12.4
    assert [board.text(n) for n in "abc"] == ["building 12 s", "queued", "queued"]
    board.update("a", "built")
    board.update("b", "building")
    clock.now += 5
    assert board.text("a") == "built 12.4 s" and board.text("b") == "building 5 s"
    board.update("d", "cached")
    assert board.text("d") == "cached" and board.line("a") == "   built a (12.4 s)"


def test_the_trial_clock_gives_elapsed_eta_and_the_latest_latency():
    clock = Clock()
    trials = TrialClock(clock=clock)
    trials.trial_started(0, 10)
    clock.now += 6
    trials.trial_finished("large-relu", 1, True, 6.4123)
    trials.trial_started(1, 10)
    assert trials.status() == "1/10 trials · 6 s elapsed · ETA 54 s · large-relu #1: 6.41 ms"
    clock.now += 4  # mid-trial the ETA counts down
    assert trials.eta() == 50
    clock.now += 80
    trials.trial_finished("large-relu", 2, False, None)
    assert trials.status().startswith("2/10 trials · 1:30 elapsed · ETA 6:00") and "#2: failed" in trials.status()


def test_with_a_precision_target_the_bar_shows_the_worst_half_width_not_an_eta():
    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    with rich_bar(console) as bar:
        progress = RichProgress(bar, precision_target=0.02)
        progress.trial_started("a", 1, 0, 3)
        progress.trial_finished("a", 1, True, 4.0, None)
        assert "target ±2.00%" in progress.clock.status() and "ETA" not in progress.clock.status()
        progress.precision("round 3: worst ±3.10% (a vs b), target ±2.00%")
        bar.refresh()
    status = progress.clock.status()
    assert status.startswith("1 trials · ") and "worst ±3.10% (a vs b), target ±2.00%" in status
    assert "ETA" not in status and "a #1: 4.00 ms" in status


def test_a_phones_labelled_precision_line_reaches_its_bar_too():
    # Several phones: each phone's lines carry its name (LabelledProgress).
    from mnv3bench.commands.measure_options import LabelledProgress

    console = Console(file=io.StringIO(), force_terminal=True, width=160)
    with rich_bar(console) as bar:
        progress = RichProgress(bar, precision_target=0.02)
        LabelledProgress(progress, "pixel1").precision("round 4: worst ±2.50% (a vs b), target ±2.00%")
    assert "pixel1: round 4: worst ±2.50% (a vs b), target ±2.00%" in progress.clock.status()
    assert "pixel1: round 4: worst ±2.50%" in console.file.getvalue()


def test_rich_progress_shows_only_models_that_build_then_pushes_and_trials():
    console = Console(file=io.StringIO(), force_terminal=True, width=140)
    clock = Clock()
    with rich_bar(console) as bar:
        progress = RichProgress(bar, clock=clock)
        for name in ("m1", "m2", "m3"):
            progress.build(name, "queued", "")
        progress.build("m1", "building", "")
        clock.now += 12
        rows = {t.description: t.fields["status"]() for t in bar.tasks}
        assert rows == {"m1": "building 12 s", "m2": "queued", "m3": "queued"}
        progress.build("m1", "built", "/models/m1.tflite")
        progress.build("m4", "cached", "/models/m4.tflite")
        assert {t.description for t in bar.tasks} == {"m2", "m3"}  # done models leave the live rows
        progress.push("m1", 5_000_000, 10_000_000)
        progress.trial_started("m1", 1, 0, 4)
        clock.now += 2
        progress.trial_finished("m1", 1, True, 4.0, None)
        progress.trial_finished("m1", 2, False, None, "timed out")
        bar.refresh()
    text = console.file.getvalue()
    assert "built m1 (12.0 s)" in text and "cached m4" in text
    assert "5.0/10.0 MB" in text and "2/4 trials" in text and "m1 #2: failed" in text and "timed out" in text


def test_plain_progress_is_one_line_per_event_with_times():
    clock = Clock()
    lines: list[str] = []
    progress = PlainProgress(clock=clock, write=lines.append)
    progress.build("m1", "queued", "")
    progress.build("m1", "building", "")
    clock.now += 34.1
    progress.build("m1", "built", "/models/m1.tflite")
    progress.trial_started("m1", 1, 0, 2)
    clock.now += 3
    progress.trial_finished("m1", 1, True, 6.41, None)
    assert lines == ["  queued m1", "building m1", "   built m1 (34.1 s)", "[1/2] m1 trial 1",
                     "  6.410 ms (3 s elapsed, ETA 3 s)"]


def test_the_kept_report_counts_what_the_database_holds_and_says_how_to_resume(tmp_path):
    with ResultStore(tmp_path / "r.db") as store:
        assert kept_report(store, newest_session_id(store), "mnv3bench run x --resume")[0].startswith(
            "interrupted before any trial was stored")
        before = newest_session_id(store)
        session = store.start_session(SessionRecord(
            command="run", device_profile="emulator", device_serial="s", device_model="m", device_fingerprint="fp",
            flags={}, variants=["a", "b", "c"], tool_version="test", device_address="127.0.0.1:5555"))
        for index, (variant, ok) in enumerate([("a", True), ("b", True), ("a", True), ("b", False)], start=1):
            store.record_trial(TrialRecord(
                session_id=session, variant=variant, model_sha256="0" * 64, device_profile="emulator",
                device_serial="s", device_model="m", device_fingerprint="fp", flags={}, trial_index=index,
                started_at="2026-01-01T00:00:00", ended_at="2026-01-01T00:00:01", ok=ok,
                latency_ms=5.0 if ok else None, tool_version="test"))
        kept, resume = kept_report(store, before, "mnv3bench run a b --db r.db --resume")
    assert kept == (f"interrupted: kept 3 trials (a 2, b 1, c none) and 1 failed one in {tmp_path / 'r.db'}, "
                    f"session {session}.")
    assert resume == "Measure what is missing: mnv3bench run a b --db r.db --resume"
    with ResultStore(tmp_path / "r.db", read_only=True) as store:  # one phone among several, by its address
        assert kept_line(store, before, device="emulator", address="127.0.0.1:5555") == kept
        assert kept_line(store, before, device="emulator", address="s") is None  # "s" is ro.serialno
