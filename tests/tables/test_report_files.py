"""Report files are kept per session; latest/ shows the newest session's (tables/export/files.py)."""

from __future__ import annotations

import json
from pathlib import Path

from mnv3bench.tables.compute import compute_table
from mnv3bench.tables.definitions import get_table
from mnv3bench.tables.export.files import write_reports
from tests.tables.helpers import TABLE5_MS, synthetic_trials


def _table(session: int, scale: float = 1.0, **extra):
    result = compute_table(get_table("5"), synthetic_trials({k: scale * v for k, v in TABLE5_MS.items()},
                                                            session_id=session), device="emulator")
    result.extra.update(extra)
    return result


def _latest_median(reports: Path) -> float:
    doc = json.loads((reports / "emulator" / "latest" / "table-5.json").read_text())
    return doc["rows"][0]["latency_ms_opt"]["median"]


def test_each_session_keeps_its_files_and_latest_shows_the_newest(tmp_path):
    write_reports(_table(2, scale=2.0), tmp_path)
    write_reports(_table(1), tmp_path)  # an older session rendered later (`report --session 1`)
    device = tmp_path / "emulator"
    assert {p.name for p in device.iterdir()} == {"session-1", "session-2", "latest"}
    assert (device / "session-1" / "table-5.md").is_file() and (device / "session-2" / "table-5.md").is_file()
    assert _latest_median(tmp_path) == 40.0  # still session 2's
    link = device / "latest" / "table-5.md"
    assert link.is_symlink() and str(link.readlink()) == "../session-2/table-5.md"
    assert {p.name for p in (device / "latest").iterdir()} == {p.name for p in (device / "session-2").iterdir()}

    write_reports(_table(3, scale=3.0), tmp_path)
    assert _latest_median(tmp_path) == 60.0


def test_pooled_sessions_get_their_own_folder_and_leave_latest_alone(tmp_path):
    write_reports(_table(1), tmp_path)
    pooled = compute_table(get_table("5"), synthetic_trials(TABLE5_MS, session_id=1).assign(
        session_id=[1, 2] * 22 + [1]), device="emulator")
    pooled.extra["pooled_sessions"] = [1, 2]
    written = write_reports(pooled, tmp_path)
    assert {p.parent.name for p in written} == {"sessions-1-2"}
    assert (tmp_path / "emulator" / "latest" / "table-5.md").readlink().parent.name == "session-1"


def test_latest_is_a_copy_where_symlinks_fail(tmp_path, monkeypatch):
    def refuse(self, target):
        raise OSError("symlinks are not supported here")

    monkeypatch.setattr(Path, "symlink_to", refuse)
    write_reports(_table(1), tmp_path)
    latest = tmp_path / "emulator" / "latest" / "table-5.md"
    assert not latest.is_symlink() and latest.read_text() == (tmp_path / "emulator" / "session-1" / "table-5.md").read_text()
    write_reports(_table(2, scale=2.0), tmp_path)
    assert _latest_median(tmp_path) == 40.0
    assert not any(p.name.endswith(".new") for p in latest.parent.iterdir())
