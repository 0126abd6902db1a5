"""Several `otree prodserver` processes behind HAProxy, each with its own database in one PostgreSQL cluster.

One oTree process serves every request behind one lock (docs/hosting.md, "Several servers behind
HAProxy"), so a study that needs more runs K independent oTree servers: server sN listens on
127.0.0.1:<base port + N>, stores into database `<db>_sN` of the same PostgreSQL, and has its own
sessions (one per server, also one in each server's room). HAProxy (Debian's package) is the one
public address: the first response sets the cookie OTREE_SERVER and every later page and WebSocket of
that browser goes to the same server; a participant link carries `?otree_server=sN`; the room entry
spreads participants by their label (the Prolific ID). Exports are read from every server and merged
(`analysis.io.read_exports` checks the files agree and no session appears twice).

Everything lives in a run folder (default `.cluster/`): haproxy.cfg, cluster.json (ports, process groups,
database URLs; mode 600), secrets.env when the environment had no secrets, server logs and haproxy.log.
Command line (scripts/cluster.sh wraps it and reads .env.production first):

    python3 -m hosting.cluster start K [--bind 0.0.0.0:8000] [--base-port 8100] [--resetdb]
    python3 -m hosting.cluster stop | status | check | restart sN
    python3 -m hosting.cluster sessions CONFIG N [--room online] [--set key=value ...]   # N per server
    python3 -m hosting.cluster export OUTDIR   # per-server files + merged decisions/candidates/…
"""
import argparse
import contextlib
import csv
import io
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from string import Template
from typing import List
from urllib.parse import urlsplit, urlunsplit

import httpx

from hosting.http_participant import HttpParticipant
from hosting.otree_server import link_project, otree_command, resetdb

TEMPLATE = Path(__file__).with_name('haproxy.cfg.template')
STATE_FILE = 'cluster.json'
# custom_export functions of each app: the files a study's analysis reads (docs/codebook.md)
EXPORTS = (
    ('partner_selection', 'custom_export'),
    ('partner_selection', 'custom_export_candidates'),
    ('partner_selection', 'custom_export_ai_calls'),
    ('trust_game', 'custom_export'),
)


class ClusterError(RuntimeError):
    """The cluster cannot start, is not running, or a server refused; the message says what to do."""


@dataclass
class ClusterServer:
    """One oTree prodserver of the cluster: its HAProxy name (s1, s2, …), port, database, process group."""

    name: str
    port: int
    database_url: str
    workdir: str
    pgid: int = 0

    @property
    def base_url(self) -> str:
        return f'http://127.0.0.1:{self.port}'

    @property
    def log_path(self) -> Path:
        return Path(self.workdir) / 'server.log'

    def log_text(self) -> str:
        return self.log_path.read_text(errors='replace') if self.log_path.exists() else ''


