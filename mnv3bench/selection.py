"""Which stored trials a comparison or a table reads: one session's, never several silently.

Trials measured in one session ran in interleaved rounds under the same conditions (the
phone's temperature, the host's load); trials of different sessions did not. A ratio of
11.4 ms from a loaded session against 6.59 ms from a quiet one measures the load, not the
variants. So by default a report reads one session: the newest that measured the variants
it needs together (for a table, the one that measured most of the table's variants, the
newest among equals: every ratio and Δ of the table then shares one session's conditions).
A session's measurement includes the stored trials it built on (--resume, --reuse).

`--session N` picks a session; `--all-sessions` pools every session's trials of the same
model, flags and device build, and says so with each session's median. When the default
leaves out other sessions that measured these variants, a warning names them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # commands import this module; pandas is imported where trials are read
    import pandas as pd

WARNING_KEY = "sessions"  # the TableResult.warnings entry holding these warnings


@dataclass(frozen=True)
class SessionMedian:
    """What one session measured of one variant."""

    session: int
    variant: str
    trials: int
    median_ms: float

    def text(self) -> str:
        return f"{self.variant} {self.median_ms:.3g} ms ({self.trials} trials)"


@dataclass
class Selection:
    """The chosen trials (ResultStore.trials columns, each trial once) and how they were chosen."""

    trials: pd.DataFrame
    session: int | None  # the one session read; None when pooled or nothing matched
    pooled: list[SessionMedian] = field(default_factory=list)  # --all-sessions: each session's share
    others: list[SessionMedian] = field(default_factory=list)  # measured elsewhere, not used
    measured_by_variant: dict[str, list[int]] = field(default_factory=dict)  # variant -> its sessions

    @property
    def pooled_sessions(self) -> list[int]:
        return sorted({m.session for m in self.pooled})

    def label(self) -> str:
        """"session 12", "sessions 1, 2 pooled", for messages and report folders."""
        if self.session is not None:
            return f"session {self.session}"
        return f"sessions {', '.join(map(str, self.pooled_sessions))} pooled" if self.pooled else "no session"

    def warnings(self) -> list[str]:
        out = []
        if len(self.pooled_sessions) > 1:
            shares = "; ".join(f"session {s}: " + ", ".join(m.text() for m in self.pooled if m.session == s)
                               for s in self.pooled_sessions)
            out.append(f"pooled trials of sessions {', '.join(map(str, self.pooled_sessions))} (--all-sessions): "
                       f"{shares}. Trials of different sessions ran under different conditions and are never "
                       "paired; a ratio across them can measure the difference between the sessions.")
        for s in sorted({m.session for m in self.others}, reverse=True):
            found = ", ".join(m.text() for m in self.others if m.session == s)
            out.append(f"also measured in session {s}: {found}; not used, this is {self.label()} "
                       f"(--session {s} reads it, --all-sessions pools).")
        return out


def choose(measured: pd.DataFrame, variants: Sequence[str], *, session: int | None = None,
           all_sessions: bool = False) -> Selection:
    """One session's trials of these variants, from ResultStore.measured_trials.

    Default: the session that measured most of the variants, the newest among equals.
    session: that session. all_sessions: each variant's trials of the same model, flags and
    device build as its newest trial, from every session (the pool is named in warnings).
    """
    if session is not None and all_sessions:
        from mnv3bench.errors import UsageError

        raise UsageError("--session and --all-sessions exclude each other.",
                         "Give --session N to read one session, or --all-sessions to pool them all.")
    frame = measured[measured["variant"].isin(list(variants))]
    medians = _medians(frame, variants)
    by_variant = {v: sorted({m.session for m in medians if m.variant == v}) for v in variants}
    if all_sessions:
        trials = _pool(frame, variants)
        pooled = _medians(trials.assign(measured_in=trials["session_id"].fillna(0).astype(int)), variants)
        only = {m.session for m in pooled}
        return Selection(trials, next(iter(only)) if len(only) == 1 else None, pooled if len(only) > 1 else [],
                         measured_by_variant=by_variant)
    if session is None:
        coverage = frame.groupby("measured_in")["variant"].nunique()
        session = max(coverage.index, key=lambda s: (coverage[s], s)) if len(coverage) else None
    chosen = frame[frame["measured_in"] == session].drop(columns="measured_in").sort_values("id")
    used = {v: set(chosen.loc[chosen["variant"] == v, "id"]) for v in variants}
    # A session that only built on the chosen trials measured nothing new: not worth a warning.
    others = [m for m in medians if m.session != session
              and not set(frame.loc[(frame["measured_in"] == m.session) & (frame["variant"] == m.variant), "id"])
              <= used[m.variant]]
    return Selection(chosen.reset_index(drop=True), session if len(chosen) else None, others=others,
                     measured_by_variant=by_variant)


def _medians(frame: pd.DataFrame, variants: Sequence[str]) -> list[SessionMedian]:
    """Per session and variant (in the variants' order): trials and median."""
    groups = frame.groupby(["measured_in", "variant"], sort=True)["latency_ms"]
    found = [SessionMedian(int(s), str(v), int(n), float(med))
             for (s, v), n, med in zip(groups.size().index, groups.size(), groups.median(), strict=True)]
    order = {v: i for i, v in enumerate(variants)}
    return sorted(found, key=lambda m: (m.session, order[m.variant]))


def _pool(frame: pd.DataFrame, variants: Sequence[str]) -> pd.DataFrame:
    import pandas as pd

    from mnv3bench.results import newest_measurement

    unique = frame.drop(columns="measured_in").drop_duplicates("id").sort_values("id")
    parts = [newest_measurement(unique[unique["variant"] == v]) for v in variants]
    return pd.concat(parts, ignore_index=True) if parts else unique[:0]
