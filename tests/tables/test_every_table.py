"""Every table can run: its models build and verify, and the table measures and renders.

Both tests share `table_models` (conftest.py): every variant any table uses, built at full
size by the real Keras builder and TFLite converter, once per session. The first test reads
what the build verified; the second runs `mnv3bench table NAME --device emulator` for each
table in a subprocess against those models, so a table that cannot build or run fails CI.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pytest

from mnv3bench.arch import hswish_sites
from mnv3bench.errors import MnvError
from mnv3bench.model.cache import cached_artifact, sidecar_path
from mnv3bench.model.convert import INT8_MIN_LOGITS_CORRELATION
from mnv3bench.model.ops import verify_ops
from mnv3bench.tables.definitions import TABLES
from mnv3bench.variants import parse_variant
from tests.helpers import QUICK, CliResult, every_table_variant

# The first test to ask for table_models builds ~21 models inside its own time limit.
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]

FULL_SIZE = 224


def test_every_table_variant_builds_and_passes_its_checks(table_models: Path) -> None:
    problems: list[str] = []
    for name in every_table_variant():
        variant = parse_variant(name)
        artifact = cached_artifact(variant, table_models)
        if artifact is None:
            problems.append(f"{name}: no valid model in the cache")
            continue
        meta = json.loads(sidecar_path(artifact.path).read_text())
        check = meta["numeric_check"]
        # A check that did not run proves nothing: it must have run and passed, int8 included.
        if check.get("ok") is not True or any("skip" in key for key in (*check, *meta)):
            problems.append(f"{name}: numeric check not passed: {check}")
        if variant.precision == "int8" and not check["logits_correlation"] >= INT8_MIN_LOGITS_CORRELATION:
            problems.append(f"{name}: int8 logits do not follow the float model's: {check}")
        if (meta["precision"], meta["resolution"]) != (variant.precision, FULL_SIZE):
            problems.append(f"{name}: built as {meta['precision']} at {meta['resolution']} px")
        try:  # the build checked this already; checked again from the stored inventory
            verify_ops(variant, artifact.ops, hswish_sites(variant))
        except MnvError as err:
            problems.append(err.message)
    assert not problems, "\n".join(problems)


def _model_files(models: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in models.glob("*.tflite")}


def _is_latency(value: object) -> bool:
    return isinstance(value, float) and math.isfinite(value) and value > 0


@pytest.mark.parametrize("name", list(TABLES))
def test_table_runs_end_to_end_on_the_emulator(
    name: str, table_models: Path, tmp_path: Path, mnv3: Callable[..., CliResult]
) -> None:
    defn = TABLES[name]
    reports = tmp_path / "reports"
    before = _model_files(table_models)

    done = mnv3("table", name, "--device", "emulator", "--trials", "1", *QUICK, "--db", tmp_path / "results.db",
                "--reports-dir", reports, "--models-dir", table_models, "--json", timeout=600)

    assert done.code == 0, done.err
    assert _model_files(table_models) == before  # every model came from the shared cache
    doc = json.loads(done.out)
    assert doc["missing"] == []
    assert doc["timings"]["trials"] == len(defn.variants())
    rows = {row["row"]: row for row in doc["rows"]}
    assert list(rows) == [row.label for row in defn.rows]
    columns = ("latency_ms_opt", "latency_ms_noopt") if defn.has_noopt else ("latency_ms_opt",)
    for row in rows.values():
        for column in columns:
            cell = row[column]
            assert cell is not None and _is_latency(cell["median"]), (row["row"], column, cell)
    assert (reports / "emulator" / "latest" / f"table-{defn.name}.md").stat().st_size > 0

    # Tables 3 and 4 exist for the headline claim: V3 against its MobileNetV2 baseline.
    against_v2 = [row for row in defn.rows if row.baseline and row.baseline.startswith("V2")]
    assert bool(against_v2) == (name in ("3", "4"))
    agreement = {c["comparison"]: c for c in doc["agreement"]}
    for row in against_v2:
        assert isinstance(rows[row.label]["change_pct_opt"], float), rows[row.label]
        comparison = agreement[f"{row.label} vs {row.baseline}"]
        assert _is_latency(comparison["measured_ratio"]) and _is_latency(comparison["paper_ratio"]), comparison
