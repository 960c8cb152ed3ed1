"""Fixtures of the database-lab tests: a throwaway PostgreSQL cluster for the session."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dtcourse.db.pgcluster import MISSING_MESSAGE, PgCluster, find_pg_bin, throwaway_cluster


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PgCluster]:
    """One cluster for the whole session; in CI a missing PostgreSQL is a failure."""
    if find_pg_bin() is None:
        if os.environ.get("CI") == "true":
            pytest.fail(MISSING_MESSAGE)
        pytest.skip(MISSING_MESSAGE)
    with throwaway_cluster() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def _db_names() -> Iterator[str]:
    return (f"t{n}" for n in itertools.count(1))


@pytest.fixture
def pg_dsns(pg_cluster: PgCluster, _db_names: Iterator[str]) -> Callable[[int], list[str]]:
    """``pg_dsns(n)``: DSNs of n fresh databases, each a separate participant."""

    def make(count: int) -> list[str]:
        return [pg_cluster.createdb(next(_db_names)) for _ in range(count)]

    return make


@pytest.fixture
def bank_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "bank"
    folder.mkdir()
    return folder
