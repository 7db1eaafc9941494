"""The report files of a table: every format under <reports_dir>/<device>/session-<N>/, named
table-<name>.*, and <reports_dir>/<device>/latest/ pointing at the newest session's.

Each session keeps its own files, so rendering an older session (`report --session N`) or
pooled sessions never overwrites the newest table; `latest/table-<name>.*` are relative
symlinks to the newest session's files (copies where the file system has no symlinks).
"""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timezone
from pathlib import Path

from mnv3bench.errors import MnvError
from mnv3bench.tables.export.csv import agreement_to_csv, to_csv
from mnv3bench.tables.export.json import to_json
from mnv3bench.tables.export.markdown import to_markdown
from mnv3bench.tables.result import TableResult

LATEST = "latest"


def report_dir(reports_dir: Path, device: str) -> Path:
    return Path(reports_dir) / device


def session_of(result: TableResult) -> int | None:
    """The one session the table reports (extra["session_id"], else its only session); None: pooled."""
    if result.extra.get("session_id") is not None:
        return int(result.extra["session_id"])
    if result.extra.get("pooled_sessions") is None and len(result.sessions) == 1:
        return result.sessions[0]
    return None


def session_folder(result: TableResult) -> str:
    """"session-12"; "sessions-1-2" for pooled sessions; "no-session" for trials outside any."""
    session = session_of(result)
    if session is not None:
        return f"session-{session}"
    return "sessions-" + "-".join(map(str, result.sessions)) if result.sessions else "no-session"


def write_reports(result: TableResult, reports_dir: Path | str) -> list[Path]:
    """Markdown, CSV (rows and agreement), JSON and PNG plots under <reports_dir>/<device>/session-<N>/,
    then <device>/latest/ pointed at them when N is the newest session rendered there."""
    from mnv3bench.tables.export.png import (  # matplotlib only when writing files
        plot_change,
        plot_latency,
    )

    result.extra.setdefault("generated_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    if session_of(result) is not None:  # what latest/ compares sessions by
        result.extra.setdefault("session_id", session_of(result))
    folder = report_dir(Path(reports_dir), result.device) / session_folder(result)
    stem = f"table-{result.name}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        paths = {
            folder / f"{stem}.md": to_markdown(result),
            folder / f"{stem}.csv": to_csv(result),
            folder / f"{stem}-agreement.csv": agreement_to_csv(result),
            folder / f"{stem}.json": to_json(result) + "\n",
        }
        for path, text in paths.items():
            path.write_text(text, encoding="utf-8")
        written = list(paths)
        written.append(plot_latency(result, folder / f"{stem}-latency.png"))
        written.append(plot_change(result, folder / f"{stem}-change.png"))
        session = session_of(result)
        if session is not None:
            point_latest(written, folder.parent / LATEST, session, f"{stem}.json")
    except OSError as err:
        raise MnvError(
            f"cannot write the reports to {folder}: {err.strerror or err}.",
            f"Pass a writable folder with --reports-dir DIR, or make {folder} writable (it must be a folder, "
            "not a file).",
        ) from err
    return written


def point_latest(written: list[Path], latest: Path, session: int, json_name: str) -> None:
    """latest/<file> -> ../<folder>/<file> for each file `written` (all in one folder beside
    `latest`), unless latest/<json_name> already shows a newer session (its JSON's session_id)."""
    if (_latest_session(latest / json_name) or 0) > session:
        return
    latest.mkdir(exist_ok=True)
    for path in written:
        link, staged = latest / path.name, latest / f".{path.name}.new"
        staged.unlink(missing_ok=True)
        try:
            staged.symlink_to(Path("..") / path.parent.name / path.name)
        except OSError:  # no symlinks here (some Windows and network file systems): a copy
            shutil.copyfile(path, staged)
        os.replace(staged, link)


def _latest_session(path: Path) -> int | None:
    """The session of the table latest/ shows now (its JSON's session_id), if readable."""
    try:
        found = json.loads(path.read_text(encoding="utf-8")).get("session_id")
    except (OSError, ValueError, AttributeError):
        return None
    return int(found) if isinstance(found, int) else None
