"""Read a config's data source into a DataFrame: a CSV or Parquet file, bundled data,
or a SQL query through SQLAlchemy."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from mlops.errors import InvalidInput, MissingDependency
from mlops.pipelines.training._config_sections import DataConfig, SqlSource

__all__ = ["BUNDLED", "bundled_data_path", "read_source", "sample_config_path"]

_HERE = Path(__file__).resolve().parent
_DATA = _HERE / "data"
#: The datasets shipped with mlops, by the name a config's ``data.bundled`` takes.
BUNDLED = {"churn": "churn.csv"}
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
_FORMATS = {".csv": "csv", ".tsv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet"}


def bundled_data_path(name: str = "churn") -> Path:
    """The file of a dataset shipped with mlops (``churn``: 2,000 synthetic customers)."""
    if name not in BUNDLED:
        raise InvalidInput(f"there is no bundled dataset {name!r}; there is {', '.join(BUNDLED)}")
    return _DATA / BUNDLED[name]


def sample_config_path() -> Path:
    """The sample config: the bundled churn data through every stage."""
    return _HERE / "samples" / "churn.yaml"


def read_source(config: DataConfig) -> tuple[Any, str, str]:
    """The data as a DataFrame, a description of where it came from, and a dataset name."""
    if config.sql is not None:
        frame, where = _read_sql(config.sql)
        return frame, where, config.name or "sql-query"
    path = bundled_data_path(config.bundled) if config.bundled else Path(str(config.path))
    name = config.name or (config.bundled or _stem(path))
    return _read_file(path, config.format), str(path), name


def _stem(path: Path) -> str:
    stem = path.name.split(".")[0]
    return stem or "data"


def _read_file(path: Path, format: str | None) -> Any:
    import pandas as pd  # type: ignore[import-untyped,unused-ignore]

    if not path.is_file():
        raise InvalidInput(
            f"the data file {path} does not exist (data.path; a relative path resolves "
            "against the config file's folder)"
        )
    kind = format or _format_of(path)
    try:
        if kind == "parquet":
            try:
                return pd.read_parquet(path)
            except ImportError as error:
                raise MissingDependency.for_extra("pyarrow", "train", "Reading Parquet") from error
        separator = "\t" if path.suffix == ".tsv" else ","
        return pd.read_csv(path, sep=separator)
    except (ValueError, OSError, UnicodeDecodeError) as error:  # ParserError is a ValueError
        raise InvalidInput(f"cannot read {path} as {kind}: {_first_line(error)}") from None


def _format_of(path: Path) -> str:
    suffixes = [s for s in path.suffixes if s not in {".gz", ".bz2", ".zip", ".xz", ".zst"}]
    kind = _FORMATS.get(suffixes[-1].lower() if suffixes else "")
    if kind is None:
        raise InvalidInput(
            f"cannot tell the format of {path} from its name; set data.format to csv or parquet"
        )
    return kind


def _read_sql(source: SqlSource) -> tuple[Any, str]:
    import pandas as pd
    import sqlalchemy as sa

    url = _expand(source.url)
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError:
        raise InvalidInput(
            f"data.sql.url {source.url!r} is not a database URL; write one such as "
            "postgresql+psycopg://user@host/db or sqlite:///data.db"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    try:
        engine = sa.create_engine(parsed, poolclass=sa.pool.NullPool)
    except (sa.exc.NoSuchModuleError, ImportError) as error:
        raise InvalidInput(
            f"cannot open {shown}: {_first_line(error)}; install the database driver"
        ) from None
    try:
        with engine.connect() as connection:
            frame = pd.read_sql_query(sa.text(source.query), connection)
    except (sa.exc.SQLAlchemyError, pd.errors.DatabaseError) as error:
        # pandas wraps the driver's error; the driver's own message says what is wrong
        cause: BaseException = error.__cause__ or error
        cause = getattr(cause, "orig", None) or cause
        raise InvalidInput(
            f"the data query failed on {shown}: {_first_line(cause)}; check data.sql.query "
            "and data.sql.url"
        ) from None
    finally:
        engine.dispose()
    return frame, f"{shown} ({' '.join(source.query.split())[:200]})"


def _expand(url: str) -> str:
    """``${NAME}`` replaced by the environment variable, so secrets stay out of configs."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        found = os.environ.get(name)
        if found is None:
            raise InvalidInput(f"data.sql.url uses ${{{name}}}, but {name} is not set")
        return found

    return _VARIABLE.sub(value, url)


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__
