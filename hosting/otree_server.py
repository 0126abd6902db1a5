"""A real oTree production server on 127.0.0.1 (tests, benchmarks), and its REST API.

The server runs in a throwaway directory that links to the project's files, so its database — SQLite
(./db.sqlite3 of the server's working directory) unless a PostgreSQL `database_url` is given — never
touches the working tree. It is started in a
new session (setsid) because `otree prodserver` starts a `timeoutsubprocess` child that outlives its
parent; stopping kills the whole process group.
"""
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Never linked into the server's directory: VCS data, virtual environments, local databases, caches.
NOT_LINKED = {'.git', 'db.sqlite3', '.pytest_cache', '__pycache__', '.benchmarks'}
NOT_LINKED_PREFIXES = ('.venv', '__temp')


class ServerError(RuntimeError):
    """The oTree server did not start or its REST API refused a request; the message has the log tail."""


def free_port() -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]


def link_project(target: Path, root: Path = PROJECT_ROOT) -> Path:
    """Symlink every project entry (settings.py, apps, _static, …) into `target`; returns `target`."""
    target.mkdir(parents=True, exist_ok=True)
    for entry in sorted(root.iterdir()):
        if entry.name in NOT_LINKED or entry.name.startswith(NOT_LINKED_PREFIXES):
            continue
        (target / entry.name).symlink_to(entry)
    return target