@dataclass
class Cluster:
    """A running set: servers, HAProxy (pid, address) and the secrets the servers share."""

    run_dir: str
    bind: str
    servers: List[ClusterServer]
    haproxy_pid: int = 0
    rest_key: str = ''
    admin_password: str = ''
    extra_env: dict = None  # added to every server's environment (e.g. OTREE_MAX_ROUNDS)

    @property
    def url(self) -> str:
        """The public address (HAProxy), as seen from this machine."""
        host, port = self.bind.rsplit(':', 1)
        return f'http://{"127.0.0.1" if host in ("", "0.0.0.0", "*") else host}:{port}'

    @property
    def haproxy_log(self) -> Path:
        return Path(self.run_dir) / 'haproxy.log'

    def server(self, name: str) -> ClusterServer:
        return next(s for s in self.servers if s.name == name)

    def save(self) -> None:
        path = Path(self.run_dir) / STATE_FILE
        path.write_text(json.dumps(asdict(self), indent=2))
        path.chmod(0o600)

    # --- REST on each server ------------------------------------------------------------------------
    def rest(self, server: ClusterServer, method: str, path: str, timeout: float = 60, **kwargs):
        response = httpx.request(method, server.base_url + path, headers={'otree-rest-key': self.rest_key},
                                 timeout=timeout, **kwargs)
        if response.status_code // 100 != 2:
            raise ClusterError(f'{server.name}: {method} {path} -> HTTP {response.status_code}: {response.text[:300]}')
        return response

    def create_sessions(self, config_name: str, num_participants: int, room_name: str = None,
                        **overrides) -> List[dict]:
        """One session of `num_participants` on every server (in `room_name` there, if given); returns the
        REST session data of each, with `server` (its name) added."""
        sessions = []
        for server in self.servers:
            body = dict(session_config_name=config_name, num_participants=num_participants,
                        modified_session_config_fields=overrides)
            if room_name:
                body['room_name'] = room_name
            code = self.rest(server, 'POST', '/api/sessions', json=body,
                             timeout=max(60, num_participants * 0.5)).json()['code']
            data = self.rest(server, 'GET', f'/api/sessions/{code}').json()
            data['server'] = server.name
            sessions.append(data)
        return sessions

    def participant_link(self, server_name: str, participant_code: str) -> str:
        """The link a participant opens: through HAProxy, pinned to the server that holds the session."""
        return f'{self.url}/InitializeParticipant/{participant_code}?otree_server={server_name}'

    def export(self, out_dir: Path) -> dict:
        """Every server's custom exports (all sessions) into out_dir/<server>/, and for each export the
        merged file out_dir/<app>_<function>.csv (headers must agree). Returns {file stem: [server files]}."""
        out_dir = Path(out_dir)
        written = {}
        for app, function in EXPORTS:
            stem = f'{app}_{function}'
            parts = []
            for server in self.servers:
                text = self.rest(server, 'GET', '/api/export_app_custom',
                                 params=dict(app=app, function_name=function)).text
                path = out_dir / server.name / f'{stem}.csv'
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text)
                parts.append(path)
            merge_csv(parts, out_dir / f'{stem}.csv')
            written[stem] = parts
        return written

    # --- processes ------------------------------------------------------------------------------------
    def stop(self) -> List[str]:
        """HAProxy first (no new requests), then every server's process group (TERM, KILL after 10 s)."""
        stopped = []
        if self.haproxy_pid and _kill_group(self.haproxy_pid):
            stopped.append('haproxy')
        for server in self.servers:
            if server.pgid and _kill_group(server.pgid):
                stopped.append(server.name)
        return stopped

    def restart_server(self, name: str, startup_seconds: float = 90) -> ClusterServer:
        """Stops server `name` if it still runs and starts it again on the same port and database (its
        participants' sessions are kept); waits until HAProxy sees it UP."""
        server = self.server(name)
        if server.pgid:
            _kill_group(server.pgid)
        server.pgid = _spawn_server(server, _server_env(_secrets(Path(self.run_dir)), self.extra_env or {}))
        self.save()
        _wait_until_up(self, startup_seconds)
        return server

    def problems(self) -> List[str]:
        """What is wrong, empty when all is well: dead processes, servers that do not answer directly,
        HAProxy not seeing every server UP, a request through HAProxy not naming its server."""
        found = []
        if not _alive(self.haproxy_pid):
            found.append(f'haproxy (pid {self.haproxy_pid}) is not running')
        for server in self.servers:
            if not _alive(server.pgid):
                found.append(f'{server.name} (process group {server.pgid}) is not running; log: {server.log_path}')
                continue
            try:
                self.rest(server, 'GET', '/api/otree_version', timeout=10)
            except (ClusterError, httpx.HTTPError) as error:
                found.append(f'{server.name} does not answer its REST API on port {server.port}: {error}')
        if found:
            return found
        try:
            states = self.haproxy_states()
        except OSError as error:
            return [f'haproxy\'s stats socket does not answer: {error}']
        for server in self.servers:
            if not states.get(server.name, '').startswith('UP'):
                found.append(f'haproxy sees {server.name} as {states.get(server.name, "missing")}')
        for server in self.servers:
            try:
                response = httpx.get(f'{self.url}/api/otree_version', params=dict(otree_server=server.name),
                                     headers={'otree-rest-key': self.rest_key}, timeout=10, follow_redirects=True)
            except httpx.HTTPError as error:
                found.append(f'haproxy on {self.bind} does not answer: {error}')
                break
            if response.headers.get('x-otree-server') != server.name or response.status_code != 200:
                found.append(f'through haproxy, ?otree_server={server.name} reached '
                             f'{response.headers.get("x-otree-server")} (HTTP {response.status_code})')
        return found

    def haproxy_states(self) -> dict:
        """Server name -> status ('UP', 'DOWN', 'UP 1/3', …) from HAProxy's stats socket."""
        stats = _haproxy_command(Path(self.run_dir) / 'haproxy.sock', 'show stat')
        rows = csv.DictReader(io.StringIO(stats.lstrip('# ')))
        return {row['svname']: row['status'] for row in rows if row['pxname'] == 'otree_servers'
                and row['svname'] not in ('BACKEND', 'FRONTEND')}


