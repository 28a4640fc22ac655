"""Statement parameters (token hashes, webhook secrets) never reach error messages or logs."""

from __future__ import annotations

import logging
import traceback
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from mlops.errors import StorageError
from mlops.store import Store, upgrade
from mlops.store._schema import webhooks

SECRET = "whsec-9f8e7d6c5b4a"


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    store = Store(database_url)
    try:
        yield store
    finally:
        store.dispose()


def test_a_failing_statement_does_not_quote_its_parameters(store: Store) -> None:
    with pytest.raises(StorageError) as caught, store.write() as connection:
        connection.execute(
            sa.text("INSERT INTO no_such_table (secret) VALUES (:secret)"), {"secret": SECRET}
        )
    error = caught.value
    assert "failed" in str(error)
    # The whole chain, as a server's traceback log would show it.
    shown = "".join(traceback.format_exception(error))
    assert "no_such_table" in shown
    assert SECRET not in shown


def test_statement_logs_hide_parameters(store: Store, caplog: pytest.LogCaptureFixture) -> None:
    upgrade(store)
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")
    with store.read() as connection:
        connection.execute(sa.select(webhooks.c.id).where(webhooks.c.secret == SECRET)).all()
    assert "FROM webhooks" in caplog.text
    assert SECRET not in caplog.text
