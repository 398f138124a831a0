"""Beat's lock without Redis: a PostgreSQL session advisory lock on the real database."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine, text

from adapters.db.advisory_lock import AdvisoryLock


def test_one_holder_at_a_time_and_the_next_takes_over_on_release(database_url: str) -> None:
    name = f"test:{uuid.uuid4().hex}"
    first, second = AdvisoryLock(database_url, name), AdvisoryLock(database_url, name)
    try:
        assert first.try_acquire()
        assert first.try_acquire()  # already ours
        assert not second.try_acquire()
        first.release()
        assert second.try_acquire() and second.held()
    finally:
        first.release()
        second.release()


def test_a_holder_whose_session_dies_knows_it_lost_the_lock(
    database_url: str, engine: Engine
) -> None:
    name = f"test:{uuid.uuid4().hex}"
    app_name = f"lock-holder-{uuid.uuid4().hex[:8]}"
    holder = AdvisoryLock(database_url, name, application_name=app_name)
    standby = AdvisoryLock(database_url, name)
    try:
        assert holder.try_acquire()
        with engine.connect() as conn:  # what a PostgreSQL restart does to the session
            killed = conn.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = :a"
                ),
                {"a": app_name},
            ).all()
            conn.commit()
        assert killed
        assert not holder.held()
        assert standby.try_acquire()
    finally:
        holder.release()
        standby.release()