# --- starting ---------------------------------------------------------------------------------------------

def database_url_for(base_url: str, server_name: str) -> str:
    """postgresql://u:p@h:5432/otree -> …/otree_s1: one database per server in the same cluster."""
    parts = urlsplit(base_url)
    return urlunsplit(parts._replace(path=f'{parts.path.rstrip("/")}_{server_name}'))


def ensure_database(base_url: str, url: str) -> bool:
    """Creates the database of `url` (owned by the URL's role) if missing; True if it has oTree's tables."""
    import psycopg2

    name = urlsplit(url).path.lstrip('/')
    connection = psycopg2.connect(base_url)
    connection.autocommit = True
    try:
        with connection.cursor() as cursor:
            cursor.execute('SELECT 1 FROM pg_database WHERE datname = %s', (name,))
            if not cursor.fetchone():
                try:
                    cursor.execute(f'CREATE DATABASE "{name}"')
                except psycopg2.Error as error:
                    role = urlsplit(base_url).username
                    raise ClusterError(
                        f'cannot create database {name} ({(error.pgerror or str(error)).strip()}); let the role create '
                        f"databases: runuser -u postgres -- psql -c 'ALTER ROLE {role} CREATEDB'") from None
    finally:
        connection.close()
    connection = psycopg2.connect(url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('public.otree_session')")
            return cursor.fetchone()[0] is not None
    finally:
        connection.close()


def port_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(('127.0.0.1', port))
            return True
        except OSError:
            return False


def _alive(pgid: int) -> bool:
    if not pgid:
        return False
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pgid, os.WNOHANG)  # a child of ours that exited: reap it, else it lingers as a zombie
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def _kill_group(pgid: int, seconds: float = 10) -> bool:
    """TERM to the process group, KILL if it lingers; False if it was not running."""
    if not _alive(pgid):
        return False
    os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + seconds
    while _alive(pgid) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(-pgid, os.WNOHANG)  # reap our own children, or they stay alive as zombies
        time.sleep(0.2)
    if _alive(pgid):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(-pgid, os.WNOHANG)
    return True


def _haproxy_command(sock_path: Path, command: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(sock_path))
        sock.sendall(command.encode() + b'\n')
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b''.join(chunks).decode()


def haproxy_config(run_dir: Path, bind: str, servers: List[ClusterServer]) -> str:
    rules = '\n    '.join(
        f'http-request redirect location %[url,regsub("otree_server=[^&]*&?",)] code 302 '
        f'set-cookie OTREE_SERVER={s.name} if {{ urlp(otree_server) -m str {s.name} }}' for s in servers)
    lines = '\n'.join(f'    server {s.name} 127.0.0.1:{s.port} check inter 2s cookie {s.name}' for s in servers)
    return Template(TEMPLATE.read_text()).substitute(
        run_dir=run_dir, bind=bind, num_servers=len(servers), pin_rules=rules, servers=lines)


