"""The participant's journey around a game app: intro (consent, rules, checks) → the game → exit
(questionnaire, debrief, payment). Both games use it; this module holds what the three apps share.

Who leaves for the exit app, and when (oTree's app_after_this_page, so nobody walks through the pages of
rounds they will not play): anyone excluded in the intro (no consent, failed comprehension or attention
check), anyone left over when groups form (remainder = leave), a human candidate dropped for inactivity,
and everyone after the last played round. `participant.exclusion_reason` says why; `participant.played`
whether the person played the game (questionnaire and debrief are for those who did).
"""
import re
import string
from pathlib import Path

from game_logic.questionnaire import QuestionnaireError, load_items
from game_logic.session_config import ConfigError

from .config import config_of
from .text import escape_text

INTRO_APP, EXIT_APP = 'intro', 'exit'

# participant.exclusion_reason -> what the payment page tells the participant
EXCLUSION_REASONS = {
    'no_consent': 'You did not give your consent, so you did not take part in the game.',
    'comprehension_failed': 'The answers to the comprehension questions were not right within the attempts '
                            'allowed, so you did not take part in the game.',
    'attention_failed': 'The attention check was not passed, so you did not take part in the game.',
    'left_over': 'Not enough participants arrived to form a complete group with you, so you did not take '
                 'part in the game.',
    'dropped': 'You did not respond in several rounds in a row, so you were taken out of the game.',
}
CONSENT_PLACEHOLDERS = ('study_contact', 'ethics_approval', 'study_duration_minutes', 'participation_fee')
_PROJECT = Path(__file__).resolve().parent.parent


def game_app_name(config) -> str:
    """The game app of a session config's app_sequence (the one that is neither intro nor exit)."""
    return next(app for app in config['app_sequence'] if app not in (INTRO_APP, EXIT_APP))


def game_app(session) -> str:
    return game_app_name(session.config)


def check_app_sequence(session):
    """Both games run as intro → game → exit; anything else fails at session creation."""
    sequence = list(session.config['app_sequence'])
    if len(sequence) != 3 or sequence[0] != INTRO_APP or sequence[2] != EXIT_APP:
        raise ConfigError(f"session config {session.config['name']!r}: app_sequence must be "
                          f"['intro', <game>, 'exit'], not {sequence}")


def project_path(name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else _PROJECT / path


def consent_paragraphs(config, participation_fee: str) -> list[str]:
    """The consent file's paragraphs with the placeholders filled in, escaped for the page.

    Raises ConfigError for a missing file or an unknown placeholder (at session creation)."""
    path = project_path(config.consent_file)
    try:
        text = path.read_text(encoding='utf-8')
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f'consent_file {config.consent_file!r}: cannot read it ({error})') from None
    lines = [line for line in text.splitlines() if not line.lstrip().startswith('#')]
    values = {name: str(getattr(config, name, '')) for name in CONSENT_PLACEHOLDERS}
    values['participation_fee'] = participation_fee
    for name in ('study_contact', 'ethics_approval'):
        values[name] = values[name] or '(not given)'
    used = {field for _, field, _, _ in string.Formatter().parse(text) if field}
    unknown = sorted(used - set(CONSENT_PLACEHOLDERS))
    if unknown:
        raise ConfigError(f'consent_file {config.consent_file!r}: unknown placeholder(s) {unknown}; '
                          f'known: {", ".join(CONSENT_PLACEHOLDERS)}')
    paragraphs = re.split(r'\n\s*\n', '\n'.join(lines).strip())
    return [escape_text(p.format(**values).replace('\n', ' ')) for p in paragraphs if p.strip()]


def questionnaire_items(config) -> list:
    """The questionnaire's items (empty when it is off), read from its file; ConfigError for a bad file."""
    if not config.questionnaire:
        return []
    try:
        return load_items(project_path(config.questionnaire_file))
    except QuestionnaireError as error:
        raise ConfigError(f'questionnaire_file: {error}') from None


# The items by session code, read once: the pages ask for them several times per request, and a session
# keeps the items it was created with (an edit of the file mid-session would shift the answer fields).
_ITEMS = {}


def remember_items(session, config) -> list:
    """Read and check the items at session creation and keep them for the session."""
    _ITEMS[session.code] = questionnaire_items(config)
    return _ITEMS[session.code]


def session_items(obj) -> list:
    """The items of a player's (or group's) session; read again only after a server restart."""
    code = obj.session.code
    if code not in _ITEMS:
        _ITEMS[code] = questionnaire_items(config_of(obj))
    return _ITEMS[code]


def exclude(participant, reason: str):
    """Route a participant out of the study (to the exit app at their next step)."""
    assert reason in EXCLUSION_REASONS, reason
    participant.excluded = True
    participant.exclusion_reason = reason


def peek(participant, field: str, default=None):
    """A participant field's value (PARTICIPANT_FIELDS, a scalar) read without marking the participant changed.

    oTree 6's participant.vars, behind every participant-field attribute, flags the whole pickled vars as
    modified on each read: reading the roles of a group's members wrote all their rows back at the end of the
    request (measured: 7.5 participant UPDATEs per page submission in partner_selection). Writes go through
    the attribute as usual; a value read here must not be changed in place."""
    return participant._vars.get(field, default)


def is_out(participant) -> bool:
    """Excluded or dropped: the game has nothing more for this participant."""
    return bool(peek(participant, 'excluded') or peek(participant, 'dropped'))


def leave_if_out(player, upcoming_apps):
    """app_after_this_page of pages where a participant may be routed out."""
    if is_out(player.participant):
        return EXIT_APP


def finish_game(participant, exit_vars: dict):
    """The game is over for this participant: keep what the exit app's debrief and payment show
    (plain values only; the game computes them, the exit app includes the game's own snippets)."""
    participant.played = True
    participant.exit_vars = exit_vars
