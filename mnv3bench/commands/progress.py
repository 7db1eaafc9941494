"""What the commands show on stderr while they build and measure, and what a stop kept.

Two displays of the same events: `RichProgress` (live bars on a terminal) and
`PlainProgress` (one line per event: logs, pipes, CI, -v). Both implement the runner's
Progress (bench/runner.py) and take model build events (model/builds.py's callback), and
both word things through the same two bookkeepers:

- `BuildBoard`: each model's state with its own clock. A model is "queued" until a worker
  really starts it (the pool takes every job at once), then "building 12 s", then
  "built 34.1 s" or "cached".
- `TrialClock`: trials done of planned, elapsed time, an ETA from the pace so far, and the
  latest latency. With --precision the number of trials is not known in advance, so it
  shows the runner's latest precision line (the worst half-width against the target)
  instead of an ETA.

`kept_report` words what a Ctrl-C or SIGTERM left in the results database, with the exact
command that resumes it.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from mnv3bench.cliapp import with_given_options
from mnv3bench.results import ResultStore

Clock = Callable[[], float]
DONE_STATES = ("cached", "built", "failed")


def duration(seconds: float) -> str:
    """"12 s" under a minute, else "4:05" (or "1:02:03")."""
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


# -- building ------------------------------------------------------------------------------


@dataclass
class _Build:
    state: str
    started: float | None = None
    ended: float | None = None


class BuildBoard:
    """Each model's build state, timed from the moment a worker started it."""

    def __init__(self, clock: Clock = time.monotonic) -> None:
        self.clock = clock
        self.models: dict[str, _Build] = {}

    def update(self, name: str, state: str) -> None:
        build = self.models.setdefault(name, _Build(state))
        build.state = state
        if state == "building" and build.started is None:
            build.started = self.clock()
        elif state in DONE_STATES and build.ended is None:
            build.ended = self.clock()

    def seconds(self, name: str) -> float | None:
        build = self.models[name]
        if build.started is None:
            return None
        return (build.ended if build.ended is not None else self.clock()) - build.started

    def text(self, name: str) -> str:
        """"queued", "building 12 s", "built 34.1 s", "cached" or "failed after 3.0 s"."""
        build, seconds = self.models[name], self.seconds(name)
        if build.state == "building":
            return f"building {duration(seconds or 0.0)}"
        if build.state == "built":
            return "built" if seconds is None else f"built {seconds:.1f} s"
        if build.state == "failed":
            return "failed" if seconds is None else f"failed after {seconds:.1f} s"
        return build.state

    def line(self, name: str, detail: str = "") -> str:
        """One line for the log: "  queued NAME", "building NAME", "   built NAME (34.1 s)",
        "  cached NAME", "  failed NAME (3.0 s): why"."""
        build, seconds = self.models[name], self.seconds(name)
        text = f"{build.state:>8} {name}"
        if build.state in ("built", "failed") and seconds is not None:
            text += f" ({seconds:.1f} s)"
        return text + (f": {detail}" if build.state == "failed" and detail else "")


# -- trials --------------------------------------------------------------------------------


