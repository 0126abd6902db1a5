"""What one headless run plays: the session config the apps read, plus the engine's own fields.

The session-config part is parsed by `game_logic.session_config.parse` (same types, defaults and ranges as
in an oTree session), except two fields the engine sets itself: `num_selectors` (a society may have
thousands of selectors; the app's 100 and its 20 return fields bound browser pages, not the rules) and
`num_rounds` (not bound to the apps' OTREE_MAX_ROUNDS). The export of the configuration carries the values
actually played.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Mapping
from urllib.parse import urlparse

from ai_partners.scripted import PRESETS, Preset
from ai_partners.learning import MODELS
from game_logic import session_config
from game_logic.session_config import ConfigError, SessionConfig

__all__ = ['PopulationConfig', 'SELECTOR_POLICIES', 'CANDIDATE_POLICIES', 'LLM_SELECTOR_FALLBACKS', 'ENGINE_FIELDS',
           'from_mapping']

# Selector policies: analysis.learning_models' rules (random = uniform over the cards), or an LLM endpoint
# (ai_partners.selectors' llm policy: the prompt of a live AI selector seat).
SELECTOR_POLICIES = (*MODELS, 'llm')
# An AI candidate seat decides by its scripted preset or by the LLM endpoint (the preset is then its fallback).
CANDIDATE_POLICIES = ('scripted', 'llm')
# What an llm selector's faulty choice becomes: a uniform card, or a learner of that model (selector_params).
LLM_SELECTOR_FALLBACKS = ('random', 'rescorla_wagner', 'ewa')

# Fields of PopulationConfig that are not session-config fields, with their meaning (docs/population.md).
ENGINE_FIELDS = {
    'name': 'run name, written as config_name in every export row',
    'session_code': "the run's session code (default: 'pop' + seed)",
    'groups': 'mini-societies (oTree groups) played side by side',
    'selectors_per_group': 'selectors in each group (the society size; any number from 1)',
    'rounds': 'rounds played (not bound to the apps\' 20-round limit)',
    'selector_policy': f'how selectors choose: one of {SELECTOR_POLICIES}',
    'selector_params': 'parameters of the selector policy, e.g. {alpha = 0.3, beta = 8, bias = 0} '
                       '(missing: the model\'s declared init)',
    'ai_presets': 'scripted presets of the AI candidates A1, A2, … (cycled; default: [ai_preset]); not with the '
                  'session fields ai_candidate_mix / compositions, which give every seat its policy per group',
    'human_preset': 'scripted preset of the human-like candidates H1, H2, … (default human_like)',
    'custom_presets': 'extra presets by name: {name = {return_fraction_mean, return_fraction_sd, '
                      'message_length_mean, message_length_sd, style}}',
    'perceive_ai_above': 'without a badge (hidden) a selector takes a card whose message has more than this '
                         'many characters for an AI (its learned values and its belief guesses use that)',
    'choice_seconds': 'seconds_on_choice_page written for every decision (agents do not read pages)',
    'seed': 'seed of the selectors\' choices (the scripted candidates use ai_seed, as in the app)',
    'ai_policies': f'policy of the AI candidates A1, A2, … (cycled; each {CANDIDATE_POLICIES}; default: '
                   '[ai_policy]); an llm seat falls back to its preset, flagged',
    'llm_selector_fallback': f'what a faulty llm selector choice becomes: one of {LLM_SELECTOR_FALLBACKS} '
                             '(a learner plays selector_params; default rescorla_wagner)',
    'llm_base_urls': 'several endpoints (e.g. one per server process): call i of a round goes to '
                     'llm_base_urls[i % n] in seat order (default: [llm_base_url])',
    'llm_concurrency': 'LLM calls in flight at once (a thread pool; default 4)',
}


@dataclass(frozen=True)
class PopulationConfig:
    """One run: `session` (the typed session config, num_selectors / num_rounds as played) plus the
    engine's fields (ENGINE_FIELDS)."""

    session: SessionConfig
    name: str = 'population'
    session_code: str = ''
    groups: int = 1
    selectors_per_group: int = 3
    rounds: int = 10
    selector_policy: str = 'rescorla_wagner'
    selector_params: Mapping = field(default_factory=dict)
    ai_presets: tuple = ()
    human_preset: str = 'human_like'
    custom_presets: Mapping = field(default_factory=dict)
    perceive_ai_above: int = 80
    choice_seconds: float = 0.0
    seed: int = 0
    ai_policies: tuple = ()
    llm_selector_fallback: str = 'rescorla_wagner'
    llm_base_urls: tuple = ()
    llm_concurrency: int = 4

    def __post_init__(self):
        problems = []
        for name in ('groups', 'selectors_per_group', 'rounds'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f'{name} must be a whole number >= 1, got {value!r}')
        if self.selector_policy not in SELECTOR_POLICIES:
            problems.append(f'selector_policy must be one of {SELECTOR_POLICIES}, got {self.selector_policy!r}')
        elif self.learning_model in MODELS:
            declared = MODELS[self.learning_model]().params
            unknown = set(self.selector_params) - set(declared) - {'q0'}
            if unknown:
                problems.append(f'selector_params {sorted(unknown)} are not parameters of {self.learning_model} '
                                f'(it has {list(declared)}, and q0)')
        problems += llm_problems(self)
        problems += composition_problems(self)
        presets = self.presets
        for name in (*self.ai_preset_names, self.human_preset):
            if name not in presets:
                problems.append(f'unknown preset {name!r}; known: {sorted(presets)}')
        if not self.session_code:
            object.__setattr__(self, 'session_code', f'pop{self.seed:05d}')
        if problems:
            raise ConfigError('population config: ' + '; '.join(problems))

    @property
    def learning_model(self) -> str:
        """The learning rule the selectors play: the policy, or an llm selector's fallback."""
        return self.llm_selector_fallback if self.selector_policy == 'llm' else self.selector_policy

    @property
    def ai_policy_names(self) -> tuple:
        return tuple(self.ai_policies) or (self.session.ai_policy,)

    def ai_policy_of(self, index: int) -> str:
        """Policy of AI candidate A{index} (1-based): the list cycled."""
        names = self.ai_policy_names
        return names[(index - 1) % len(names)]

    @property
    def uses_composition(self) -> bool:
        """The session fields ai_candidate_mix / compositions give every AI seat its policy, per group."""
        return self.session.composition_rotation != ['']

    def ai_entries(self, composition: str) -> list:
        """(preset or 'llm', intention honesty or None) per AI candidate A1, A2, … of a group playing
        `composition` (an entry of session.composition_rotation); '' -> ai_presets / ai_policies, cycled."""
        if composition:
            return self.session.ai_candidate_entries(composition)
        return [('llm' if self.ai_policy_of(i) == 'llm' else self.ai_preset_of(i), None)
                for i in range(1, self.session.num_ai_candidates + 1)]

    @property
    def uses_llm(self) -> bool:
        """Some agent of the run calls the LLM endpoint."""
        has_llm_candidate = any(name == 'llm' for mix in self.session.composition_rotation
                                for name, _ in self.ai_entries(mix))
        return self.selector_policy == 'llm' or has_llm_candidate

    @property
    def base_urls(self) -> tuple:
        return tuple(self.llm_base_urls) or (self.session.llm_base_url,)

    @property
    def presets(self) -> dict:
        """ai_partners' presets plus the custom ones (a custom one may replace a built-in name)."""
        out = dict(PRESETS)
        for name, spec in self.custom_presets.items():
            out[name] = spec if isinstance(spec, Preset) else Preset(name=name, **dict(spec))
        return out

    @property
    def ai_preset_names(self) -> tuple:
        return tuple(self.ai_presets) or (self.session.ai_preset,)

    def ai_preset_of(self, index: int) -> str:
        """Preset of AI candidate A{index} (1-based): the list cycled."""
        names = self.ai_preset_names
        return names[(index - 1) % len(names)]

    @property
    def n_selectors(self) -> int:
        return self.groups * self.selectors_per_group

    def describe(self) -> dict:
        """The engine's fields as plain values (the run's manifest, population.json)."""
        out = {name: getattr(self, name) for name in ENGINE_FIELDS}
        out['ai_presets'] = list(self.ai_preset_names)
        out['selector_params'] = dict(self.selector_params)
        out['ai_policies'] = list(self.ai_policy_names)
        out['llm_base_urls'] = list(self.base_urls)
        out['custom_presets'] = {n: dataclasses.asdict(p) if isinstance(p, Preset) else dict(p)
                                 for n, p in self.custom_presets.items()}
        return out


