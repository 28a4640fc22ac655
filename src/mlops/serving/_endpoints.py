"""Endpoints and their routing tables in the metadata store."""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops.errors import NotFound
from mlops.registry._rows import check_model_name
from mlops.serving._routes import RouteTable
from mlops.store import Store
from mlops.store._schema import serving_endpoints
from mlops.tracking._validation import now_ms

__all__ = ["Endpoint", "EndpointStore"]


@dataclass(frozen=True, slots=True)
class Endpoint:
    """A stable name whose traffic goes to registry versions by its routing table."""

    name: str
    model: str
    routes: RouteTable
    revision: int
    updated_at: int


class EndpointStore:
    """Reads and writes endpoints; every write bumps the endpoint's revision."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def put(self, name: str, table: RouteTable, connection: Connection | None = None) -> Endpoint:
        """Create the endpoint or replace its routing table (in ``connection``'s transaction)."""
        check_model_name(name)
        if connection is None:
            with self._store.write() as own:
                return self.put(name, table, own)
        now = now_ms()
        row = connection.execute(
            sa.select(serving_endpoints.c.id, serving_endpoints.c.revision)
            .where(serving_endpoints.c.name == name)
            .with_for_update()
        ).first()
        if row is None:
            connection.execute(
                serving_endpoints.insert().values(
                    name=name,
                    model_name=table.model,
                    routes=table.to_json(),
                    revision=1,
                    created_at=now,
                    updated_at=now,
                )
            )
        else:
            connection.execute(
                serving_endpoints.update()
                .where(serving_endpoints.c.id == row.id)
                .values(
                    model_name=table.model,
                    routes=table.to_json(),
                    revision=row.revision + 1,
                    updated_at=now,
                )
            )
        return self._load(connection, name)

    def get(self, name: str) -> Endpoint:
        with self._store.read() as connection:
            return self._load(connection, name)

    def list(self) -> list[Endpoint]:
        with self._store.read() as connection:
            rows = connection.execute(
                sa.select(serving_endpoints).order_by(serving_endpoints.c.name)
            ).all()
        return [_endpoint(row) for row in rows]

    def revisions(self) -> dict[str, int]:
        """Each endpoint's revision: what a replica polls to notice changes cheaply."""
        with self._store.read() as connection:
            return dict(
                connection.execute(
                    sa.select(serving_endpoints.c.name, serving_endpoints.c.revision)
                ).all()
            )

    @staticmethod
    def _load(connection: Connection, name: str) -> Endpoint:
        row = connection.execute(
            sa.select(serving_endpoints).where(serving_endpoints.c.name == name)
        ).first()
        if row is None:
            raise NotFound(
                f"endpoint {name!r} does not exist; deploy a model to it with "
                "ml.deployments.deploy(...) (see `mlops deployments list`)"
            )
        return _endpoint(row)


def _endpoint(row: sa.Row[object]) -> Endpoint:
    return Endpoint(
        name=str(row.name),
        model=str(row.model_name),
        routes=RouteTable.from_json(str(row.routes)),
        revision=int(row.revision),
        updated_at=int(row.updated_at),
    )
