"""The run search language: the parser's AST and error positions, and its SQL run on a real
SQLite file and the real PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlops.errors import FilterSyntaxError, InvalidInput
from mlops.store._schema import experiments, latest_metrics, metadata, params, run_tags, runs
from mlops.tracking._filter import (
    And,
    Comparison,
    Or,
    OrderKey,
    filter_to_sql,
    order_by_to_sql,
    parse_filter,
    parse_order_by,
)

POSTGRES_URL = os.environ.get(
    "MLOPS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)

F1_HIGH = Comparison("metrics", "f1", ">", 0.9)
LR = Comparison("params", "lr", "=", "0.1")
TEAM = Comparison("tags", "team", "=", "ml")
FAILED = Comparison("attributes", "status", "=", "FAILED")


# --- parsing -----------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\t"])
def test_empty_filter_is_none(text: str) -> None:
    assert parse_filter(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metrics.f1 > 0.9", F1_HIGH),
        ("metric.f1>0.9", F1_HIGH),
        ("metrics.f1 == 1", Comparison("metrics", "f1", "=", 1.0)),
        ("metrics.f1 >= -2.5e-3", Comparison("metrics", "f1", ">=", -0.0025)),
        ("metrics.f1 <= .5", Comparison("metrics", "f1", "<=", 0.5)),
        ("metrics.f1 < 3", Comparison("metrics", "f1", "<", 3.0)),
        ("metrics.val.loss != 1", Comparison("metrics", "val.loss", "!=", 1.0)),
        ("metrics.`val loss` <> 1", Comparison("metrics", "val loss", "!=", 1.0)),
        ('metrics."a-b/c" = 1', Comparison("metrics", "a-b/c", "=", 1.0)),
        ("metrics.train-loss/epoch = 1", Comparison("metrics", "train-loss/epoch", "=", 1.0)),
        ("params.lr = '0.1'", LR),
        ('PARAM.lr = "0.1"', LR),
        ("tags.team = 'ml'", TEAM),
        ("tag.note = 'it''s'", Comparison("tags", "note", "=", "it's")),
        (r"tags.note = 'it\'s'", Comparison("tags", "note", "=", "it's")),
        (r"tags.note = 'C:\\data\x'", Comparison("tags", "note", "=", r"C:\data\x")),
        (r"tags.note like '50\%%'", Comparison("tags", "note", "like", r"50\%%")),
        ("params.opt ILIKE 'Adam%'", Comparison("params", "opt", "ilike", "Adam%")),
        ("params.opt in ('a', \"b\")", Comparison("params", "opt", "in", ("a", "b"))),
        ("params.opt NOT  IN ('a')", Comparison("params", "opt", "not in", ("a",))),
        ("metrics.f1 in (1, 2.5)", Comparison("metrics", "f1", "in", (1.0, 2.5))),
        ("metrics.f1 is null", Comparison("metrics", "f1", "is null", None)),
        ("tags.team IS NOT NULL", Comparison("tags", "team", "is not null", None)),
        ("attributes.status = 'failed'", FAILED),
        (
            "run.status in ('Failed', 'KILLED')",
            Comparison("attributes", "status", "in", ("FAILED", "KILLED")),
        ),
        ("attributes.status like 'F%'", Comparison("attributes", "status", "like", "F%")),
        ("attr.run_name = 'a'", Comparison("attributes", "name", "=", "a")),
        ("attribute.id = 'abc'", Comparison("attributes", "run_id", "=", "abc")),
        (
            "attributes.start_time >= 1.7e12",
            Comparison("attributes", "start_time", ">=", 1_700_000_000_000),
        ),
        ("attributes.end_time is null", Comparison("attributes", "end_time", "is null", None)),
        ("attributes.user != 'ann'", Comparison("attributes", "user", "!=", "ann")),
        ("attributes.parent_run_id = 'r1'", Comparison("attributes", "parent_run_id", "=", "r1")),
        # and binds tighter than or; parentheses override; same operators flatten.
        (
            "metrics.f1 > 0.9 and params.lr = '0.1' or tags.team = 'ml'",
            Or((And((F1_HIGH, LR)), TEAM)),
        ),
        (
            "metrics.f1 > 0.9 and (params.lr = '0.1' or tags.team = 'ml')",
            And((F1_HIGH, Or((LR, TEAM)))),
        ),
        (
            "(metrics.f1 > 0.9 AND params.lr = '0.1') And tags.team = 'ml'",
            And((F1_HIGH, LR, TEAM)),
        ),
        ("((metrics.f1 > 0.9))", F1_HIGH),
        (
            "tags.team = 'ml' or attributes.status = 'FAILED' OR params.lr = '0.1'",
            Or((TEAM, FAILED, LR)),
        ),
    ],
)
def test_parse_filter(text: str, expected: object) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("metrics.f1", 10, "expected a comparison operator such as '=' or '>' after 'metrics.f1'"),
        ("metrics.f1 0.9", 11, "expected a comparison operator"),
        ("metrics.f1 ! 1", 11, "expected a comparison operator"),
        ("metrics.f1 > 'x'", 13, "metrics compare with numbers"),
        ("metrics.f1 > '0.5'", 13, "write 0.5 instead of '0.5'"),
        ("params.lr = 0.1", 12, "params compare as strings; write params.lr = '0.1'"),
        ("tags.seed in ('a', 7)", 19, "tags compare as strings"),
        ("params.lr = 'abc", 12, "unterminated string"),
        ("params.lr = 'it''s", 12, "unterminated string"),
        ("metrics.`val loss = 1", 8, "unterminated string"),
        ("metrics.f1 > 1 and", 15, "unexpected 'and' at the end"),
        ("metrics.f1 > 1 OR  ", 15, "unexpected 'OR' at the end"),
        ("(metrics.f1 > 1", 15, "expected ')'"),
        ("(metrics.f1 > 1 tags.a = 'b')", 16, "expected ')'"),
        ("metrics.f1 > 1)", 14, "unexpected ')'"),
        ("metrics.f1 > 1 tags.a = 'b'", 15, "expected 'and', 'or' or the end"),
        ("()", 1, "expected an identifier"),
        ("and metrics.f1 > 1", 0, "expected an identifier"),
        ("metrics.f1 > 1 and or tags.a = 'b'", 19, "expected an identifier"),
        ("foo.bar = 1", 0, "unknown entity 'foo'"),
        ("status = 'FAILED'", 0, "write attributes.status"),
        ("f1 > 1", 0, "expected an identifier"),
        ("metrics. = 1", 8, "expected a key after 'metrics.'"),
        ("metrics.`` = 1", 8, "the key is empty"),
        ("attributes.colour = 'x'", 11, "unknown attribute 'colour'; use one of status, name"),
        ("attributes.status = 'DONE'", 20, "unknown status 'DONE'; use one of RUNNING"),
        ("attributes.status in ('FAILED', 'nope')", 32, "unknown status"),
        ("metrics.f1 like '0.%'", 11, "'like' applies to params, tags"),
        ("attributes.user ilike 'a%'", 16, "'ilike' applies to params"),
        ("params.lr > '0.1'", 10, "compares as a string, so '>' is not supported"),
        ("attributes.name <= 'b'", 16, "compares as a string"),
        ("attributes.start_time > 'yesterday'", 24, "compares with integers"),
        ("attributes.end_time = 1.5", 22, "compares with integers"),
        ("attributes.run_id = 12", 20, "attributes.run_id compares as strings"),
        ("metrics.f1 in ()", 15, "expected a value"),
        ("metrics.f1 in (1, 2", 19, "expected ',' or ')'"),
        ("metrics.f1 in (1 2)", 17, "expected ',' or ')'"),
        ("metrics.f1 in 1", 14, "expected '('"),
        ("metrics.f1 is 1", 14, "expected 'null' or 'not null' after 'is'"),
        ("metrics.f1 is not 1", 18, "expected 'null'"),
        ("metrics.f1 not 1", 15, "expected 'in' after 'not'"),
        ("metrics.f1 >", 12, "expected a value"),
        ("metrics.f1 > 1abc", 13, "expected a value"),
        ("tags.team = ml", 12, "quote strings"),
        ("tags.team = null", 12, "is null"),
        ("tags.x like 'a\\\\'", 12, "cannot end with the escape character"),
    ],
)
def test_parse_filter_errors(text: str, position: int, message: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_filter(text)
    assert caught.value.position == position
    assert message in str(caught.value)
    assert caught.value.text == text


def test_filter_syntax_error_is_invalid_input() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_filter("metrics.f1 >")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    ("clauses", "expected"),
    [
        (None, []),
        ([], []),
        ("", []),
        ("metrics.f1 DESC", [OrderKey("metrics", "f1", True)]),
        ("params.lr asc", [OrderKey("params", "lr", False)]),
        ("attributes.start_time", [OrderKey("attributes", "start_time", False)]),
        ("name desc", [OrderKey("attributes", "name", True)]),
        ("run_name", [OrderKey("attributes", "name", False)]),
        ("tags.`my tag` desc", [OrderKey("tags", "my tag", True)]),
        (
            ["metrics.val.loss", "start_time desc, run.id"],
            [
                OrderKey("metrics", "val.loss", False),
                OrderKey("attributes", "start_time", True),
                OrderKey("attributes", "run_id", False),
            ],
        ),
    ],
)
def test_parse_order_by(clauses: list[str] | str | None, expected: list[OrderKey]) -> None:
    assert parse_order_by(clauses) == expected


@pytest.mark.parametrize(
    ("clause", "position", "message"),
    [
        ("metrics.f1 up", 11, "expected 'asc', 'desc' or ','"),
        ("metrics.f1 desc desc", 16, "expected 'asc', 'desc' or ','"),
        ("f1 desc", 0, "expected an identifier"),
        ("attributes.colour", 11, "unknown attribute 'colour'"),
        ("metrics.f1,", 11, "unexpected ',' at the end"),
        ("metrics.f1, ,", 12, "expected an identifier"),
        ("foo.bar", 0, "unknown entity"),
    ],
)
def test_parse_order_by_errors(clause: str, position: int, message: str) -> None:
    with pytest.raises(FilterSyntaxError) as caught:
        parse_order_by([clause])
    assert caught.value.position == position
    assert message in str(caught.value)


# --- SQL on real databases -----------------------------------------------------------------

NAN = None  # how the store keeps a NaN metric value

RUNS = [
    # id, name, status, start_time, end_time, user, parent_run_id
    ("r1", "alpha", "FINISHED", 1000, 2000, "ann", None),
    ("r2", "beta", "FAILED", 2000, 3000, "bob", "r1"),
    ("r3", "Gamma", "RUNNING", 3000, None, None, None),
    ("r4", "delta", "KILLED", 4000, 4500, "ann", "r1"),
    ("r5", "epsilon", "FINISHED", 5000, 6000, "cy", None),
]
METRICS: dict[str, dict[str, float | None]] = {
    "f1": {"r1": 0.9, "r2": 0.5, "r3": NAN, "r4": 0.7},
    "loss": {"r1": 0.1, "r2": 0.3, "r5": 0.2},
    "val loss": {"r2": 1.5},
    "val.acc": {"r1": 0.8},
}
PARAMS = {
    "lr": {"r1": "0.1", "r2": "0.01", "r3": "0.1", "r5": "1e-3"},
    "optimizer": {"r1": "adam", "r2": "Adam", "r3": "sgd", "r4": "adamw"},
}
TAGS = {
    "team": {"r1": "ml", "r2": "ml-ops", "r4": "data"},
    "note": {"r3": "500 off", "r5": "50%_off"},
}


def _seed(engine: Engine) -> None:
    metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(experiments),
            [{"id": 1, "name": "e", "artifact_location": "/a", "created_at": 0, "updated_at": 0}],
        )
        columns = ("id", "name", "status", "start_time", "end_time", "user", "parent_run_id")
        rows = [{**dict(zip(columns, run, strict=True)), "experiment_id": 1} for run in RUNS]
        # Parents first: the foreign key on parent_run_id is checked per row.
        for row in sorted(rows, key=lambda row: row["parent_run_id"] is not None):
            connection.execute(sa.insert(runs), [{**row, "artifact_uri": f"/a/{row['id']}"}])
        tables: list[tuple[sa.Table, dict[str, dict[str, Any]]]] = [
            (latest_metrics, METRICS),
            (params, PARAMS),
            (run_tags, TAGS),
        ]
        for table, data in tables:
            extra = {"step": 0, "timestamp": 0} if table is latest_metrics else {}
            connection.execute(
                sa.insert(table),
                [
                    {"run_id": run_id, "key": key, "value": value, **extra}
                    for key, values in data.items()
                    for run_id, value in values.items()
                ],
            )


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def engine(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """The seeded runs on a SQLite file, or in a fresh schema of the real PostgreSQL."""
    if request.param == "sqlite":
        path: Path = tmp_path_factory.mktemp("filter") / "mlops.db"
        sqlite_engine = sa.create_engine(f"sqlite:///{path}")
        _seed(sqlite_engine)
        yield sqlite_engine
        sqlite_engine.dispose()
        return
    schema = f"filter_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(POSTGRES_URL, connect_args={"connect_timeout": 5})
    try:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    except sa.exc.OperationalError as error:
        admin.dispose()
        message = f"PostgreSQL at {POSTGRES_URL} is unreachable: {error}"
        if os.environ.get("MLOPS_TEST_ALLOW_NO_POSTGRES") == "1":
            pytest.skip(message)
        pytest.fail(message + " (set MLOPS_TEST_ALLOW_NO_POSTGRES=1 to skip)")
    pg_engine = sa.create_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})
    try:
        _seed(pg_engine)
        yield pg_engine
    finally:
        pg_engine.dispose()
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


def search(engine: Engine, text: str, order_by: list[str] | str | None = None) -> list[str]:
    query = sa.select(runs.c.id)
    expr = parse_filter(text)
    if expr is not None:
        query = query.where(filter_to_sql(expr))
    query = query.order_by(*order_by_to_sql(parse_order_by(order_by)))
    with engine.connect() as connection:
        return list(connection.scalars(query))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", {"r1", "r2", "r3", "r4", "r5"}),
        # Metrics: a NaN (r3) or a missing key (r5) never matches a comparison.
        ("metrics.f1 > 0.6", {"r1", "r4"}),
        ("metrics.f1 >= 0.7", {"r1", "r4"}),
        ("metrics.f1 < 0.8", {"r2", "r4"}),
        ("metrics.f1 <= 0.5", {"r2"}),
        ("metrics.f1 = 0.9", {"r1"}),
        ("metrics.f1 != 0.9", {"r2", "r4"}),
        ("metrics.f1 < 100 or metrics.f1 > -100", {"r1", "r2", "r4"}),
        ("metrics.f1 in (0.5, 0.7)", {"r2", "r4"}),
        ("metrics.f1 not in (0.5)", {"r1", "r4"}),
        ("metrics.f1 is null", {"r5"}),
        ("metrics.f1 is not null", {"r1", "r2", "r3", "r4"}),
        ("metrics.loss <= 1e-1", {"r1"}),
        ("metric.loss < 0.25", {"r1", "r5"}),
        ("metrics.loss > -1", {"r1", "r2", "r5"}),
        ("metrics.`val loss` > 1", {"r2"}),
        ("metrics.val.acc > 0.5", {"r1"}),
        ("metrics.missing > 0 or metrics.missing is not null", set()),
        # Params and tags compare as strings.
        ("params.lr = '0.1'", {"r1", "r3"}),
        ("params.lr != '0.1'", {"r2", "r5"}),
        ("params.lr is null", {"r4"}),
        ("param.lr is not null", {"r1", "r2", "r3", "r5"}),
        ("params.optimizer like 'adam%'", {"r1", "r4"}),
        ("params.optimizer like 'ADAM'", set()),
        ("params.optimizer ilike 'adam%'", {"r1", "r2", "r4"}),
        ("params.optimizer ilike 'ADAM'", {"r1", "r2"}),
        ("params.optimizer in ('sgd', 'adamw')", {"r3", "r4"}),
        ("params.optimizer not in ('sgd')", {"r1", "r2", "r4"}),
        ("tags.team = 'ml'", {"r1"}),
        ("tags.team like 'ml%'", {"r1", "r2"}),
        ("tags.team like 'm_'", {"r1"}),
        ("tags.note like '50%'", {"r3", "r5"}),
        (r"tags.note like '50\%%'", {"r5"}),
        (r"tags.note ilike '%\_OFF'", {"r5"}),
        ("tags.note like '%*%'", set()),
        ("tags.team is null", {"r3", "r5"}),
        # Attributes compare columns.
        ("attributes.status = 'finished'", {"r1", "r5"}),
        ("attributes.status != 'FINISHED'", {"r2", "r3", "r4"}),
        ("attributes.status in ('failed', 'KILLED')", {"r2", "r4"}),
        ("attributes.status like 'F%'", {"r1", "r2", "r5"}),
        ("attributes.name = 'alpha'", {"r1"}),
        ("attributes.name like 'G%'", {"r3"}),
        ("attributes.name like 'g%'", set()),
        ("run.name ilike 'gamma'", {"r3"}),
        ("attributes.run_id = 'r2'", {"r2"}),
        ("attr.id in ('r1', 'r3')", {"r1", "r3"}),
        ("attributes.start_time >= 3000", {"r3", "r4", "r5"}),
        ("attributes.start_time < 2500 and attributes.end_time > 1500", {"r1", "r2"}),
        ("attributes.end_time is null", {"r3"}),
        ("attributes.user = 'ann'", {"r1", "r4"}),
        ("attributes.user != 'ann'", {"r2", "r5"}),
        ("attributes.parent_run_id = 'r1'", {"r2", "r4"}),
        ("attributes.parent_run_id is null", {"r1", "r3", "r5"}),
        # Precedence: and before or; parentheses group.
        ("params.lr = '0.1' or tags.team = 'data' and metrics.f1 > 0.8", {"r1", "r3"}),
        ("(params.lr = '0.1' or tags.team = 'data') and metrics.f1 > 0.6", {"r1", "r4"}),
        (
            "metrics.f1 > 0.6 AND params.optimizer = 'adam' OR attributes.status = 'FAILED'",
            {"r1", "r2"},
        ),
        ("METRICS.f1 > 0.6 AnD (tags.team IS NOT NULL or params.lr is null)", {"r1", "r4"}),
    ],
)
def test_filter_selects_runs(engine: Engine, text: str, expected: set[str]) -> None:
    assert set(search(engine, text)) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        # No keys: newest first.
        (None, ["r5", "r4", "r3", "r2", "r1"]),
        # NaN (r3) and missing (r5) go last both ways, newest first among them.
        ("metrics.f1 desc", ["r1", "r4", "r2", "r5", "r3"]),
        ("metrics.f1", ["r2", "r4", "r1", "r5", "r3"]),
        ("params.lr", ["r2", "r3", "r1", "r5", "r4"]),
        ("params.lr desc", ["r5", "r3", "r1", "r2", "r4"]),
        ("start_time", ["r1", "r2", "r3", "r4", "r5"]),
        ("attributes.end_time desc", ["r5", "r4", "r2", "r1", "r3"]),
        ("attributes.end_time asc", ["r1", "r2", "r4", "r5", "r3"]),
        (["tags.team desc", "metrics.loss"], ["r2", "r1", "r4", "r5", "r3"]),
        ("attributes.user, run_id desc", ["r4", "r1", "r2", "r5", "r3"]),
    ],
)
def test_order_by(engine: Engine, order_by: list[str] | str | None, expected: list[str]) -> None:
    assert search(engine, "", order_by) == expected


def test_filter_and_order_together(engine: Engine) -> None:
    assert search(engine, "metrics.f1 is not null", "metrics.f1 desc") == ["r1", "r4", "r2", "r3"]


def test_tiebreak_skips_start_time_when_sorted_on_it() -> None:
    rendered = [str(clause) for clause in order_by_to_sql(parse_order_by("start_time desc"))]
    assert rendered == ["runs.start_time DESC NULLS LAST", "runs.id ASC"]
    assert len(order_by_to_sql(parse_order_by("metrics.f1"))) == 3


def test_values_are_bound_parameters() -> None:
    expr = parse_filter("tags.x = 'a''; drop table runs; --' or metrics.f1 > 1")
    assert expr is not None
    compiled = sa.select(runs.c.id).where(filter_to_sql(expr)).compile()
    assert "drop table" not in str(compiled)
    assert "a'; drop table runs; --" in compiled.params.values()


def test_filter_and_order_on_an_alias(engine: Engine) -> None:
    aliased = runs.alias("r")
    expr = parse_filter("metrics.loss > 0 and attributes.user != 'bob'")
    assert expr is not None
    query = (
        sa.select(aliased.c.id)
        .where(filter_to_sql(expr, aliased))
        .order_by(*order_by_to_sql(parse_order_by("metrics.loss desc"), aliased))
    )
    with engine.connect() as connection:
        assert list(connection.scalars(query)) == ["r5", "r1"]