def _secrets(run_dir: Path) -> dict:
    """OTREE_ADMIN_PASSWORD, OTREE_SECRET_KEY, OTREE_REST_KEY from the environment, else from (or newly
    into) run_dir/secrets.env: all servers share them, so one REST key and admin password open all."""
    names = ('OTREE_ADMIN_PASSWORD', 'OTREE_SECRET_KEY', 'OTREE_REST_KEY')
    if all(os.environ.get(n) for n in names):
        return {n: os.environ[n] for n in names}
    path = run_dir / 'secrets.env'
    if path.exists():
        found = dict(re.findall(r'^export (\w+)=(\S+)$', path.read_text(), re.M))
        if all(found.get(n) for n in names):
            return {n: found[n] for n in names}
    values = {n: secrets.token_urlsafe(18) for n in names}
    path.write_text(''.join(f'export {n}={v}\n' for n, v in values.items()))
    path.chmod(0o600)
    return values


def _server_env(shared: dict, extra_env: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if k != 'DATABASE_URL'}
    env.update(OTREE_PRODUCTION='1', OTREE_AUTH_LEVEL='STUDY', PYTHONUNBUFFERED='1', **shared, **extra_env)
    return env


def _spawn_server(server: ClusterServer, env: dict) -> int:
    """Starts the server's prodserver in its own process group (with its timeout worker); returns the group."""
    with open(server.log_path, 'ab') as log:
        log.write(f'--- {time.strftime("%FT%TZ", time.gmtime())} start {server.name}\n'.encode())
        log.flush()
        process = subprocess.Popen(
            [otree_command(), 'prodserver', f'127.0.0.1:{server.port}'], cwd=server.workdir,
            env={**env, 'DATABASE_URL': server.database_url}, stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True)
    return process.pid


