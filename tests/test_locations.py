"""Where files go by default: $MNV3BENCH_HOME, the checkout's own folders, else the user's."""

from __future__ import annotations

from pathlib import Path

import pytest

from mnv3bench.locations import checkout_root, default_locations
from tests.helpers import REPO


@pytest.fixture
def outside(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("MNV3BENCH_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return tmp_path


def test_inside_a_checkout_models_and_reports_are_the_projects_own(monkeypatch, outside):
    monkeypatch.chdir(REPO / "tests")
    where = default_locations()
    assert checkout_root() == REPO
    assert (where.models, where.reports, where.db) == (REPO / "models", REPO / "reports", REPO / "reports" / "results.db")


def test_elsewhere_the_users_cache_and_data_folders(outside):
    where = default_locations()
    home = outside / "home"
    assert where.models == home / ".cache" / "mnv3bench" / "models"
    assert where.db == home / ".local" / "share" / "mnv3bench" / "reports" / "results.db"


def test_xdg_folders_are_honoured_and_relative_ones_ignored(monkeypatch, outside):
    monkeypatch.setenv("XDG_CACHE_HOME", str(outside / "c"))
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")  # invalid by the spec
    where = default_locations()
    assert where.models == outside / "c" / "mnv3bench" / "models"
    assert where.reports == outside / "home" / ".local" / "share" / "mnv3bench" / "reports"


def test_mnv3bench_home_wins_even_inside_a_checkout(monkeypatch, outside):
    monkeypatch.setenv("MNV3BENCH_HOME", str(outside / "proj"))
    monkeypatch.chdir(REPO)
    where = default_locations()
    assert (where.models, where.db) == (outside / "proj" / "models", outside / "proj" / "reports" / "results.db")


def test_another_projects_pyproject_is_not_a_checkout(outside):
    (outside / "work" / "pyproject.toml").write_text('[project]\nname = "other"\n')
    assert checkout_root() is None


def test_the_default_database_follows_the_locations(monkeypatch, outside):
    from mnv3bench.results import resolve_db_path

    monkeypatch.setenv("MNV3BENCH_HOME", str(outside / "proj"))
    assert resolve_db_path(None) == outside / "proj" / "reports" / "results.db"
    assert resolve_db_path("x.db") == Path("x.db")


def test_version_names_tensorflow_and_litert_without_importing_them(cli):
    import sys

    loaded = "tensorflow" in sys.modules
    result = cli("--version")
    assert result.code == 0
    lines = result.out.splitlines()
    assert lines[0].startswith("mnv3bench 0.")
    assert lines[1].startswith("TensorFlow 2.") and lines[2].startswith("LiteRT ")
    assert ("tensorflow" in sys.modules) == loaded
