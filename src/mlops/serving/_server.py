"""``serve``: run the serving app under uvicorn, with graceful shutdown on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import copy
import functools
import inspect
import logging
import socket
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from mlops.config import Settings
from mlops.errors import InvalidInput
from mlops.serving._app import create_serving_app

__all__ = ["bind_socket", "serve"]


def serve(
    ml: Any,
    host: str = "127.0.0.1",
    port: int = 8000,
    workers: int = 1,
    *,
    log_level: str = "info",
    access_log: bool = False,
    graceful_timeout: float = 30.0,
    keep_alive_timeout: float = 5.0,
    **app_options: Any,
) -> None:
    """Serve every endpoint of ``ml`` over HTTP until SIGTERM or SIGINT.

    On a signal, uvicorn stops accepting connections, lets requests in flight (and their
    shadow calls) finish for up to ``graceful_timeout`` seconds, then the app drains the
    prediction log. An idle keep-alive connection is closed after ``keep_alive_timeout``
    seconds (behind a load balancer, set it above the balancer's idle timeout). With
    ``workers > 1`` each worker process connects anew with
    ``ml.settings`` and shares the listening socket. ``port=0`` takes any free port (the
    log says which). Access logs are off by default: the prediction log already records
    every request. ``app_options`` go to ``create_serving_app``.
    """
    if workers < 1:
        raise InvalidInput(f"workers must be at least 1, got {workers}")
    for label, seconds in (
        ("graceful_timeout", graceful_timeout),
        ("keep_alive_timeout", keep_alive_timeout),
    ):
        if not seconds > 0:
            raise InvalidInput(f"{label} must be a positive number of seconds, got {seconds}")
    log_config = copy.deepcopy(LOGGING_CONFIG)
    log_config["loggers"]["mlops"] = {"handlers": ["default"], "level": log_level.upper()}
    options = {
        "host": host,
        "port": port,
        "log_level": log_level,
        "log_config": log_config,
        "access_log": access_log,
        "timeout_graceful_shutdown": graceful_timeout,
        "timeout_keep_alive": keep_alive_timeout,
        "lifespan": "on",
    }
    sockets = [bind_socket(host, port)]
    bound = sockets[0].getsockname()
    where = (
        f"http://[{bound[0]}]:{bound[1]}" if ":" in bound[0] else f"http://{bound[0]}:{bound[1]}"
    )
    if workers == 1:
        app = create_serving_app(ml, **app_options)
        config = uvicorn.Config(app, **options)  # type: ignore[arg-type]
        logging.getLogger("mlops.serving").info("mlops serving on %s", where)
        uvicorn.Server(config).run(sockets=sockets)
        return
    from uvicorn.supervisors import Multiprocess

    factory = functools.partial(_worker_app, ml.settings, app_options)
    config = uvicorn.Config(factory, factory=True, workers=workers, **options)  # type: ignore[arg-type]
    logging.getLogger("mlops.serving").info("mlops serving on %s (%d workers)", where, workers)
    supervisor: Any = Multiprocess
    if "target" in inspect.signature(Multiprocess).parameters:  # uvicorn before 0.36
        supervisor(config, target=uvicorn.Server(config).run, sockets=sockets).run()
    else:
        supervisor(config, sockets=sockets).run()


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for uvicorn (``port=0``: any free port)."""
    # The protocol is named explicitly: asyncio turns TCP_NODELAY on only for sockets whose
    # ``proto`` is TCP, and without it a response's body waits ~40 ms behind its headers.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise InvalidInput(f"cannot listen on {host}:{port}: {error.strerror}") from error
    sock.set_inheritable(True)
    return sock


def _worker_app(settings: Settings, app_options: dict[str, Any]) -> Any:
    """The app of one worker process, on its own connection (runs in the worker)."""
    import mlops

    return create_serving_app(mlops.connect(settings=settings), **app_options)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m mlops.serving``: serve the store named by the arguments."""
    parser = argparse.ArgumentParser(prog="python -m mlops.serving")
    parser.add_argument("--database-url")
    parser.add_argument("--artifacts")
    parser.add_argument("--home")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--poll-interval", type=float, default=1.0)
    parser.add_argument("--log-flush-interval", type=float, default=0.25)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--access-log", action="store_true")
    args = parser.parse_args(argv)
    import mlops
    from mlops.api import settings_for_host
    from mlops.config import Settings

    given = Settings.from_env().with_overrides(
        database_url=args.database_url,
        artifact_root=args.artifacts,
        home=None if args.home is None else Path(args.home),
    )
    # As `mlops server`: the control-plane API needs a token off loopback (MLOPS_AUTH).
    settings, policy = settings_for_host(given, args.host)
    print(f"mlops serving: control-plane API auth: {policy.value}", file=sys.stderr)
    ml = mlops.connect(settings=settings)
    try:
        serve(
            ml,
            args.host,
            args.port,
            args.workers,
            log_level=args.log_level,
            access_log=args.access_log,
            poll_interval=args.poll_interval,
            log_flush_interval=args.log_flush_interval,
        )
    finally:
        ml.close()
