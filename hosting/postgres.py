"""A throwaway PostgreSQL server from Debian's packages, for production tests and load benchmarks.

`start_postgres(directory)` runs `initdb` and `pg_ctl start` on a private data directory and a free port
on 127.0.0.1, creates a database, and returns its `DATABASE_URL`. Nothing touches the machine's own
cluster (/var/lib/postgresql). PostgreSQL refuses to run as root, so as root the server runs as the
`postgres` user that Debian's package creates. Command line (used by scripts/postgres.sh):

    python3 -m hosting.postgres start DIR [--port N]   # prints DATABASE_URL=...
    python3 -m hosting.postgres stop DIR
"""
import argparse
import glob
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from hosting.otree_server import free_port

DB_NAME = 'otree'
DB_USER = 'otree'


class PostgresError(RuntimeError):
    """PostgreSQL is missing or did not start; the message says how to fix it."""


def postgres_bin_dir() -> Path:
    """The newest /usr/lib/postgresql/<version>/bin (Debian's layout), or the folder of initdb on PATH."""
    candidates = sorted(glob.glob('/usr/lib/postgresql/*/bin/initdb'), key=lambda p: int(p.split('/')[4]))
    if candidates:
        return Path(candidates[-1]).parent
    on_path = shutil.which('initdb')
    if on_path:
        return Path(on_path).parent
    raise PostgresError('PostgreSQL is not installed: apt-get install postgresql (or bash scripts/test_all.sh)')


def _as_server_user(command: list) -> list:
    """As root, run `command` as the `postgres` user (initdb and postgres refuse root)."""
    if os.geteuid() != 0:
        return command
    return ['runuser', '-u', 'postgres', '--'] + command


def _run(command: list, what: str) -> str:
    result = subprocess.run(_as_server_user(command), capture_output=True, text=True, cwd='/')
    if result.returncode != 0:
        raise PostgresError(f'{what} failed (exit {result.returncode}):\n{result.stdout}\n{result.stderr}')
    return result.stdout


@dataclass
class Postgres:
    """A running private PostgreSQL: its data directory, port and the URL oTree reads from DATABASE_URL."""

    directory: Path
    port: int
    password: str

    @property
    def data_dir(self) -> Path:
        return self.directory / 'data'

    @property
    def url(self) -> str:
        return f'postgresql://{DB_USER}:{self.password}@127.0.0.1:{self.port}/{DB_NAME}'

    def connect(self):
        """A psycopg2 connection (autocommit) for checking what oTree stored."""
        import psycopg2

        connection = psycopg2.connect(self.url)
        connection.autocommit = True
        return connection

    def connect_as_superuser(self):
        """A psycopg2 connection (autocommit) as the cluster's superuser, over its socket (extensions, stats)."""
        import psycopg2

        connection = psycopg2.connect(host=str(self.directory), port=self.port, user='postgres', dbname=DB_NAME)
        connection.autocommit = True
        return connection

    def stop(self) -> None:
        stop_postgres(self.directory)


def start_postgres(directory: Path, port: int = 0, settings: dict = None) -> Postgres:
    """initdb (once) + start on 127.0.0.1:`port` (0 = free port) + create role and database (once).

    ``settings``: server settings on top of the defaults below (name → value, as `postgres -c`); the default
    synchronous_commit=off is this private cluster's (benchmarks, tests), see docs/hosting.md for a study's."""
    directory = Path(directory).resolve()
    bin_dir = postgres_bin_dir()
    directory.mkdir(parents=True, exist_ok=True)
    data_dir = directory / 'data'
    password_file = directory / 'password'
    if os.geteuid() == 0:
        shutil.chown(directory, 'postgres', 'postgres')
        closed = [str(p) for p in directory.parents if not os.stat(p).st_mode & 0o001]
        if closed:
            raise PostgresError(f'the postgres user cannot enter {closed[0]}: use a folder all of whose '
                                'parents are world-executable (pytest\'s tmp_path is not; /tmp is)')
    fresh = not (data_dir / 'PG_VERSION').exists()
    if fresh:
        _run([str(bin_dir / 'initdb'), '-D', str(data_dir), '-U', 'postgres', '--auth=trust',
              '--encoding=UTF8', '--locale=C.UTF-8'], 'initdb')
        password_file.write_text(secrets.token_hex(12))
    port = port or free_port()
    log_file = directory / 'postgres.log'
    chosen = dict(listen_addresses='127.0.0.1', max_connections=200, synchronous_commit='off') | (settings or {})
    options = f'-p {port} -k {directory} ' + ' '.join(f'-c {name}={value}' for name, value in chosen.items())
    _run([str(bin_dir / 'pg_ctl'), '-D', str(data_dir), '-l', str(log_file), '-o', options,
          '-w', '-t', '60', 'start'], 'pg_ctl start')
    (directory / 'port').write_text(str(port))
    server = Postgres(directory, port, password_file.read_text().strip())
    if fresh:
        psql = [str(bin_dir / 'psql'), '-h', str(directory), '-p', str(port), '-U', 'postgres',
                '-v', 'ON_ERROR_STOP=1', '-d', 'postgres', '-c']
        _run(psql + [f"CREATE ROLE {DB_USER} LOGIN PASSWORD '{server.password}'"], 'create role')
        _run(psql + [f'CREATE DATABASE {DB_NAME} OWNER {DB_USER}'], 'create database')
    _wait_until_accepting(server)
    return server


def _wait_until_accepting(server: Postgres, seconds: float = 30) -> None:
    import psycopg2

    deadline = time.monotonic() + seconds
    while True:
        try:
            server.connect().close()
            return
        except psycopg2.OperationalError as error:
            if time.monotonic() > deadline:
                raise PostgresError(f'PostgreSQL on port {server.port} refuses connections: {error}')
            time.sleep(0.2)


def stop_postgres(directory: Path) -> None:
    """pg_ctl stop -m fast (open connections are closed); does nothing if it is not running."""
    data_dir = Path(directory).resolve() / 'data'
    if not (data_dir / 'postmaster.pid').exists():
        return
    _run([str(postgres_bin_dir() / 'pg_ctl'), '-D', str(data_dir), '-m', 'fast', '-w', 'stop'], 'pg_ctl stop')


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python3 -m hosting.postgres', description=__doc__.split('\n\n')[0])
    parser.add_argument('action', choices=['start', 'stop'])
    parser.add_argument('directory', help='data folder of this private PostgreSQL (created on first start)')
    parser.add_argument('--port', type=int, default=0, help='TCP port on 127.0.0.1 (default: a free one)')
    args = parser.parse_args(argv)
    try:
        if args.action == 'start':
            print(f'DATABASE_URL={start_postgres(Path(args.directory), args.port).url}')
        else:
            stop_postgres(Path(args.directory))
    except PostgresError as error:
        print(f'error: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
