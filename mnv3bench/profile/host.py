"""Profile a .tflite on this machine with LiteRT's C profiler, as benchmark_model's op rows.

Used by the emulator's benchmark_model stand-in. The profile is taken in its own runs, after
the latency runs, with the profiler on only for those runs: the profiler costs about 1 us per
op, which latency must not carry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from mnv3bench.profile.litert_c import (
    EVENT_OPERATOR,
    OPERATOR_EVENTS,
    LiteRtError,
    LiteRtSession,
    OpEvent,
    litert_version,
)
from mnv3bench.profile.optable import OpRow, rows_from_timings

DELEGATE_PREFIX = "Delegate/"


@dataclass(frozen=True)
class HostProfile:
    rows: list[OpRow]
    runs: int
    builtin_kernels: bool


def _os_threads() -> int:
    return len(os.listdir("/proc/self/task"))


def open_session(graph: str, num_threads: int, builtin_kernels: bool) -> LiteRtSession:
    """Compile with profiling on, then check the runtime took every option; LiteRtError if not."""
    threads_before = _os_threads()
    session = LiteRtSession(graph, num_threads, builtin_kernels)
    session.invoke()  # warm-up, unprofiled
    events = [e for e in session.profile(1) if e.event_type in OPERATOR_EVENTS]
    version = f"ai-edge-litert {litert_version()}"
    if not events:
        raise LiteRtError(f"{version} recorded no operator events: it ignored enable_profiling")
    delegated = [e for e in events if e.event_type != EVENT_OPERATOR]
    if builtin_kernels:
        nodes = session.node_outputs()
        if delegated or len(events) != len(nodes):
            raise LiteRtError(f"{version} did not run TFLite's builtin kernels (kernel_mode = \"builtin\" "
                              f"ignored: {len(delegated)} delegate events, {len(events)} events for "
                              f"{len(nodes)} nodes)")
    elif not delegated:
        raise LiteRtError(f"{version} ran no op in XNNPACK although the CPU options asked for it")
    added = _os_threads() - threads_before
    # LiteRT keeps one helper thread of its own; the thread pool adds num_threads - 1.
    if num_threads > 0 and added > num_threads:
        raise LiteRtError(f"{version} started {added} threads for num_threads = {num_threads}: "
                          "it ignored the thread count")
    return session


def rows_from_events(events: list[OpEvent], names: list[str], runs: int) -> list[OpRow]:
    """Operator events -> rows: TFLite nodes named by their output tensor, delegate ops by type."""
    timings = []
    for event in sorted((e for e in events if e.event_type in OPERATOR_EVENTS), key=lambda e: e.start_us):
        if event.event_type == EVENT_OPERATOR and 0 <= event.node_index < len(names):
            name = names[event.node_index]
        else:
            name = DELEGATE_PREFIX + event.tag
        timings.append((event.tag, name, event.node_index, event.elapsed_us))
    return rows_from_timings(timings, runs)


def profile_ops(session: LiteRtSession, runs: int) -> HostProfile:
    runs = max(1, runs)
    names = [name for _, name in session.node_outputs()]
    return HostProfile(rows_from_events(session.profile(runs), names, runs), runs, session.builtin_kernels)
