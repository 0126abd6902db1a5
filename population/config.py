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

from ai_partners.scripted import PRESETS, Preset
from ai_partners.learning import MODELS
from game_logic import session_config
from game_logic.session_config import ConfigError, SessionConfig

__all__ = ['PopulationConfig', 'SELECTOR_POLICIES', 'ENGINE_FIELDS', 'from_mapping']

# Selector policies: analysis.learning_models' rules (random = uniform over the cards).
SELECTOR_POLICIES = tuple(MODELS)

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
    'ai_presets': 'scripted presets of the AI candidates A1, A2, … (cycled; default: [ai_preset])',
    'human_preset': 'scripted preset of the human-like candidates H1, H2, … (default human_like)',
    'custom_presets': 'extra presets by name: {name = {return_fraction_mean, return_fraction_sd, '
                      'message_length_mean, message_length_sd, style}}',
    'perceive_ai_above': 'without a badge (hidden) a selector takes a card whose message has more than this '
                         'many characters for an AI (its learned values and its belief guesses use that)',
    'choice_seconds': 'seconds_on_choice_page written for every decision (agents do not read pages)',
    'seed': 'seed of the selectors\' choices (the scripted candidates use ai_seed, as in the app)',
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

    def __post_init__(self):
        problems = []
        for name in ('groups', 'selectors_per_group', 'rounds'):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                problems.append(f'{name} must be a whole number >= 1, got {value!r}')
        if self.selector_policy not in SELECTOR_POLICIES:
            problems.append(f'selector_policy must be one of {SELECTOR_POLICIES}, got {self.selector_policy!r}')
        else:
            declared = MODELS[self.selector_policy]().params
            unknown = set(self.selector_params) - set(declared) - {'q0'}
            if unknown:
                problems.append(f'selector_params {sorted(unknown)} are not parameters of {self.selector_policy} '
                                f'(it has {list(declared)}, and q0)')
        presets = self.presets
        for name in (*self.ai_preset_names, self.human_preset):
            if name not in presets:
                problems.append(f'unknown preset {name!r}; known: {sorted(presets)}')
        if not self.session_code:
            object.__setattr__(self, 'session_code', f'pop{self.seed:05d}')
        if problems:
            raise ConfigError('population config: ' + '; '.join(problems))

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
        out['custom_presets'] = {n: dataclasses.asdict(p) if isinstance(p, Preset) else dict(p)
                                 for n, p in self.custom_presets.items()}
        return out


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
    if 'ai_presets' in engine:
        engine['ai_presets'] = tuple(engine['ai_presets'])
    return PopulationConfig(session=parsed, **engine)
