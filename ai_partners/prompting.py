"""Build the chat messages the LLM policy sends, from the text files in ai_partners/prompts/.

The files are string.Template texts ($name placeholders, so JSON braces need no escaping):
  system.txt            persona + rules of the role + "answer in JSON"
  persona_default.txt   the persona when the session config's llm_persona is empty
  rules_candidate.txt   partner_selection rules, as the candidates' instructions give them
  rules_trustee.txt     trust_game rules, as the trustee's instructions give them
  message.txt           round, label shown to others, own history; asks for {"message": ...}
  return.txt            the same plus the amount received; asks for {"return": ...}
Only what a human in the same seat sees goes in: rules, round, the label others see, the partner's
own history. Never other candidates' messages, returns or identities.
"""
from __future__ import annotations

import functools
import json
from pathlib import Path
from string import Template

from .decision import GameView

PROMPT_DIR = Path(__file__).with_name('prompts')


@functools.lru_cache(maxsize=None)
def load_template(name: str) -> Template:
    """The prompt file name (without .txt) as a string.Template."""
    return Template((PROMPT_DIR / f'{name}.txt').read_text(encoding='utf-8').strip())


def label_text(view: GameView) -> str:
    """How the partner is labelled to the people deciding about it, in words."""
    audience, see, are = (('The selectors', 'see', 'are') if view.role == 'candidate'
                          else ('Your partner', 'sees', 'is'))
    if view.shown_as == 'AI':
        return f'{audience} {see} you labelled as an AI.'
    if view.shown_as == 'Human':
        return f'{audience} {see} you labelled as a human.'
    return f'{audience} {are} not told whether you are a human or an AI.'


def history_text(view: GameView) -> str:
    """The partner's own past rounds, one line each (keys missing from a row are left out)."""
    if not view.history:
        return '(none yet: this is your first round)'
    return '\n'.join(_history_line(view.role, row) for row in view.history)


def _history_line(role: str, row: dict) -> str:
    parts = []
    # A trustee is always paired, so "chosen" only means something to a candidate.
    if 'times_chosen' in row and role == 'candidate':
        chosen = row['times_chosen']
        parts.append(f"{chosen} selector{'s' if chosen != 1 else ''} chose you")
    if 'sent' in row:
        sender = 'your partner' if role == 'trustee' else 'the selectors'
        parts.append(f"{sender} sent you {row['sent']} points")
    if 'received' in row:
        parts.append(f"you received {row['received']} points")
    if 'returned' in row:
        parts.append(f"you returned {row['returned']}")
    body = ', '.join(parts) if parts else 'no interaction'
    return f"- Round {row.get('round', '?')}: {body}."


def _common(view: GameView, persona: str) -> dict:
    return dict(
        persona=persona.strip() or load_template('persona_default').template,
        num_rounds=view.num_rounds,
        round_number=view.round_number,
        endowment=view.endowment,
        multiplier=view.multiplier,
        max_received=view.endowment * view.multiplier,
        max_message_length=view.max_message_length,
        label_text=label_text(view),
        history_text=history_text(view),
    )


def system_prompt(view: GameView, persona: str = '') -> str:
    values = _common(view, persona)
    values['rules'] = load_template(f'rules_{view.role}').substitute(values)
    return load_template('system').substitute(values)


def message_messages(view: GameView, persona: str = '') -> list[dict]:
    """Chat messages asking for this round's message."""
    return [dict(role='system', content=system_prompt(view, persona)),
            dict(role='user', content=load_template('message').substitute(_common(view, persona)))]


def return_messages(view: GameView, amount_sent: int, amount_received: int, persona: str = '') -> list[dict]:
    """Chat messages asking how much of amount_received to return."""
    values = _common(view, persona)
    values.update(amount_sent=amount_sent, amount_received=amount_received,
                  sender_text='A selector who chose you' if view.role == 'candidate' else 'Your partner')
    return [dict(role='system', content=system_prompt(view, persona)),
            dict(role='user', content=load_template('return').substitute(values))]


def prompt_record(messages: list[dict]) -> str:
    """The chat messages as stored in the data: JSON, exactly what was sent."""
    return json.dumps(messages, ensure_ascii=False)