@dataclass
class OTreeServer:
    """A running `otree prodserver`: its base URL, credentials, working directory and log file."""

    process: subprocess.Popen
    base_url: str
    rest_key: str
    workdir: Path
    log_path: Path
    env: dict
    command: list

    @property
    def admin_password(self) -> str:
        return self.env['OTREE_ADMIN_PASSWORD']

    def log_text(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''

    def log_tail(self, lines: int = 40) -> str:
        return '\n'.join(self.log_text().splitlines()[-lines:])

    def app_tracebacks(self) -> list:
        """Tracebacks in the server log, without the websocket library's noise when a tab leaves a wait page."""
        return [tb for tb in tracebacks(self.log_text()) if not is_disconnect_noise(tb)]

    def rest(self, method: str, path: str, timeout: float = 30, **kwargs) -> dict:
        """One REST call (`/api/...`) with the REST key; raises ServerError on any non-2xx reply."""
        headers = {'otree-rest-key': self.rest_key}
        response = httpx.request(method, self.base_url + path, headers=headers, timeout=timeout, **kwargs)
        if response.status_code // 100 != 2:
            raise ServerError(
                f'{method} {path} -> HTTP {response.status_code}: {response.text[:500]}\n'
                f'--- server log ---\n{self.log_tail()}'
            )
        return response.json()

    def create_session(self, config_name: str, num_participants: int, room_name: str = None, **overrides) -> dict:
        """Creates a session (in `room_name` if given); returns the REST session data (config, participants)."""
        body = dict(session_config_name=config_name, num_participants=num_participants,
                    modified_session_config_fields=overrides)
        if room_name:
            body['room_name'] = room_name
        # oTree creates every participant's rows for every round in this one request: 500
        # participants took over 30 s on 2 cores.
        created = self.rest('POST', '/api/sessions', json=body, timeout=max(30, num_participants * 0.5))
        return self.session_data(created['code'])

    def session_data(self, session_code: str) -> dict:
        return self.rest('GET', f'/api/sessions/{session_code}')

    def admin_login(self, password: str = None):
        """Logs in to the admin as 'admin' (CSRF token from /login); returns (client, login response).

        Success is a 302 to the admin; a wrong password shows the login form again (200)."""
        client = httpx.Client(base_url=self.base_url, timeout=30)
        form = client.get('/login').text
        token = re.search(r'name="csrftoken" value="([^"]+)"', form)
        if not token:
            raise ServerError(f'no CSRF token on /login:\n{form[:500]}')
        response = client.post('/login', data=dict(
            csrftoken=token.group(1), username='admin', password=password or self.admin_password))
        return client, response

    def start_url(self, participant_code: str) -> str:
        return f'{self.base_url}/InitializeParticipant/{participant_code}'

    def stop(self) -> None:
        """SIGTERM to the whole process group (server and timeout worker), SIGKILL if it lingers."""
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.kill()
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL to the whole process group, as a crash or a pulled plug would end it."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(timeout=10)

    def restart(self, startup_seconds: float = 60) -> None:
        """Starts the same command again (same port, database and secrets) after stop() or kill()."""
        with open(self.log_path, 'ab') as log:
            log.write(b'\n--- restarted ---\n')
            self.process = subprocess.Popen(
                self.command, cwd=self.workdir, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_until_serving(self, startup_seconds)


# The old websockets library under oTree logs a traceback when the browser closes a wait page's socket
# first (it navigates to the next page); nothing is lost, and participants never see it.
DISCONNECT_NOISE = (
    'OSError: [Errno 107] Transport endpoint is not connected',
    'websockets.exceptions.ConnectionClosed',
)


def tracebacks(log_text: str) -> list:
    """Every 'Traceback (most recent call last):' block in a log, up to and including its exception line."""
    blocks, current = [], None
    for line in log_text.splitlines():
        if line.startswith('Traceback (most recent call last):'):
            current = [line]
        elif current is not None:
            current.append(line)
            if line and not line.startswith(' '):  # the exception line ends the block
                blocks.append('\n'.join(current))
                current = None
    if current:
        blocks.append('\n'.join(current))
    return blocks


def is_disconnect_noise(traceback_text: str) -> bool:
    last_line = traceback_text.strip().splitlines()[-1]
    return any(last_line.startswith(noise) for noise in DISCONNECT_NOISE)


def server_environment(rest_key: str, database_url: str = None) -> dict:
    """A production environment: STUDY auth, secrets set; `database_url` or else SQLite in the workdir."""
    env = {k: v for k, v in os.environ.items() if k != 'DATABASE_URL'}
    if database_url:
        env['DATABASE_URL'] = database_url
    env.update(
        OTREE_PRODUCTION='1',
        OTREE_AUTH_LEVEL='STUDY',
        OTREE_ADMIN_PASSWORD=secrets.token_hex(8),
        OTREE_SECRET_KEY=secrets.token_hex(16),
        OTREE_REST_KEY=rest_key,
        PYTHONUNBUFFERED='1',
    )
    return env


def otree_command() -> str:
    """The `otree` executable beside this Python, else on PATH (prodserver starts its worker from PATH)."""
    beside_python = Path(sys.executable).with_name('otree')
    otree = str(beside_python) if beside_python.exists() else shutil.which('otree')
    if not otree:
        raise ServerError('the `otree` command is not on PATH: pip install -r requirements.txt')
    return otree


def resetdb(workdir: Path, database_url: str, extra_env: dict = None) -> None:
    """`otree resetdb --noinput` against `database_url`: drops and recreates every table (wipes data).

    `extra_env` is added to the environment (e.g. OTREE_MAX_ROUNDS, which the apps read on import)."""
    if not (workdir / 'settings.py').exists():
        link_project(workdir)
    env = {**os.environ, **(extra_env or {}), 'DATABASE_URL': database_url}
    result = subprocess.run([otree_command(), 'resetdb', '--noinput'], cwd=workdir, env=env,
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise ServerError(f'otree resetdb failed:\n{result.stdout}\n{result.stderr}')


def start_server(workdir: Path, startup_seconds: float = 60, database_url: str = None,
                 extra_env: dict = None) -> OTreeServer:
    """Starts `otree prodserver 127.0.0.1:<free port>` in `workdir` and waits until it answers HTTP.

    With `database_url` (PostgreSQL) the tables are created by `otree resetdb` first; `extra_env`
    overrides the production environment (e.g. to start without a secret).
    """
    if not (workdir / 'settings.py').exists():
        link_project(workdir)
    if database_url:
        resetdb(workdir, database_url, extra_env)
    port = free_port()
    rest_key = secrets.token_hex(12)
    log_path = workdir / 'server.log'
    env = {**server_environment(rest_key, database_url), **(extra_env or {})}
    command = [otree_command(), 'prodserver', f'127.0.0.1:{port}']
    with open(log_path, 'wb') as log:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # setsid: its own process group, killed as a whole in stop()
        )
    server = OTreeServer(process, f'http://127.0.0.1:{port}', rest_key, workdir, log_path, env, command)
    wait_until_serving(server, startup_seconds)
    return server


def wait_until_serving(server: OTreeServer, startup_seconds: float = 60) -> None:
    """Polls / until the server answers (any status below 500); stops it and raises if it never does."""
    deadline = time.monotonic() + startup_seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise ServerError(
                f'otree prodserver exited with code {server.process.returncode}:\n{server.log_tail()}')
        try:
            if httpx.get(server.base_url + '/', timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.25)
    server.stop()
    raise ServerError(f'otree prodserver did not answer within {startup_seconds} s:\n{server.log_tail()}')
