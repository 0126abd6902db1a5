"""oTree 6 project settings: session configs for the human–AI partner-selection platform.

Every treatment parameter is a session-config field, defined once in game_logic/session_config.py.
Secrets come from the environment only; see `warn_about_missing_secrets`.
"""
import os
import sys
import warnings
from os import environ

from game_logic import session_config

# Shared by every session config; a config overrides only what differs. Every field, its default, allowed
# values and meaning: game_logic/session_config.py (and docs/configuration.md, generated from it).
SESSION_CONFIG_DEFAULTS = dict(doc="", **session_config.defaults())

# Every game runs inside the participant's journey: intro (consent, rules, checks) → game → exit
# (questionnaire, debrief, payment); study/journey.py.
_TRUST = dict(app_sequence=['intro', 'trust_game', 'exit'], num_demo_participants=4)
_PS = dict(app_sequence=['intro', 'partner_selection', 'exit'], num_demo_participants=5)

SESSION_CONFIGS = [
    dict(
        name='trust_human',
        display_name='Trust game: human trustee (assigned partner)',
        partner='human',
        identity='disclosed',
        **_TRUST,
    ),
    dict(
        name='trust_ai_disclosed',
        display_name='Trust game: AI trustee, disclosed',
        partner='ai',
        identity='disclosed',
        **_TRUST,
    ),
    dict(
        name='trust_ai_hidden',
        display_name='Trust game: AI trustee, hidden',
        partner='ai',
        identity='hidden',
        **_TRUST,
    ),
    dict(
        name='trust_ai_false_label',
        display_name='Trust game: AI trustee labelled human',
        partner='ai',
        identity='false_label',
        **_TRUST,
    ),
    dict(
        name='ps_disclosed',
        display_name='Partner selection: identity disclosed',
        identity='disclosed',
        **_PS,
    ),
    dict(
        name='ps_hidden',
        display_name='Partner selection: identity hidden (with beliefs)',
        identity='hidden',
        elicit_beliefs=True,
        **_PS,
    ),
    dict(
        name='ps_false_label',
        display_name='Partner selection: false labels',
        identity='false_label',
        elicit_beliefs=True,
        **_PS,
    ),
    dict(
        name='ps_ai_selectors',
        display_name='Partner selection: hidden, with 2 AI selectors (a learner and a random chooser) beside people',
        identity='hidden',
        elicit_beliefs=True,
        num_ai_selectors=2,
        ai_selector_policies='learner,random',
        **_PS,
    ),
    dict(
        name='ps_online',
        display_name='Partner selection online: groups form by arrival time (room "online")',
        grouping='arrival',
        arrival_max_wait_seconds=0,  # bots arrive together; real studies: see README
        treatments='hidden,disclosed',
        app_sequence=_PS['app_sequence'],
        num_demo_participants=10,
    ),
    dict(
        name='ps_compositions',
        display_name='Partner selection: disclosed, AI candidates of two kinds in each group, two mixes '
                     'rotated over groups (compositions)',
        identity='disclosed',
        # group 1: a prosocial AI that states its intended return and keeps it 90 % of the time, and a
        # human-like AI keeping it half the time; group 2: the same two kinds without stated intentions.
        # One identity, so that groups differ in the mix only (a second rotated list would cross with it).
        compositions='prosocial_ai:0.9,human_like:0.5;human_like,prosocial_ai',
        app_sequence=_PS['app_sequence'],
        num_demo_participants=10,
    ),
    dict(
        name='ps_balanced',
        display_name='Partner selection: hidden/disclosed/false_label balanced over groups',
        treatments='hidden,disclosed,false_label',
        elicit_beliefs=True,
        app_sequence=_PS['app_sequence'],
        num_demo_participants=15,
    ),
]

# partner_selection keeps roles, treatment and exclusion/dropout state on the participant across rounds;
# the journey (study/journey.py) what the exit app shows.
PARTICIPANT_FIELDS = [
    'ps_role', 'candidate_id', 'treatment', 'excluded', 'exclusion_reason', 'dropped', 'timeout_streak', 'arrived_at',
    'prolific_study_id', 'prolific_session_id',  # online room: from the study URL (see README)
    'played', 'exit_vars', 'journey_role', 'journey_identity',
]
SESSION_FIELDS = ['ps_groups_formed']

LANGUAGE_CODE = 'en'
REAL_WORLD_CURRENCY_CODE = 'USD'
USE_POINTS = True
POINTS_CUSTOM_NAME = 'points'

ROOMS = [
    dict(
        name='lab',
        display_name='Lab (participant labels from _rooms/lab.txt)',
        participant_label_file='_rooms/lab.txt',
    ),
    dict(
        name='online',
        display_name='Online (Prolific: label from PROLIFIC_PID)',
        # Takes PROLIFIC_PID as the participant label and keeps STUDY_ID / SESSION_ID for the consent page.
        welcome_page='_rooms/online_welcome.html',
    ),
]

ADMIN_USERNAME = 'admin'
ADMIN_PASSWORD = environ.get('OTREE_ADMIN_PASSWORD')
# The development key only signs development sessions; production takes OTREE_SECRET_KEY.
SECRET_KEY = environ.get('OTREE_SECRET_KEY') or 'development-only-not-secret'

DEMO_PAGE_INTRO_HTML = """
Human–AI partner-selection experiments. <code>trust_*</code>: assigned partner;
<code>ps_*</code>: chosen partner in a mini-society of human and AI candidates.
"""

REQUIRED_PRODUCTION_ENV = ('OTREE_AUTH_LEVEL', 'OTREE_ADMIN_PASSWORD', 'OTREE_SECRET_KEY', 'OTREE_REST_KEY')


def missing_production_secrets(env=environ) -> list:
    """Names of the environment variables a real study needs but are unset (or AUTH_LEVEL not STUDY)."""
    missing = [name for name in REQUIRED_PRODUCTION_ENV if not env.get(name)]
    if env.get('OTREE_AUTH_LEVEL') and env.get('OTREE_AUTH_LEVEL') != 'STUDY':
        missing.append('OTREE_AUTH_LEVEL=STUDY (is %s)' % env.get('OTREE_AUTH_LEVEL'))
    return missing


def warn_about_missing_secrets():
    """Shout when a production server starts without its secrets: the admin and data would be open."""
    is_production = 'prodserver' in ' '.join(sys.argv) or environ.get('OTREE_PRODUCTION') not in (None, '', '0')
    missing = missing_production_secrets()
    if is_production and missing:
        message = (
            '\n' + '!' * 78 + '\nSECURITY: production server started without ' + ', '.join(missing)
            + '.\nThe admin pages, data export and REST API may be open to anyone. '
            'See README, "Hosting a real study".\n' + '!' * 78
        )
        print(message, file=sys.stderr)
        warnings.warn(message)


warn_about_missing_secrets()
