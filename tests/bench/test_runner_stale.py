"""A benchmark left running on the device by a killed run is found and killed before trial 1."""

from __future__ import annotations

from mnv3bench.bench.runner import KILL_COMMAND, RUNNING_COMMAND, RunConfig
from mnv3bench.device.protocol import ShellResult
from mnv3bench.testing import FakeDevice
from tests.bench.helpers import make_artifacts, run


class StaleBenchmarkDevice(FakeDevice):
    """A phone where a dead run's benchmark_model (pid 4242) runs until pkill'd."""

    def __init__(self) -> None:
        super().__init__()
        self.stale_running = True

    def shell(self, command: str, *, timeout_s: float = 60.0) -> ShellResult:
        if command == RUNNING_COMMAND:
            self.commands.append(command)
            return ShellResult("4242\n" if self.stale_running else "", 0 if self.stale_running else 1, False)
        if command == KILL_COMMAND:
            self.stale_running = False
        return super().shell(command, timeout_s=timeout_s)


class Messages:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def message(self, text: str) -> None:
        self.lines.append(text)

    def precision(self, line: str) -> None:
        self.lines.append(line)

    def push(self, *a) -> None: ...
    def trial_started(self, *a) -> None: ...
    def trial_finished(self, *a) -> None: ...


def test_a_stale_benchmark_is_killed_before_the_first_trial_and_said(tmp_path, profile, store):
    dev = StaleBenchmarkDevice()
    progress = Messages()
    run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev, RunConfig(trials=2), progress=progress)
    first_benchmark = next(i for i, c in enumerate(dev.commands) if c.startswith("taskset "))
    assert dev.commands.index(RUNNING_COMMAND) < dev.commands.index(KILL_COMMAND) < first_benchmark
    assert any("left by an earlier run" in line and "4242" in line for line in progress.lines)
    assert store.trials()["ok"].all()


def test_no_stale_benchmark_means_no_kill_and_no_message(tmp_path, profile, store):
    dev = FakeDevice()
    progress = Messages()
    run(profile, store, ["a"], make_artifacts(tmp_path, ["a"]), dev, RunConfig(trials=1), progress=progress)
    assert RUNNING_COMMAND in dev.commands and KILL_COMMAND not in dev.commands
    assert not any("earlier run" in line for line in progress.lines)
