"""Run oTree bot sessions in-process (in-memory database) and write every custom export, with config overrides.

`otree test --export` writes only each app's `custom_export`; studies (and our tests) also need
`custom_export_candidates` and `custom_export_ai_calls`, and sometimes a config tweak
(e.g. an LLM endpoint) without editing settings.py.

One session:

    python scripts/bot_session.py ps_disclosed --out DIR [--participants N] [--case normal]
                                  [--set ai_policy=llm --set llm_base_url=http://127.0.0.1:8080/v1]

Writes DIR/<app>_custom.csv (as `otree test --export` names it) and DIR/<app>_<name>.csv for every
other `custom_export_<name>`, and DIR/page_times.csv (oTree's page-times export: every page each
participant completed, with its app and round). Without --case it plays the first bot case.

Many sessions in one oTree process (what the test suite uses, see tests/otree_bots.py):

    python scripts/bot_session.py --plan PLAN.json

PLAN.json = {"extra_configs": [session-config dicts added to the configs of settings.py, test-only],
             "jobs": [{"id": ..., "config": ..., "participants": N or null, "case": name, index or null
                       (null: every bot case, one session each, like `otree test`), "overrides": {...},
                       "out": folder for the job's exports or null}],
             "results": path of the results JSON}
Each job's exports hold only that job's sessions. A failing job (its traceback is in the results) does
not stop the others. The results file is rewritten after every job.

Like `otree test`, it uses an in-memory database; unlike it, it never loads a devserver's ./db.sqlite3.
"""
import argparse
import csv
import json
import os
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def parse_override(text: str):
    """key=value, the value read as JSON when it parses (numbers, true/false), else as a string."""
    if '=' not in text:
        raise argparse.ArgumentTypeError(f'--set takes key=value, got {text!r}')
    key, raw = text.split('=', 1)
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    return key.strip(), value


def export_file_name(app: str, function_name: str) -> str:
    suffix = function_name[len('custom_export'):].lstrip('_')
    return f'{app}_{suffix}.csv' if suffix else f'{app}_custom.csv'


def setup_otree(extra_configs=()):
    """Import the project under oTree with an empty in-memory database; add test-only session configs."""
    os.chdir(ROOT)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    os.environ['OTREE_IN_MEMORY'] = '1'
    import otree.database

    # `otree test` would load a devserver's ./db.sqlite3 into the in-memory DB; start empty instead.
    otree.database.DB_FILE = os.devnull
    from otree.main import setup

    setup()
    if extra_configs:
        from otree import settings
        from otree.session import SESSION_CONFIGS_DICT, get_session_configs_dict

        added = get_session_configs_dict(list(extra_configs), settings.SESSION_CONFIG_DEFAULTS)
        clash = added.keys() & SESSION_CONFIGS_DICT.keys()
        if clash:
            raise ValueError(f'extra session configs clash with settings.py: {sorted(clash)}')
        unknown = {app for config in added.values() for app in config['app_sequence']} - set(settings.OTREE_APPS)
        if unknown:
            raise ValueError(f'extra session configs use apps no config in settings.py uses: {sorted(unknown)}')
        SESSION_CONFIGS_DICT.update(added)


def case_numbers(config_name: str, case) -> list:
    """Bot case numbers to play: `case` is a name, an index, or None for every case (like `otree test`)."""
    from otree.common import get_bots_module
    from otree.session import SESSION_CONFIGS_DICT

    config = SESSION_CONFIGS_DICT[config_name]
    if case is None:
        return list(range(config.get_num_bot_cases()))
    if isinstance(case, int):
        return [case]
    # Case names are the game app's (the intro and exit apps' bots line up with them by index).
    from study.journey import game_app_name

    names = [getattr(c, '__name__', c) for c in get_bots_module(game_app_name(config)).PlayerBot.cases]
    if case not in names:
        raise ValueError(f'unknown bot case {case!r} for {config_name}; cases: {names}')
    return [names.index(case)]


def run_sessions(config_name: str, participants=None, case=None, overrides=None) -> list:
    """Create one session per bot case and play it with oTree's bots; the sessions' ids, in order."""
    import otree.session
    from otree.bots.runner import run_bots
    from otree.database import session_scope
    from otree.session import SESSION_CONFIGS_DICT

    if config_name not in SESSION_CONFIGS_DICT:
        raise KeyError(f'no session config named {config_name!r}')
    config = SESSION_CONFIGS_DICT[config_name]
    session_ids = []
    for case_number in case_numbers(config_name, case):
        with session_scope():
            session = otree.session.create_session(
                config_name,
                num_participants=participants or config['num_demo_participants'],
                modified_session_config_fields=dict(overrides or {}),
            )
            session_ids.append(session.id)
        with session_scope():
            run_bots(session_ids[-1], case_number=case_number)
        print(f'Bots completed session ({config_name}, case {case_number})', flush=True)
    return session_ids


