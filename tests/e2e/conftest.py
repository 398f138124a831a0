from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import create_database, drop_database
from tests.e2e.harness import Pipeline
from worker.migrations import upgrade


@pytest.fixture
def pipeline_factory(redis_url: str, tmp_path: Path) -> Iterator[object]:
    made: list[Pipeline] = []
    urls: list[str] = []

    def make(**overrides: str) -> Pipeline:
        url = create_database("einvoice_e2e")
        urls.append(url)
        upgrade(url)
        workdir = tmp_path / f"p{len(made)}"
        workdir.mkdir()
        pipeline = Pipeline(url, redis_url, workdir, **overrides)
        made.append(pipeline)
        return pipeline

    yield make
    for p in made:
        p.stop_all()
    for url in urls:
        drop_database(url)
