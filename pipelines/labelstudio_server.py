"""Start a local Label Studio (Community) for human QC: `make labelstudio`, and the tests.

Label Studio lives in its own venv (``.venv-labelstudio``, built by
``make labelstudio-setup`` from ``requirements-labelstudio.txt``): its pins
clash with the project's. This module starts its ``label-studio start`` on
127.0.0.1 with

* the data (SQLite database, uploads) under ``$RLFOUNDRY_HOME/labelstudio``,
* an admin user with a fixed legacy API token (LABEL_STUDIO_USERNAME,
  LABEL_STUDIO_PASSWORD, LABEL_STUDIO_USER_TOKEN, or the defaults below), so
  the ``LabelStudio`` resource works without copying a token around,
* local files served (LOCAL_FILES_SERVING_ENABLED=true, LOCAL_FILES_DOCUMENT_ROOT,
  default ``/``), so tasks can play the clips where they lie,
* no telemetry, no version check, no browser.

Label Studio silently moves to the next port when its port is busy, so the
port is checked first and the server is only declared up once ``whoami``
answers *as our user* on it. The first start on a fresh database migrates it
(60-70 s); later starts take a few seconds.

Run it::

    python -m pipelines.labelstudio_server            # serves until Ctrl-C
    python -m pipelines.labelstudio_server --port 8081 --data-dir /tmp/ls
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import requests

from resources.home import rlfoundry_home
from resources.label_studio import DEFAULT_DOCUMENT_ROOT, DEFAULT_TOKEN, LabelStudio

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
DEFAULT_PORT = 8080
DEFAULT_USERNAME = "admin@rlfoundry.local"
DEFAULT_PASSWORD = "rlfoundry"


def venv_dir() -> Path:
    """`$RLFOUNDRY_LABEL_STUDIO_VENV`, or `.venv-labelstudio` in the repository."""
    return Path(os.environ.get("RLFOUNDRY_LABEL_STUDIO_VENV") or REPO / ".venv-labelstudio")


def executable() -> Path | None:
    """The `label-studio` command of the Label Studio venv, or None if it is not built."""
    path = venv_dir() / "bin" / "label-studio"
    return path if path.is_file() else None


def free_port(host: str = HOST) -> int:
    """A port nobody listens on now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def port_busy(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        return s.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class Settings:
    """Where and as whom the server runs; `from_env` fills what is not given."""

    port: int
    data_dir: Path
    username: str
    password: str
    token: str
    document_root: Path

    @classmethod
    def from_env(cls, port: int | None = None, data_dir: str | Path | None = None) -> Settings:
        env = os.environ
        return cls(
            port=port or int(env.get("LABEL_STUDIO_PORT") or DEFAULT_PORT),
            data_dir=Path(data_dir or rlfoundry_home() / "labelstudio").absolute(),
            username=env.get("LABEL_STUDIO_USERNAME") or DEFAULT_USERNAME,
            password=env.get("LABEL_STUDIO_PASSWORD") or DEFAULT_PASSWORD,
            token=env.get("LABEL_STUDIO_USER_TOKEN") or DEFAULT_TOKEN,
            document_root=Path(env.get("LOCAL_FILES_DOCUMENT_ROOT")
                               or DEFAULT_DOCUMENT_ROOT).absolute(),
        )

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def resource(self) -> LabelStudio:
        """A `LabelStudio` resource pointed at this server."""
        return LabelStudio(url=self.url, token=self.token, document_root=str(self.document_root))


@dataclass
class Server:
    settings: Settings
    process: subprocess.Popen
    log: Path

    @property
    def url(self) -> str:
        return self.settings.url


def command(settings: Settings, exe: Path) -> list[str]:
    return [str(exe), "start", "--no-browser", "--internal-host", HOST,
            "--port", str(settings.port), "--data-dir", str(settings.data_dir),
            "--username", settings.username, "--password", settings.password,
            "--user-token", settings.token, "--enable-legacy-api-token",
            "--log-level", "WARNING"]


def environment(settings: Settings) -> dict[str, str]:
    return {**os.environ,
            "LOCAL_FILES_SERVING_ENABLED": "true",
            "LOCAL_FILES_DOCUMENT_ROOT": str(settings.document_root),
            "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
            "COLLECT_ANALYTICS": "false", "LATEST_VERSION_CHECK": "false",
            "SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": ""}


def start(settings: Settings, *, timeout_s: float = 240.0, log: Path | None = None) -> Server:
    """Start the server and wait until it answers on `settings.port` as our user."""
    exe = executable()
    if exe is None:
        raise FileNotFoundError(f"No Label Studio in {venv_dir()}: build it with "
                                "`make labelstudio-setup` (its own venv, ~10 s with uv).")
    if port_busy(settings.port):
        raise OSError(f"Port {settings.port} on {HOST} is busy (another Label Studio?): stop "
                      "it, or pick another port with LABEL_STUDIO_PORT / --port.")
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    log = log or settings.data_dir / "server.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(command(settings, exe), env=environment(settings),
                                   stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   start_new_session=True)
    server = Server(settings, process, log)
    try:
        wait_ready(server, timeout_s)
    except BaseException:
        stop(server)
        raise
    return server