def composition_problems(config: PopulationConfig) -> list:
    """The session's composition fields checked against the run (session_config.parse saw one selector)."""
    problems = []
    c = config.session
    if config.uses_composition and (config.ai_presets or config.ai_policies):
        problems.append('ai_presets / ai_policies and ai_candidate_mix / compositions both name the AI seats\' '
                        'policies: give one of them')
    return problems


def check_capacity(config: PopulationConfig) -> None:
    """candidate_capacity must seat every selector of a group (session_config.parse saw one selector). Not in
    __post_init__: the engine builds a one-group copy of the config with every selector in it."""
    c = config.session
    if c.candidate_capacity and c.candidate_capacity * c.num_candidates < config.selectors_per_group:
        raise ConfigError(f'population config: candidate_capacity × (num_human_candidates + num_ai_candidates) must '
                          f'seat every selector of a group ({config.selectors_per_group}), got '
                          f'{c.candidate_capacity} × {c.num_candidates}')


def llm_problems(config: PopulationConfig) -> list:
    """What is wrong with the LLM part of a config (empty: nothing), in words naming the field."""
    problems = []
    bad = [p for p in config.ai_policy_names if p not in CANDIDATE_POLICIES]
    if bad:
        problems.append(f'ai_policies must each be one of {CANDIDATE_POLICIES}, got {bad}')
    if config.llm_selector_fallback not in LLM_SELECTOR_FALLBACKS:
        problems.append(f'llm_selector_fallback must be one of {LLM_SELECTOR_FALLBACKS}, '
                        f'got {config.llm_selector_fallback!r}')
    concurrency = config.llm_concurrency
    if not isinstance(concurrency, int) or isinstance(concurrency, bool) or not 1 <= concurrency <= 256:
        problems.append(f'llm_concurrency must be a whole number from 1 to 256, got {concurrency!r}')
    if isinstance(config.llm_base_urls, str):
        problems.append('llm_base_urls must be a list of URLs (one endpoint: llm_base_url)')
    else:
        for url in config.llm_base_urls:
            scheme = urlparse(url).scheme if isinstance(url, str) else ''
            if scheme not in ('http', 'https'):
                # The value itself is not echoed: a URL may carry user:password@ (as ai_partners.config).
                problems.append(f'llm_base_urls: every entry must be an http:// or https:// URL, got one with '
                                f'scheme {scheme!r}')
    if config.uses_llm and not config.llm_base_urls:
        scheme = urlparse(config.session.llm_base_url).scheme
        if scheme not in ('http', 'https'):
            problems.append(f'llm_base_url must be an http:// or https:// URL, got one with scheme {scheme!r}')
    return problems