class TrialClock:
    """Trials done of planned, elapsed time, ETA (or the precision reached) and the latest latency."""

    def __init__(self, precision_target: float | None = None, clock: Clock = time.monotonic) -> None:
        self.precision_target = precision_target
        self.clock = clock
        self.started: float | None = None
        self.last_finished: float | None = None
        self.done = 0
        self.total = 0
        self.latest: str | None = None
        self.precision: str | None = None

    @property
    def adaptive(self) -> bool:
        return self.precision_target is not None

    def trial_started(self, done: int, total: int) -> None:
        if self.started is None:
            self.started = self.last_finished = self.clock()
        self.done, self.total = done, total

    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None) -> None:
        self.done += 1
        self.last_finished = self.clock()
        self.latest = f"{variant} #{trial_index}: " + (f"{latency_ms:.2f} ms" if ok and latency_ms is not None
                                                        else "failed")

    def elapsed(self) -> float:
        return 0.0 if self.started is None else self.clock() - self.started

    def eta(self) -> float | None:
        """Seconds left at the pace of the trials so far (None before the first ends, or with --precision)."""
        if self.adaptive or self.started is None or self.last_finished is None or self.done == 0:
            return None
        per_trial = (self.last_finished - self.started) / self.done
        return max(0.0, per_trial * max(0, self.total - self.done) - (self.clock() - self.last_finished))

    def count(self) -> str:
        return f"{self.done} trials" if self.adaptive else f"{self.done}/{self.total} trials"

    def status(self) -> str:
        """E.g. "12/45 trials · 0:42 elapsed · ETA 1:10 · large-relu #3: 6.41 ms"."""
        parts = [self.count(), f"{duration(self.elapsed())} elapsed"]
        if self.adaptive:
            parts.append(self.precision or f"target ±{self.precision_target:.2%}")
        else:
            eta = self.eta()
            parts.append("ETA …" if eta is None else f"ETA {duration(eta)}")
        if self.latest:
            parts.append(self.latest)
        return " · ".join(parts)


# -- the two displays ------------------------------------------------------------------------


class _Status(ProgressColumn):
    """Text computed when drawn, so elapsed times tick between events."""

    def render(self, task: Task) -> Text:
        status = task.fields.get("status")
        return Text(status() if callable(status) else str(status or ""), no_wrap=True, overflow="ellipsis")


def rich_bar(console: Console) -> Progress:
    """The live display both `build` and the measuring commands draw into."""
    # A short bar leaves the status its line in 100 columns.
    return Progress(TextColumn("{task.description}"), BarColumn(bar_width=20), _Status(), console=console,
                    transient=True, refresh_per_second=4)


class RichProgress:
    """Live bars on stderr: the models building (one row each while queued or building),
    push bytes per model, and the trials with elapsed time, ETA and the latest latency."""

    def __init__(self, bar: Progress, precision_target: float | None = None, clock: Clock = time.monotonic) -> None:
        self.bar = bar
        self.board = BuildBoard(clock)
        self.clock = TrialClock(precision_target, clock)
        self.builds: dict[str, TaskID] = {}
        self.pushes: dict[str, TaskID] = {}
        self.trials: TaskID | None = None

    def message(self, text: str) -> None:
        self.bar.console.print(with_given_options(text), highlight=False, markup=False)

    def precision(self, line: str) -> None:
        self.clock.precision = line  # shown on the trials bar, and kept in the scrollback
        self.message(line)

    def build(self, name: str, state: str, detail: str) -> None:
        self.board.update(name, state)
        if name not in self.builds and state not in DONE_STATES:
            self.builds[name] = self.bar.add_task(name, total=1, status=lambda: self.board.text(name))
        task = self.builds.get(name)
        if state == "building" and task is not None:
            self.bar.update(task, total=None)  # a pulsing bar: it has started
        if state in DONE_STATES:
            if task is not None:
                self.bar.remove_task(task)
                del self.builds[name]
            self.bar.console.print(self.board.line(name, detail), highlight=False, markup=False)

    def push(self, variant: str, sent: int, total: int) -> None:
        text = f"{sent / 1e6:.1f}/{total / 1e6:.1f} MB"
        if variant not in self.pushes:
            self.pushes[variant] = self.bar.add_task(f"push {variant}", total=total, status=text)
        self.bar.update(self.pushes[variant], completed=sent, total=total, status=text)

    def trial_started(self, variant: str, trial_index: int, done: int, total: int) -> None:
        self.clock.trial_started(done, total)
        if self.trials is None:
            self.trials = self.bar.add_task("trials", total=None if self.clock.adaptive else total,
                                            status=self.clock.status)
        self.bar.update(self.trials, completed=done, total=None if self.clock.adaptive else total,
                        description=f"{variant} #{trial_index}")

    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None,
                       error: str | None) -> None:
        self.clock.trial_finished(variant, trial_index, ok, latency_ms)
        if self.trials is not None:
            self.bar.update(self.trials, completed=self.clock.done)
        if not ok:
            self.bar.console.print(f"{variant} trial {trial_index} failed: {error}", highlight=False, markup=False)


