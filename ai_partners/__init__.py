"""AI partners for the partner-selection and trust games (independent of oTree).

    from ai_partners import make_partner, GameView, AIDecision, broker

    partner = make_partner(session_config, f"{session_code}-g{group}-A1")
    view = GameView(role='candidate', round_number=3, num_rounds=10, endowment=10, multiplier=3,
                    max_message_length=200, identity='disclosed', shown_as='AI', history=[...])
    partner.write_message(view)                      # AIDecision, value: str
    partner.decide_return(view, amount_sent=10, amount_received=30, counterpart='sel-abc')  # value: int

    broker.start(key, partner, 'message', view)      # returns at once
    broker.collect(key, partner, 'message', view, deadline_seconds=5.0)  # AIDecision, never raises on
                                                                         # partner failure: fallback

Policies: 'scripted' (seeded, presets 'prosocial_ai' and 'human_like') and 'llm' (any OpenAI-compatible
chat-completions endpoint, falling back to the scripted preset with a recorded reason).
AI selectors (selector seats the server plays): ai_partners.selectors, policies 'random', 'learner' (the
rules of ai_partners.learning) and 'llm'.
See docs/ai_partners.md.
"""
from .background import DecisionBroker, broker
from .config import DEFAULTS as CONFIG_DEFAULTS
from .config import PartnerSettings, read_settings, seat_settings
from .decision import AI_DECISION_COLUMNS, AIDecision, GameView
from .partners import Partner, ScriptedPartner, make_partner
from .scripted import PRESETS, Preset
from .selectors import SelectorCard, SelectorSettings, SelectorView, make_selector

__all__ = [
    'make_partner', 'GameView', 'AIDecision', 'broker',
    'AI_DECISION_COLUMNS', 'CONFIG_DEFAULTS', 'DecisionBroker', 'Partner', 'PartnerSettings',
    'PRESETS', 'Preset', 'ScriptedPartner', 'read_settings', 'seat_settings',
    'make_selector', 'SelectorCard', 'SelectorSettings', 'SelectorView',
]
