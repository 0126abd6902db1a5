"""The AI-partner part of an oTree session config, read once into a typed, validated object."""
from __future__ import annotations

import re
from dataclasses import dataclass, replace
from urllib.parse import urlparse

from game_logic.session_config import AI_POLICIES as POLICY_NAMES
from game_logic.session_config import FIELDS_BY_NAME

ENV_NAME = re.compile(r'[A-Za-z_][A-Za-z0-9_]*')

# The AI-partner fields of the one session-config definition (game_logic.session_config) and their
# defaults; a config missing a key gets these.
DEFAULTS = {name: FIELDS_BY_NAME[name].default for name in (
    'ai_policy', 'ai_preset', 'ai_seed', 'llm_base_url', 'llm_model', 'llm_api_key_env', 'llm_temperature',
    'llm_seed', 'llm_max_tokens', 'llm_timeout_seconds', 'llm_persona', 'max_message_length',
)}


@dataclass(frozen=True)
class PartnerSettings:
    """The session-config fields an AI partner uses (see DEFAULTS for their defaults)."""

    ai_policy: str
    ai_preset: str
    ai_seed: int
    llm_base_url: str
    llm_model: str
    llm_api_key_env: str
    llm_temperature: float
    llm_seed: int | None
    llm_max_tokens: int
    llm_timeout_seconds: float
    llm_persona: str
    max_message_length: int
    # A scripted seat of a composition (ai_candidate_mix) that states its intended return and keeps it with this
    # probability; None: no stated intention (the default).
    intention_honesty: float | None = None

    @property
    def ai_description(self) -> str:
        """What participants are told an AI agent is: true of the policy in use (no language model is
        mentioned when the decisions are scripted)."""
        if self.ai_policy == 'llm':
            return 'a computer program powered by a large language model'
        return 'a computer program'

    @property
    def endpoint_host(self) -> str:
        """host[:port] of the LLM endpoint, for the data (never the path or any credentials)."""
        parsed = urlparse(self.llm_base_url)
        host = parsed.hostname or ''
        return f"{host}:{parsed.port}" if parsed.port else host


def read_settings(config) -> PartnerSettings:
    """Session config (a dict or oTree's session.config) -> PartnerSettings.

    Missing keys take DEFAULTS; wrong types or values raise ValueError naming the field.
    """
    from .scripted import PRESETS  # late import: scripted does not depend on config

    source = dict(DEFAULTS)
    source.update({k: v for k, v in dict(config or {}).items() if k in DEFAULTS})
    problems = []

    def as_type(name, kind):
        value = source[name]
        if kind is str:
            if value is None:
                return ''
            if not isinstance(value, str):
                problems.append(f"{name} must be a string, got {value!r}")
            return str(value)
        try:
            if kind is int and isinstance(value, float) and not value.is_integer():
                raise ValueError
            if isinstance(value, bool):
                raise ValueError
            return kind(value)
        except (TypeError, ValueError):
            problems.append(f"{name} must be a number ({kind.__name__}), got {value!r}")
            return kind(DEFAULTS[name]) if DEFAULTS[name] is not None else None

    values = dict(
        ai_policy=as_type('ai_policy', str),
        ai_preset=as_type('ai_preset', str),
        ai_seed=as_type('ai_seed', int),
        llm_base_url=as_type('llm_base_url', str).strip(),
        llm_model=as_type('llm_model', str),
        llm_api_key_env=as_type('llm_api_key_env', str).strip(),
        llm_temperature=as_type('llm_temperature', float),
        # None (or '') means: send no seed to the endpoint.
        llm_seed=None if source['llm_seed'] in (None, '') else as_type('llm_seed', int),
        llm_max_tokens=as_type('llm_max_tokens', int),
        llm_timeout_seconds=as_type('llm_timeout_seconds', float),
        llm_persona=as_type('llm_persona', str),
        max_message_length=as_type('max_message_length', int),
    )
    if values['ai_policy'] not in POLICY_NAMES:
        problems.append(f"ai_policy must be one of {POLICY_NAMES}, got {values['ai_policy']!r}")
    if values['ai_preset'] not in PRESETS:
        problems.append(f"ai_preset must be one of {tuple(PRESETS)}, got {values['ai_preset']!r}")
    if values['max_message_length'] < 1:
        problems.append("max_message_length must be at least 1")
    if values['llm_timeout_seconds'] <= 0:
        problems.append("llm_timeout_seconds must be positive")
    if values['llm_max_tokens'] < 1:
        problems.append("llm_max_tokens must be at least 1")
    if not 0 <= values['llm_temperature'] <= 2:
        problems.append("llm_temperature must be within [0, 2]")
    try:
        scheme = urlparse(values['llm_base_url']).scheme
    except ValueError:  # e.g. an unclosed IPv6 bracket
        scheme = ''
    if values['ai_policy'] == 'llm' and scheme not in ('http', 'https'):
        # The value itself is not echoed: a URL may carry user:password@.
        problems.append(f"llm_base_url must be an http:// or https:// URL, got one with scheme {scheme!r}")
    if values['llm_api_key_env'] and not ENV_NAME.fullmatch(values['llm_api_key_env']):
        # A pasted key here would sit in the session config (and the data) and never be sent.
        problems.append("llm_api_key_env must be the NAME of an environment variable (letters, digits, _), "
                        "not the key itself")
    if problems:
        raise ValueError("AI partner session config: " + "; ".join(problems))
    return PartnerSettings(**values)



def seat_settings(settings: PartnerSettings, entry: tuple) -> PartnerSettings:
    """One AI candidate's settings in a composition: `entry` is (preset name or 'llm', intention honesty or
    None), as game_logic.session_config.SessionConfig.ai_candidate_entries gives it. An llm seat keeps the
    session's ai_preset as its fallback."""
    name, honesty = entry
    if name == 'llm':
        return replace(settings, ai_policy='llm', intention_honesty=None)
    return replace(settings, ai_policy='scripted', ai_preset=name, intention_honesty=honesty)