def from_mapping(values: Mapping) -> PopulationConfig:
    """A PopulationConfig from one flat mapping: session-config fields and engine fields side by side
    (as in a TOML/JSON file or a sweep cell). Unknown keys raise ConfigError (a typo is not a default)."""
    values = dict(values)
    known = set(session_config.FIELDS_BY_NAME) | set(ENGINE_FIELDS) | {'ai_share', 'num_candidates'}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f'population config: unknown field(s) {unknown}')
    # Convenience of sweeps: an AI share of a fixed number of candidates.
    if 'ai_share' in values:
        share = float(values.pop('ai_share'))
        total = int(values.pop('num_candidates', session_config.FIELDS_BY_NAME['num_ai_candidates'].default
                               + session_config.FIELDS_BY_NAME['num_human_candidates'].default))
        if not 0 <= share <= 1:
            raise ConfigError(f'population config: ai_share must be in 0..1, got {share}')
        values['num_ai_candidates'] = int(round(share * total))
        values['num_human_candidates'] = total - values['num_ai_candidates']
    elif 'num_candidates' in values:
        raise ConfigError('population config: num_candidates is read only with ai_share')
    engine = {k: values.pop(k) for k in list(values) if k in ENGINE_FIELDS}
    # The engine sets these two itself (module docstring); parse() checks every other field as the app does.
    selectors = engine.get('selectors_per_group', values.pop('num_selectors', 3))
    rounds = engine.get('rounds', values.pop('num_rounds', 10))
    engine['selectors_per_group'], engine['rounds'] = selectors, rounds
    parsed = session_config.parse(dict(values, num_selectors=1, num_rounds=1), num_rounds_max=1)
    if isinstance(selectors, int) and isinstance(rounds, int):
        parsed = dataclasses.replace(parsed, num_selectors=selectors, num_rounds=rounds)
    for name in ('ai_presets', 'ai_policies', 'llm_base_urls'):
        if name in engine and not isinstance(engine[name], str):
            engine[name] = tuple(engine[name])
    config = PopulationConfig(session=parsed, **engine)
    check_capacity(config)
    return config