def wait_ready(server: Server, timeout_s: float) -> None:
    """Poll `whoami` until our user answers; fail early if the process dies or is elsewhere."""
    deadline = time.monotonic() + timeout_s
    headers = {"Authorization": f"Token {server.settings.token}"}
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"Label Studio exited with code {server.process.returncode} "
                               f"before answering; see {server.log}:\n{_tail(server.log)}")
        try:
            r = requests.get(f"{server.url}/api/current-user/whoami", headers=headers, timeout=5)
        except requests.RequestException:
            time.sleep(1.0)
            continue
        if r.status_code == 200 and r.json().get("email") == server.settings.username:
            return
        raise RuntimeError(
            f"{server.url} answers (HTTP {r.status_code}) but not as {server.settings.username} "
            f"with our token: another server holds the port, or {server.settings.data_dir} "
            "was created with another user/token (remove it or set LABEL_STUDIO_USER_TOKEN).")
    raise TimeoutError(f"Label Studio did not answer on {server.url} within {timeout_s:g} s; "
                       f"see {server.log}:\n{_tail(server.log)}")


def stop(server: Server, grace_s: float = 10.0) -> None:
    """Stop the server's process group (SIGTERM, then SIGKILL after `grace_s`)."""
    if server.process.poll() is not None:
        return
    try:
        os.killpg(server.process.pid, signal.SIGTERM)
        server.process.wait(grace_s)
    except subprocess.TimeoutExpired:
        os.killpg(server.process.pid, signal.SIGKILL)
        server.process.wait()
    except ProcessLookupError:
        pass


@contextmanager
def running(settings: Settings, **kwargs) -> Iterator[Server]:
    """A started server, stopped on exit (for tests and scripts)."""
    server = start(settings, **kwargs)
    try:
        yield server
    finally:
        stop(server)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, help=f"default $LABEL_STUDIO_PORT or {DEFAULT_PORT}")
    parser.add_argument("--data-dir", help="default $RLFOUNDRY_HOME/labelstudio")
    args = parser.parse_args(argv)
    settings = Settings.from_env(args.port, args.data_dir)
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):  # every way out stops the server
        signal.signal(sig, _interrupt)
    print(f"Starting Label Studio on {settings.url} (data in {settings.data_dir}; "
          f"log {settings.data_dir / 'server.log'}); a fresh database takes about a minute...",
          flush=True)
    try:
        server = start(settings)
    except (OSError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # start() has stopped the server
        return 130
    print(f"Label Studio is up: {settings.url}  (log in as {settings.username} / "
          f"{settings.password}; API token {settings.token}; serving local files under "
          f"{settings.document_root}). Ctrl-C stops it.", flush=True)
    try:
        server.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        stop(server)
    return server.process.returncode or 0


if __name__ == "__main__":
    sys.exit(main())