def start_cluster(run_dir: Path, num_servers: int, database_url: str, bind: str = '127.0.0.1:8000',
                  base_port: int = 8100, reset: bool = False, extra_env: dict = None,
                  startup_seconds: float = 90) -> Cluster:
    """Starts `num_servers` prodservers (ports base_port+1 …, databases <db>_s1 …; tables created when a
    database is new, or always with `reset`, which wipes it) and HAProxy on `bind`; waits until HAProxy
    sees every server UP. Any failure stops what was started and raises ClusterError with the log tail."""
    run_dir = Path(run_dir).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    if (run_dir / STATE_FILE).exists():
        running = load_cluster(run_dir)
        if _alive(running.haproxy_pid) or any(_alive(s.pgid) for s in running.servers):
            raise ClusterError(f'a cluster is already running from {run_dir}: scripts/cluster.sh stop first')
    if not database_url.startswith(('postgres://', 'postgresql://')):
        raise ClusterError('DATABASE_URL must be PostgreSQL (postgresql://…): prodserver on SQLite locks up')
    if not shutil.which('haproxy'):
        raise ClusterError('haproxy is not installed: apt-get install haproxy')
    shared = _secrets(run_dir)
    bind_port = int(bind.rsplit(':', 1)[1])
    servers = [ClusterServer(f's{i}', base_port + i, database_url_for(database_url, f's{i}'),
                             str(run_dir / f's{i}')) for i in range(1, num_servers + 1)]
    busy = [str(p) for p in [bind_port] + [s.port for s in servers] if not port_free(p)]
    if busy:
        raise ClusterError(f'port(s) {", ".join(busy)} already in use: choose --bind / --base-port')
    cluster = Cluster(str(run_dir), bind, servers, rest_key=shared['OTREE_REST_KEY'],
                      admin_password=shared['OTREE_ADMIN_PASSWORD'])
    cluster.extra_env = dict(extra_env or {})
    env = _server_env(shared, cluster.extra_env)
    try:
        for server in servers:
            workdir = Path(server.workdir)
            if not (workdir / 'settings.py').exists():
                link_project(workdir)
                loop = workdir / run_dir.name  # the run folder inside the project: not into itself
                if loop.is_symlink() and loop.resolve() == run_dir:
                    loop.unlink()
            has_tables = ensure_database(database_url, server.database_url)
            if reset or not has_tables:
                resetdb(workdir, server.database_url, extra_env)
            server.pgid = _spawn_server(server, env)
            cluster.save()
        config = run_dir / 'haproxy.cfg'
        config.write_text(haproxy_config(run_dir, bind, servers))
        checked = subprocess.run(['haproxy', '-c', '-f', str(config)], capture_output=True, text=True)
        if checked.returncode != 0:
            raise ClusterError(f'haproxy refuses {config}:\n{checked.stdout}{checked.stderr}')
        with open(cluster.haproxy_log, 'ab') as log:
            process = subprocess.Popen(['haproxy', '-db', '-f', str(config)], cwd=run_dir, stdout=log,
                                       stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        cluster.haproxy_pid = process.pid
        cluster.save()
        _wait_until_up(cluster, startup_seconds)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _wait_until_up(cluster: Cluster, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while True:
        problems = cluster.problems()
        if not problems:
            return
        dead = [s for s in cluster.servers if not _alive(s.pgid)] + ([] if _alive(cluster.haproxy_pid) else [None])
        if dead or time.monotonic() > deadline:
            tails = '\n'.join(f'--- {s.name}: {s.log_path}\n' + '\n'.join(s.log_text().splitlines()[-15:])
                              for s in cluster.servers)
            haproxy = cluster.haproxy_log.read_text(errors='replace')[-2000:] if cluster.haproxy_log.exists() else ''
            raise ClusterError('the cluster did not come up:\n  - ' + '\n  - '.join(problems)
                               + f'\n{tails}\n--- haproxy: {cluster.haproxy_log}\n{haproxy}')
        time.sleep(0.5)


def load_cluster(run_dir: Path) -> Cluster:
    path = Path(run_dir) / STATE_FILE
    if not path.exists():
        raise ClusterError(f'no cluster in {run_dir} (no {STATE_FILE}): scripts/cluster.sh start K')
    state = json.loads(path.read_text())
    state['servers'] = [ClusterServer(**s) for s in state['servers']]
    return Cluster(**state)


# --- exports ---------------------------------------------------------------------------------------------

def merge_csv(paths: List[Path], target: Path) -> int:
    """Concatenates CSV files with identical headers (files with no rows may be empty); returns the rows."""
    header, rows = None, []
    for path in paths:
        table = list(csv.reader(io.StringIO(Path(path).read_text())))
        if not table:
            continue
        if header is not None and table[0] != header:
            raise ClusterError(f'{path}: its columns differ from the other servers\' (same code on every server?)')
        header = table[0]
        rows.extend(table[1:])
    with open(target, 'w', newline='') as out:
        writer = csv.writer(out)
        if header:
            writer.writerow(header)
        writer.writerows(rows)
    return len(rows)


# --- simulated participants through HAProxy ---------------------------------------------------------------

@dataclass
class ClusterParticipant(HttpParticipant):
    """An HttpParticipant that enters through HAProxy on its server's link; give it its own client (its
    own cookie jar, like a browser: its pages and WebSockets then carry the server cookie)."""

    server_name: str = ''

    @property
    def start_url(self) -> str:
        return f'{self.base_url}/InitializeParticipant/{self.code}?otree_server={self.server_name}'


PARTICIPANT_IN_LOG = re.compile(r' \{([a-z0-9]+)\} "')
SERVER_IN_LOG = re.compile(r' otree_servers/(?!<NOSRV>)(\S+) ')  # <NOSRV>: HAProxy's own redirect


def servers_by_participant(haproxy_log_text: str) -> dict:
    """Participant code -> {server: requests} from haproxy.log lines of requests that carried X-Participant
    and reached a server (HAProxy's own answers, the ?otree_server redirect, reach none)."""
    seen = {}
    for line in haproxy_log_text.splitlines():
        who, where = PARTICIPANT_IN_LOG.search(line), SERVER_IN_LOG.search(line)
        if who and where:
            counts = seen.setdefault(who.group(1), {})
            counts[where.group(1)] = counts.get(where.group(1), 0) + 1
    return seen


# --- command line ------------------------------------------------------------------------------------------

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog='python3 -m hosting.cluster', description=__doc__.split('\n\n')[0])
    parser.add_argument('--run-dir', default=os.environ.get('CLUSTER_DIR', '.cluster'))
    sub = parser.add_subparsers(dest='action', required=True)
    start = sub.add_parser('start', help='start K servers and HAProxy')
    start.add_argument('servers', type=int)
    start.add_argument('--bind', default='0.0.0.0:8000', help='HAProxy address (default 0.0.0.0:8000)')
    start.add_argument('--base-port', type=int, default=8100, help='server sN listens on 127.0.0.1:BASE+N')
    start.add_argument('--resetdb', action='store_true', help='wipe and recreate every server\'s tables')
    for name in ('stop', 'status', 'check'):
        sub.add_parser(name)
    restart = sub.add_parser('restart', help='stop (if running) and start one server again, data kept')
    restart.add_argument('server', help='its name: s1, s2, …')
    sessions = sub.add_parser('sessions', help='one session per server; prints participant links')
    sessions.add_argument('config')
    sessions.add_argument('participants', type=int, help='participants per server')
    sessions.add_argument('--room', help='create each server\'s session in this room (e.g. online)')
    sessions.add_argument('--set', action='append', default=[], metavar='KEY=VALUE',
                          help='session config override (JSON value, else string)')
    export = sub.add_parser('export', help='every server\'s exports, and merged files')
    export.add_argument('out_dir')
    args = parser.parse_args(argv)
    run_dir = Path(args.run_dir)
    try:
        if args.action == 'start':
            if not os.environ.get('DATABASE_URL'):
                raise ClusterError('DATABASE_URL is not set (sudo bash scripts/postgres.sh setup writes '
                                   '.env.production)')
            cluster = start_cluster(run_dir, args.servers, os.environ['DATABASE_URL'], args.bind,
                                    args.base_port, args.resetdb)
            for server in cluster.servers:
                print(f'{server.name}: {server.base_url} (process group {server.pgid}, database '
                      f'{urlsplit(server.database_url).path.lstrip("/")}, log {server.log_path})')
            print(f'haproxy: {cluster.url} (pid {cluster.haproxy_pid}, config {run_dir}/haproxy.cfg, '
                  f'log {cluster.haproxy_log})')
            return 0
        cluster = load_cluster(run_dir)
        if args.action == 'stop':
            stopped = cluster.stop()
            print('stopped: ' + (', '.join(stopped) or 'nothing was running'))
        elif args.action == 'restart':
            if args.server not in {s.name for s in cluster.servers}:
                raise ClusterError(f'no server {args.server}: {", ".join(s.name for s in cluster.servers)}')
            server = cluster.restart_server(args.server)
            print(f'{server.name} restarted (process group {server.pgid}); all servers UP')
        elif args.action in ('status', 'check'):
            problems = cluster.problems()
            if args.action == 'status':
                for server in cluster.servers:
                    print(f'{server.name}: {"running" if _alive(server.pgid) else "NOT running"} '
                          f'({server.base_url}, process group {server.pgid})')
                print(f'haproxy: {"running" if _alive(cluster.haproxy_pid) else "NOT running"} ({cluster.url})')
            if problems:
                print('PROBLEMS:\n  - ' + '\n  - '.join(problems), file=sys.stderr)
                return 1
            print(f'ok: haproxy on {cluster.bind} reaches all {len(cluster.servers)} servers, all UP')
        elif args.action == 'sessions':
            overrides = {}
            for item in args.set:
                key, _, value = item.partition('=')
                try:
                    overrides[key] = json.loads(value)
                except ValueError:
                    overrides[key] = value
            for session in cluster.create_sessions(args.config, args.participants, args.room, **overrides):
                print(f'# {session["server"]}: session {session["code"]}'
                      + (f' in room {args.room}: {cluster.url}/room/{args.room}' if args.room else ''))
                for participant in session['participants']:
                    print(cluster.participant_link(session['server'], participant['code']))
        elif args.action == 'export':
            for stem, parts in cluster.export(Path(args.out_dir)).items():
                print(f'{args.out_dir}/{stem}.csv  <- ' + ' + '.join(str(p) for p in parts))
    except ClusterError as error:
        print(f'cluster: {error}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
