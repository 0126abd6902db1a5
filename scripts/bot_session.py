"""Run one session of oTree bots in-process and write every custom export, with config overrides.

`otree test --export` writes only each app's `custom_export`; studies (and our tests) also need
`custom_export_candidates` and `custom_export_ai_calls`, and sometimes a config tweak
(e.g. an LLM endpoint) without editing settings.py.

    python scripts/bot_session.py ps_disclosed --out DIR [--participants N] [--case normal]
                                  [--set ai_policy=llm --set llm_base_url=http://127.0.0.1:8080/v1]

Writes DIR/<app>_custom.csv (as `otree test --export` names it) and DIR/<app>_<name>.csv for every
other `custom_export_<name>`. Like `otree test`, it uses an in-memory database.
"""
import argparse
import json
import os
import sys
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


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('config', help='session config name from settings.py')
    parser.add_argument('--out', required=True, help='folder for the CSV exports')
    parser.add_argument('--participants', type=int, help='default: the config\'s num_demo_participants')
    parser.add_argument('--case', help='bot case name (default: the first case)')
    parser.add_argument('--set', dest='overrides', action='append', default=[], type=parse_override,
                        help='session-config override key=value (repeatable)')
    args = parser.parse_args(argv)

    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    os.environ['OTREE_IN_MEMORY'] = '1'
    import otree.database

    # `otree test` would load a devserver's ./db.sqlite3 into the in-memory DB; start empty instead.
    otree.database.DB_FILE = os.devnull
    from otree.main import setup

    setup()
    import otree.export
    import otree.session
    from otree.bots.runner import run_bots
    from otree.common import get_bots_module
    from otree.database import session_scope
    from otree.session import SESSION_CONFIGS_DICT

    config = SESSION_CONFIGS_DICT[args.config]
    case_number = 0
    if args.case:
        cases = [get_bots_module(app).PlayerBot.cases for app in config['app_sequence']]
        names = [getattr(c, '__name__', c) for c in cases[0]]
        if args.case not in names:
            parser.error(f'unknown case {args.case!r}; cases: {names}')
        case_number = names.index(args.case)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with session_scope():
        session = otree.session.create_session(
            args.config,
            num_participants=args.participants or config['num_demo_participants'],
            modified_session_config_fields=dict(args.overrides),
        )
        session_id = session.id
    with session_scope():
        run_bots(session_id, case_number=case_number)
    with session_scope():
        for app in config['app_sequence']:
            for name in sorted(otree.export.get_custom_export_functions(app)):
                with open(out / export_file_name(app, name), 'w', newline='', encoding='utf8') as fp:
                    otree.export.custom_export_app(app, fp, function_name=name)
    print(f'exports written to {out}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
