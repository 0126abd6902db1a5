"""A production server on PostgreSQL keeps the admin, the data and the REST API closed without credentials,
opens them with credentials, and shouts when started without its secrets."""
import os
import subprocess
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]

# Admin pages and data exports a stranger must not see (session code filled in per test).
ADMIN_PAGES = [
    '/sessions', '/create_session', '/rooms', '/server_check', '/ExportIndex', '/ExportWide',
    '/SessionStartLinks/{code}', '/SessionMonitor/{code}', '/SessionData/{code}', '/SessionPayments/{code}',
    '/session_data/{code}', '/demo',
]
REST_ENDPOINTS = [
    '/api/sessions', '/api/sessions/{code}', '/api/export_wide',
    '/api/export_app_custom?app=partner_selection&function_name=custom_export&session_code={code}',
]


@pytest.fixture(scope='module')
def session(prodserver):
    return prodserver.create_session('ps_disclosed', 5)


def test_admin_pages_redirect_strangers_to_login(prodserver, session):
    for page in ADMIN_PAGES:
        response = httpx.get(prodserver.base_url + page.format(code=session['code']))
        assert response.status_code == 302, page
        assert response.headers['location'].endswith('/login'), page
        assert session['participants'][0]['code'] not in response.text, page


def test_admin_pages_open_after_login_with_the_admin_password(prodserver, session):
    client, login = prodserver.admin_login()
    assert login.status_code == 302
    for page in ADMIN_PAGES:
        response = client.get(page.format(code=session['code']))
        assert response.status_code == 200, page
    links = client.get(f"/SessionStartLinks/{session['code']}").text
    assert session['participants'][0]['code'] in links


def test_a_wrong_admin_password_is_refused(prodserver, session):
    client, login = prodserver.admin_login(password='not-the-password')
    assert login.status_code == 200 and 'Login failed' in login.text
    assert client.get('/sessions').status_code == 302


@pytest.mark.parametrize('key', [None, 'wrong-key'])
def test_rest_api_and_exports_refuse_a_missing_or_wrong_key(prodserver, session, key):
    headers = {'otree-rest-key': key} if key else {}
    for endpoint in REST_ENDPOINTS:
        response = httpx.get(prodserver.base_url + endpoint.format(code=session['code']), headers=headers)
        assert response.status_code == 403, endpoint
        assert session['participants'][0]['code'] not in response.text


def test_rest_api_and_exports_answer_the_rest_key(prodserver, session):
    headers = {'otree-rest-key': prodserver.rest_key}
    for endpoint in REST_ENDPOINTS:
        response = httpx.get(prodserver.base_url + endpoint.format(code=session['code']), headers=headers)
        assert response.status_code == 200, endpoint
    export = httpx.get(prodserver.base_url + REST_ENDPOINTS[-1].format(code=session['code']), headers=headers)
    assert export.text.startswith('session_code,')


def test_a_production_server_without_secrets_shouts(start_prodserver):
    server = start_prodserver(OTREE_ADMIN_PASSWORD='', OTREE_AUTH_LEVEL='DEMO')
    log = server.log_text()
    assert 'SECURITY: production server started without' in log
    assert 'OTREE_ADMIN_PASSWORD' in log and 'OTREE_AUTH_LEVEL=STUDY (is DEMO)' in log


def test_a_production_server_with_its_secrets_does_not_shout(prodserver):
    assert 'SECURITY' not in prodserver.log_text()


def script_env(**overrides) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith('OTREE_') and k != 'DATABASE_URL'}
    env.update(ENV_FILE='/nonexistent', **overrides)
    return env


def test_prodserver_script_refuses_sqlite_and_missing_secrets(tmp_path):
    result = subprocess.run(['bash', str(REPO / 'scripts/prodserver.sh'), 'start', '127.0.0.1:1'],
                            env=script_env(STATE_DIR=str(tmp_path), OTREE_AUTH_LEVEL='DEMO'),
                            capture_output=True, text=True)
    assert result.returncode != 0
    for needed in ('DATABASE_URL=postgresql://', 'OTREE_AUTH_LEVEL=STUDY', 'OTREE_ADMIN_PASSWORD',
                   'OTREE_SECRET_KEY', 'OTREE_REST_KEY'):
        assert needed in result.stderr
    assert not (tmp_path / 'pgid').exists()


def test_prodserver_script_starts_and_stops_server_and_timeout_worker(postgres, tmp_path):
    from hosting.otree_server import free_port

    port = free_port()
    env = script_env(STATE_DIR=str(tmp_path), DATABASE_URL=postgres.url, OTREE_AUTH_LEVEL='STUDY',
                     OTREE_ADMIN_PASSWORD='pw-for-test', OTREE_SECRET_KEY='k' * 32, OTREE_REST_KEY='rest-for-test')
    script = ['bash', str(REPO / 'scripts/prodserver.sh')]
    subprocess.run(script + ['resetdb', '--yes'], env=env, check=True, capture_output=True, cwd=REPO)
    started = subprocess.run(script + ['start', f'127.0.0.1:{port}'], env=env, capture_output=True, text=True)
    try:
        assert started.returncode == 0, started.stderr
        status = subprocess.run(script + ['status'], env=env, capture_output=True, text=True).stdout
        assert 'prodserver' in status and 'timeoutsubprocess' in status
        response = httpx.get(f'http://127.0.0.1:{port}/api/sessions', headers={'otree-rest-key': 'rest-for-test'})
        assert response.status_code == 200
    finally:
        stopped = subprocess.run(script + ['stop'], env=env, capture_output=True, text=True)
    assert 'stopped' in stopped.stdout
    pgid = (tmp_path / 'pgid')
    assert not pgid.exists()
    leftovers = subprocess.run(['pgrep', '-f', f'otree (prodserver 127.0.0.1:{port}|timeoutsubprocess {port})'],
                               capture_output=True, text=True)
    assert leftovers.stdout == '', f'processes outlived stop: {leftovers.stdout}'
