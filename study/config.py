"""The typed session config as pages read it: built and validated once, in creating_session."""
from otree.api import BaseConstants

from ai_partners import PartnerSettings, read_settings
from game_logic import session_config
from game_logic.session_config import ConfigError, SessionConfig, max_rounds

class GameConstants(BaseConstants):
    """What both games' `C` share: groups and roles come from the session config (so oTree's own
    grouping is not used), NUM_ROUNDS is only the upper bound (OTREE_MAX_ROUNDS, default 20;
    game_logic.session_config.max_rounds): the session config's num_rounds decides how many are played;
    and the form fields' bounds."""

    PLAYERS_PER_GROUP = None
    NUM_ROUNDS = max_rounds()
    # Bounds of the whole-number form fields, from the session config's limits: at most the largest
    # endowment is sent; what is received (and the comprehension answers) is at most that times the largest
    # multiplier. The pages' own checks bound them by this session's endowment and multiplier.
    MAX_SENT = int(session_config.FIELDS_BY_NAME['endowment'].high)
    MAX_RECEIVED = MAX_SENT * int(session_config.FIELDS_BY_NAME['multiplier'].high)


# Parsed configs by session code: a page reads attributes, never raw dict keys with fallbacks.
_CONFIGS = {}
_AI_SETTINGS = {}


def build_config(session, num_rounds_max: int) -> SessionConfig:
    """Validate every session-config field (AI settings included) and keep the typed result.

    Raises ConfigError naming each bad field; called from creating_session, so a bad value fails when
    the session is created, never on a page after participants consented.
    """
    config = session_config.parse(session.config, num_rounds_max=num_rounds_max)
    try:
        ai_settings = read_settings(partner_config(session.config, config))
    except ValueError as error:
        raise ConfigError(str(error)) from None
    _CONFIGS[session.code] = config
    _AI_SETTINGS[session.code] = ai_settings
    return config


def config_of(obj) -> SessionConfig:
    """The typed config of a player, group or subsession's session."""
    session = obj.session
    try:
        return _CONFIGS[session.code]
    except KeyError:  # a server restarted since the session was created: it was valid then
        config = _CONFIGS[session.code] = session_config.parse(session.config, num_rounds_max=10**9)
        return config


def ai_settings_of(obj) -> PartnerSettings:
    """The AI-partner part of the config (policy, model, endpoint, …)."""
    session = obj.session
    try:
        return _AI_SETTINGS[session.code]
    except KeyError:
        settings = _AI_SETTINGS[session.code] = read_settings(partner_config(session.config, config_of(obj)))
        return settings


def partner_config(raw, config: SessionConfig) -> dict:
    """The raw config the AI-partner settings are read from. A composition with an llm seat reads as ai_policy
    llm, so the endpoint is checked and participants are told of a language model (true of some AI
    candidates); each seat then plays its own entry (ai_partners.seat_settings)."""
    raw = dict(raw)
    if any(name == 'llm' for mix in config.composition_rotation if mix for name, _ in config.ai_candidate_entries(mix)):
        raw['ai_policy'] = 'llm'
    return raw


def is_played_round(player) -> bool:
    """Rounds after the config's num_rounds exist (NUM_ROUNDS) but are skipped."""
    return player.round_number <= config_of(player).num_rounds


def is_last_round(player) -> bool:
    return player.round_number == config_of(player).num_rounds


def page_timeout(player):
    """Decision pages: page_timeout_seconds, 0 = none."""
    return config_of(player).page_timeout_seconds or None


def info_timeout(player):
    """Pages that only inform (instructions, results): info_page_timeout_seconds, 0 = none."""
    return config_of(player).info_page_timeout_seconds or None


def game_vars(player) -> dict:
    """The trust-game numbers every page of both games may show."""
    config = config_of(player)
    return dict(endowment=config.endowment, multiplier=config.multiplier,
                max_received=config.endowment * config.multiplier, num_rounds=config.num_rounds)