def write_exports(app_names, out: Path, session_ids=None) -> list:
    """Every custom export of the apps, limited to the given sessions (None: all), as oTree writes them."""
    import otree.export
    from otree.common import get_models_module
    from otree.database import dbq, session_scope
    from sqlalchemy.orm import joinedload

    out.mkdir(parents=True, exist_ok=True)
    written = []
    with session_scope():
        for app in app_names:
            models_module = get_models_module(app)
            Player = models_module.Player
            for name in sorted(otree.export.get_custom_export_functions(app)):
                if session_ids is None:
                    with open(out / export_file_name(app, name), 'w', newline='', encoding='utf8') as fp:
                        otree.export.custom_export_app(app, fp, function_name=name)
                else:  # otree.export.custom_export_app, for a set of sessions
                    query = dbq(Player).filter(Player.session_id.in_(session_ids)).order_by('id')
                    players = list(query.options(
                        joinedload(Player.participant, innerjoin=True),
                        joinedload(Player.group, innerjoin=True),
                        joinedload(Player.subsession, innerjoin=True),
                        joinedload(Player.session, innerjoin=True),
                    ))
                    for player in players:
                        player._is_frozen = False
                    rows = [[otree.export.sanitize_for_csv(cell) for cell in row]
                            for row in getattr(models_module, name)(players)]
                    with open(out / export_file_name(app, name), 'w', newline='', encoding='utf8') as fp:
                        csv.writer(fp).writerows(rows)
                written.append(export_file_name(app, name))
        written.append(write_page_times(out, session_ids))
    return written


def write_page_times(out: Path, session_ids=None) -> str:
    """oTree's page-times export (one row per page or wait page a participant completed), limited to the
    given sessions: it shows which pages of which rounds each participant passed."""
    import io

    import otree.export

    buffer = io.StringIO()
    otree.export.export_page_times(buffer)  # flushes oTree's in-memory buffer first
    rows = list(csv.reader(io.StringIO(buffer.getvalue())))
    codes = None if session_ids is None else set(session_codes(session_ids))
    column = rows[0].index('session_code')
    with open(out / 'page_times.csv', 'w', newline='', encoding='utf8') as fp:
        csv.writer(fp).writerows([rows[0]] + [r for r in rows[1:] if codes is None or r[column] in codes])
    return 'page_times.csv'


def session_codes(session_ids) -> list:
    from otree.database import session_scope
    from otree.models import Session

    with session_scope():
        return [Session.objects_get(id=i).code for i in session_ids]


def run_plan(plan_path: Path) -> int:
    plan = json.loads(Path(plan_path).read_text(encoding='utf8'))
    results_path = Path(plan['results'])
    results = {'finished': False, 'jobs': {}}

    def save():
        tmp = results_path.with_suffix('.tmp')
        tmp.write_text(json.dumps(results, indent=1), encoding='utf8')
        tmp.replace(results_path)

    try:
        setup_otree(plan.get('extra_configs', ()))
    except BaseException:
        results['setup_error'] = traceback.format_exc()
        save()
        raise
    from otree.database import db
    from otree.session import SESSION_CONFIGS_DICT

    for job in plan['jobs']:
        started = time.monotonic()
        result = dict(ok=False, error='', session_codes=[], exports=[], out=job.get('out'))
        try:
            ids = run_sessions(job['config'], job.get('participants'), job.get('case'), job.get('overrides'))
            result['session_codes'] = session_codes(ids)
            if job.get('out'):
                apps = SESSION_CONFIGS_DICT[job['config']]['app_sequence']
                result['exports'] = write_exports(apps, Path(job['out']), ids)
            result['ok'] = True
        except Exception:
            result['error'] = traceback.format_exc()
            print(f"job {job['id']} failed:\n{result['error']}", file=sys.stderr, flush=True)
            try:  # leave a clean database session for the next job
                db.rollback()
            except Exception:
                pass
            db.new_session()
        result['seconds'] = round(time.monotonic() - started, 2)
        results['jobs'][job['id']] = result
        save()
    results['finished'] = True
    save()
    return 0


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ['--plan']:
        if len(argv) != 2:
            sys.exit('usage: bot_session.py --plan PLAN.json')
        return run_plan(Path(argv[1]).resolve())
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='session config name from settings.py')
    parser.add_argument('--out', required=True, help='folder for the CSV exports')
    parser.add_argument('--participants', type=int, help='default: the config\'s num_demo_participants')
    parser.add_argument('--case', help='bot case name (default: the first case)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], type=parse_override,
                        help='session-config override key=value (repeatable)')
    args = parser.parse_args(argv)
    out = Path(args.out).resolve()

    setup_otree()
    from otree.session import SESSION_CONFIGS_DICT

    if args.config not in SESSION_CONFIGS_DICT:
        parser.error(f'unknown session config {args.config!r}; configs: {sorted(SESSION_CONFIGS_DICT)}')
    try:
        ids = run_sessions(args.config, args.participants, args.case or 0, dict(args.overrides))
    except ValueError as error:
        if 'unknown bot case' in str(error):
            parser.error(str(error))
        raise
    write_exports(SESSION_CONFIGS_DICT[args.config]['app_sequence'], out, ids)
    print(f'exports written to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