class PlainProgress:
    """One line per event on stderr: for logs, pipes and CI."""

    def __init__(self, precision_target: float | None = None, clock: Clock = time.monotonic,
                 write: Callable[[str], None] | None = None) -> None:
        self.board = BuildBoard(clock)
        self.clock = TrialClock(precision_target, clock)
        self._write = write or (lambda text: print(text, file=sys.stderr, flush=True))
        self._pushed: set[str] = set()

    def message(self, text: str) -> None:
        self._write(with_given_options(text))

    def precision(self, line: str) -> None:
        self.message(line)

    def build(self, name: str, state: str, detail: str) -> None:
        self.board.update(name, state)
        self._write(self.board.line(name, detail))

    def push(self, variant: str, sent: int, total: int) -> None:
        if sent >= total and variant not in self._pushed:
            self._pushed.add(variant)
            self._write(f"pushed {variant} ({total} bytes)")

    def trial_started(self, variant: str, trial_index: int, done: int, total: int) -> None:
        self.clock.trial_started(done, total)
        where = f"{done + 1}" if self.clock.adaptive else f"{done + 1}/{total}"
        self._write(f"[{where}] {variant} trial {trial_index}")

    def trial_finished(self, variant: str, trial_index: int, ok: bool, latency_ms: float | None,
                       error: str | None) -> None:
        self.clock.trial_finished(variant, trial_index, ok, latency_ms)
        result = f"{latency_ms:.3f} ms" if ok and latency_ms is not None else f"failed: {error}"
        after = f"{duration(self.clock.elapsed())} elapsed"
        if not self.clock.adaptive:
            eta = self.clock.eta()
            after += "" if eta is None else f", ETA {duration(eta)}"
        self._write(f"  {result} ({after})")


# -- what a stop kept --------------------------------------------------------------------------


def newest_session_id(store: ResultStore) -> int:
    """The newest session in the database (0 if none): sessions after it are this run's."""
    sessions = store.sessions()
    return int(sessions["id"].max()) if len(sessions) else 0


def kept_report(store: ResultStore, after_session: int, resume: str) -> list[str]:
    """What an interrupted run left in the database, and the command that measures the rest.

    Reads the database itself (not what the display saw): every trial it names is stored.
    """
    kept = kept_line(store, after_session)
    if kept is None:
        return [f"interrupted before any trial was stored; {store.path} is unchanged.", f"Run again: {resume}"]
    return [kept, f"Measure what is missing: {resume}"]


def kept_line(store: ResultStore, after_session: int, *, device: str | None = None,
              address: str | None = None) -> str | None:
    """What the newest session after `after_session` kept (of `device`, and of the phone at
    transport `address` when given: one phone among several); None when there is no such session."""
    sessions = store.sessions()
    if len(sessions):
        sessions = sessions[sessions["id"].astype(int) > after_session]
        if device is not None:
            sessions = sessions[sessions["device_profile"] == device]
        if address is not None:  # the adb serial it was reached by; device_serial is ro.serialno
            sessions = sessions[sessions["device_address"] == address]
    mine = sorted(int(i) for i in sessions["id"]) if len(sessions) else []
    if not mine:
        return None
    session = mine[-1]
    trials = store.trials(session=session)
    if trials.empty:
        return f"interrupted before the first trial ended; session {session} in {store.path} holds no trial."
    ok = trials[trials["ok"].astype(bool)]
    counts = ok.groupby("variant", sort=False).size()
    planned = json.loads(sessions.loc[sessions["id"] == session, "variants"].iloc[0] or "[]")
    per_variant = ", ".join([*(f"{variant} {count}" for variant, count in counts.items()),
                             *(f"{variant} none" for variant in planned if variant not in counts)])
    failed = len(trials) - len(ok)
    return (f"interrupted: kept {len(ok)} trial{'s' if len(ok) != 1 else ''}"
            + (f" ({per_variant})" if per_variant else "")
            + (f" and {failed} failed one{'s' if failed != 1 else ''}" if failed else "")
            + f" in {store.path}, session {session}.")
