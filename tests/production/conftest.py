"""Fixtures for the production tests: a real PostgreSQL (Debian's packages) and `otree prodserver` on it.

Needs PostgreSQL's server binaries (`apt-get install postgresql`; scripts/test_all.sh installs them).
Each server gets a throwaway cluster folder under /tmp (the `postgres` user must be able to enter it)
and a fresh schema (`otree resetdb`).
"""
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from hosting.otree_server import start_server
from hosting.postgres import PostgresError, postgres_bin_dir, start_postgres


@pytest.fixture(scope='session')
def postgres():
    try:
        postgres_bin_dir()
    except PostgresError as error:
        pytest.fail(f'{error}', pytrace=False)
    folder = Path(tempfile.mkdtemp(prefix='otree-pg-', dir='/tmp'))
    os.chmod(folder, 0o755)
    server = start_postgres(folder / 'cluster')
    yield server
    server.stop()
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def start_prodserver(postgres, tmp_path):
    """Factory: start_prodserver(**extra_env) -> a prodserver on a freshly reset PostgreSQL schema."""
    servers = []

    def start(**extra_env):
        server = start_server(tmp_path / f'server{len(servers)}', database_url=postgres.url, extra_env=extra_env)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope='module')
def prodserver(postgres, tmp_path_factory):
    """One prodserver on PostgreSQL shared by a module's tests (read-only checks)."""
    server = start_server(tmp_path_factory.mktemp('prodserver'), database_url=postgres.url)
    yield server
    server.stop()
