"""Start the workbench as a real Streamlit server on a free local port, and stop it.

Used by the browser tests' fixtures and by take_screenshots.py. Imports no Streamlit: the
server is a separate process, exactly as `make run` starts it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from core import paths

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_SECONDS = 120.0
STOP_TIMEOUT_SECONDS = 15.0


class ServerError(RuntimeError):
    """The app did not start (its log tail says why)."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class AppServer:
    """`streamlit run Home.py` with its own cache and checkpoints folders.

    `data` is passed as `-- --data PATH`; without it no dataset is configured (BTW_DATA_DIR is
    removed from the server's environment), so the app falls back to its synthetic demo.
    """

    def __init__(
        self,
        *,
        cache_dir: Path,
        checkpoints_dir: Path,
        log_path: Path,
        data: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.cache_dir = cache_dir
        self.checkpoints_dir = checkpoints_dir
        self.log_path = log_path
        self.data = data
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    @contextlib.contextmanager
    def core_paths(self) -> Iterator[None]:
        """Core calls in this process see the server's cache and checkpoints."""
        with pytest.MonkeyPatch.context() as environment:
            environment.setenv(paths.CACHE_DIR_ENV, str(self.cache_dir))
            environment.setenv(paths.CHECKPOINTS_ENV, str(self.checkpoints_dir))
            yield

    def run_labels(self) -> dict[str, str]:
        """This server's runs as its pages name them now (Compare's and Inside's labels)."""
        from core.evaluation.run_selection import run_labels
        from core.runs.registry import list_runs

        return run_labels(list_runs(self.checkpoints_dir))

    def command(self) -> list[str]:
        command = [
            sys.executable, "-m", "streamlit", "run", "Home.py",
            "--server.headless=true", f"--server.port={self.port}",
            "--server.address=127.0.0.1", "--browser.gatherUsageStats=false",
            # No file watcher: it only costs CPU on a 2-core machine, and tests edit no code.
            "--server.fileWatcherType=none",
        ]  # fmt: skip
        if self.data is not None:
            command += ["--", "--data", str(self.data)]
        return command

    def environment(self) -> dict[str, str]:
        environment = {
            **os.environ,
            paths.CACHE_DIR_ENV: str(self.cache_dir),
            paths.CHECKPOINTS_ENV: str(self.checkpoints_dir),
        }
        environment.pop(paths.DATA_DIR_ENV, None)
        return environment

    def start(self) -> AppServer:
        """Launch the server and return once /_stcore/health answers 'ok'."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("wb") as log:
            self._process = subprocess.Popen(
                self.command(),
                cwd=PROJECT_ROOT,
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends its children too
            )
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                code = self._process.returncode
                raise ServerError(f"the app exited with {code}:\n{self.log_tail()}")
            if self.healthy():
                return self
            time.sleep(0.2)
        self.stop()
        raise ServerError(
            f"the app did not answer within {START_TIMEOUT_SECONDS:.0f} s:\n{self.log_tail()}"
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as response:
                return response.status == 200 and response.read().strip() == b"ok"
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Terminate the server; kill it if it has not exited after a while."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def kill(self) -> None:
        """SIGKILL the server's whole process group: no handler, no cleanup (a crash, an OOM)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=STOP_TIMEOUT_SECONDS)

    def log_tail(self, characters: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-characters:]
        except OSError:
            return "(no log)"

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
