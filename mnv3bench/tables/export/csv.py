"""The table as CSV: machine-readable columns (tables/result.py `row_records`), and the agreement."""

from __future__ import annotations

from mnv3bench.tables.result import TableResult


def to_csv(result: TableResult) -> str:
    """The measured and paper numbers, one row per table row."""
    return result.rows.to_csv(index=False)


def agreement_to_csv(result: TableResult) -> str:
    """One row per comparison with the paper."""
    return result.agreement.to_csv(index=False)
