"""--resume against the session it continues: the same benchmark flags, or say which differ.

Stored trials are matched by their flags (bench/command.py), so --resume with other flags
would match nothing and quietly start a new full session. Instead, before anything runs:
an option left at its default takes the interrupted session's value (the run resumes with
that session's flags), and an option given another value than the session's stops the run,
naming each difference, unless --force-new asks for a new session with the new flags.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from mnv3bench.bench.options import (
    OPTIONS,
    PINNED_FLAGS,
    ModelFlag,
    RunConfig,
    model_flags,
)
from mnv3bench.errors import UsageError

# Keys that are not options, which runner._session_flags stores beside them: the pinned core's
# mask and the benchmark binary's hash.
IDENTITY = {"taskset": "the pinned core (taskset mask)", "binary_sha256": "the benchmark binary (sha256)"}


@dataclass(frozen=True)
class FlagChange:
    """One benchmark_model flag the stored session ran with, against the one asked for now."""

    flag: str
    stored: str | None  # None: not passed
    now: str | None

    @property
    def label(self) -> str:
        if self.flag in IDENTITY:
            return IDENTITY[self.flag]
        field = _field_of(self.flag)
        cli = next((o.cli_name for o in OPTIONS if o.name == field and o.cli), None) if field else None
        return cli or f"-- --{self.flag}"

    def text(self) -> str:
        def shown(value: str | None) -> str:
            return "not passed" if value is None else value[:12] if self.flag == "binary_sha256" else value

        return f"{self.label}: {shown(self.stored)} then, {shown(self.now)} now"


def flag_changes(stored: dict[str, str], now: dict[str, str]) -> list[FlagChange]:
    return [FlagChange(k, stored.get(k), now.get(k)) for k in sorted(set(stored) | set(now))
            if stored.get(k) != now.get(k)]


def resume_config(config: RunConfig, session_id: int, stored: dict[str, str], now: dict[str, str],
                  command: str | None = None) -> tuple[RunConfig, list[FlagChange]]:
    """The config that resumes the stored session: options left at their defaults take its
    values. UsageError when an option given (or the core, or the binary) differs from it."""
    changes = flag_changes(stored, now)
    defaults = {o.name: o.default for o in OPTIONS}
    updates: dict[str, Any] = {}
    blocked = []
    stored_extra = {k: v for k, v in stored.items() if _field_of(k) == "extra_flags"}
    for change in changes:
        field = _field_of(change.flag)
        if change.flag in IDENTITY or (field == "extra_flags" and config.extra_flags):
            blocked.append(change)
        elif field == "extra_flags":
            updates["extra_flags"] = tuple(f"--{k}={v}" for k, v in stored_extra.items())
        elif field is not None and getattr(config, field) != defaults[field]:
            blocked.append(change)
        elif field is not None:
            updates[field] = _value(_flag(change.flag), change.stored, defaults[field])
    if blocked:
        again = f" (its command: `{command}`)" if command else ""
        raise UsageError(
            f"--resume: session {session_id}, the one it would resume, ran with other benchmark flags: "
            + "; ".join(c.text() for c in blocked) + ".",
            f"Leave those options out to resume session {session_id} with its flags, give its values{again}, or "
            f"pass --force-new to start a new session with these flags (session {session_id}'s trials stay stored, "
            "apart from the new ones).",
        )
    return (replace(config, **updates) if updates else config), changes


def _field_of(flag: str) -> str | None:
    """The RunConfig field that sets a benchmark_model flag; "extra_flags" for any other flag."""
    if flag in IDENTITY:
        return None
    if any(f.name == flag for f, _value in PINNED_FLAGS):
        return flag  # a pinned flag's value comes from the RunConfig field of its name
    return next((o.name for o in OPTIONS if o.flag is not None and o.flag.name == flag), "extra_flags")


def _flag(name: str) -> ModelFlag:
    return next(f for f in model_flags() if f.name == name)


def _value(flag: ModelFlag, text: str | None, default: Any) -> Any:
    """A stored flag's text as the option's value; not passed: off for an on/off flag, else the default."""
    if text is None:
        return False if flag.kind is bool else default
    return text == "true" if flag.kind is bool else flag.kind(text)
