"""The report files of a table: every format under <reports_dir>/<device>/, named table-<name>.*."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from mnv3bench.errors import MnvError
from mnv3bench.tables.export.csv import agreement_to_csv, to_csv
from mnv3bench.tables.export.json import to_json
from mnv3bench.tables.export.markdown import to_markdown
from mnv3bench.tables.result import TableResult


def report_dir(reports_dir: Path, device: str) -> Path:
    return Path(reports_dir) / device


def write_reports(result: TableResult, reports_dir: Path | str) -> list[Path]:
    """Markdown, CSV (rows and agreement), JSON and PNG plots under <reports_dir>/<device>/."""
    from mnv3bench.tables.export.png import (  # matplotlib only when writing files
        plot_change,
        plot_latency,
    )

    result.extra.setdefault("generated_at", datetime.now(timezone.utc).isoformat(timespec="seconds"))
    folder = report_dir(Path(reports_dir), result.device)
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
    except OSError as err:
        raise MnvError(
            f"cannot write the reports to {folder}: {err.strerror or err}.",
            f"Pass a writable folder with --reports-dir DIR, or make {folder} writable (it must be a folder, "
            "not a file).",
        ) from err
    return written
