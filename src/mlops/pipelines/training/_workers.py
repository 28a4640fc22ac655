"""HPO worker processes: fresh Pythons that load the shared study and run their share.

A worker is started with ``python -c`` and gets its work as a pickle on stdin, rather
than through ``multiprocessing``: spawning that way would re-import the caller's
``__main__`` (a script without an ``if __name__ == "__main__"`` guard would run again),
and forking a process with threads (the pipeline's, the database pool's) is unsafe.
"""

from __future__ import annotations

import contextlib
import pickle
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from typing import IO, Any

from mlops.errors import MLOpsError

__all__ = ["WorkerGroup", "die_with_parent"]

_PR_SET_PDEATHSIG = 1

_CODE = (
    "import pickle, sys\n"
    "from mlops.pipelines.training._workers import die_with_parent\n"
    "die_with_parent()\n"
    "path, payload = pickle.load(sys.stdin.buffer)\n"
    "sys.path[:0] = [p for p in path if p not in sys.path]\n"
    "from mlops.pipelines.training._search import worker_main\n"
    "worker_main(payload)\n"
)
_STDERR_TAIL = 2000


def die_with_parent() -> None:
    """Have the kernel kill this process when the one that started it dies (Linux), so a
    killed pipeline leaves no search worker behind; elsewhere the worker stops after
    the trial it is running when it sees its parent gone."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes
    import signal

    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    stderr: IO[bytes]


class WorkerGroup:
    """Worker processes started together; leaving the ``with`` block kills any left."""

    def __init__(self) -> None:
        self._workers: list[_Worker] = []

    def start(self, work: Any) -> None:
        """Start a worker that calls ``worker_main`` with ``work`` (pickled)."""
        payload = pickle.dumps(
            (list(sys.path), pickle.dumps(work, protocol=pickle.HIGHEST_PROTOCOL)),
            protocol=pickle.HIGHEST_PROTOCOL,
        )
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by __exit__
        process = subprocess.Popen(
            [sys.executable, "-c", _CODE],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
        self._workers.append(_Worker(process, stderr))
        assert process.stdin is not None
        with process.stdin:
            process.stdin.write(payload)

    def wait(self) -> None:
        """Wait for every worker; a worker that failed raises with the end of its stderr."""
        failures = []
        for worker in self._workers:
            code = worker.process.wait()
            if code != 0:
                worker.stderr.seek(0)
                tail = worker.stderr.read().decode(errors="replace")[-_STDERR_TAIL:].strip()
                failures.append(f"worker {worker.process.pid} exited with {code}:\n{tail}")
        if failures:
            raise MLOpsError("a hyperparameter search worker failed: " + "\n".join(failures))

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc_info: object) -> None:
        for worker in self._workers:
            if worker.process.poll() is None:
                worker.process.kill()
                worker.process.wait()
            with contextlib.suppress(OSError):
                worker.stderr.close()
