"""One partner_selection bot session for the leak test (tests/test_leaks.py): every page each selector
sees before the debrief, as HTML, written to a JSON file.

    python tests/leak_harness.py CONFIG --out FILE [--swap] [--inject feedback_line|round_bonus]

Two runs of one config differ only in which candidates are AI: `--swap` makes the human candidates'
seats A1, A2, … and the AI candidates H1, H2, … (game_logic.society's ids and kind_of inverted), so each
card keeps its letter, its place and its decisions while its true kind flips. In false_label the card's
badge (the treatment's deliberate, kind-derived label) is kept as the first run showed it. Decisions are made equal
for both kinds: every candidate, human bot or AI, writes the same message and returns half of what it
received (the AI partner is replaced by a mirror of the human bots), and the selector bots pick cards and
guess "AI"/"Human" from the card position and round only, never from kinds. Session and participant codes
come from a fixed seed, so card letters, card orders and the paid belief round are drawn alike. Whatever
differs between the two runs' pages is therefore computed from true kinds.

Pages: the HTML of every page the bots were served (oTree's bots read each page as a browser would)
up to the debrief, and, because bots never see wait pages or the AI gates (with bots the app collects AI
decisions at once), every page of the selector's page sequence before the debrief rendered afterwards
from the final database (the gates regardless of is_displayed, as their display depends on timing).

`--inject` puts back a leak, for the companion tests: `feedback_line` today's "Correct AI/human guesses"
line on the Feedback page; `round_bonus` the belief bonus inside each round's payoff.
"""
import argparse
import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / 'scripts'))

LEAKY_FEEDBACK_LINE = ('  {{ if elicit_beliefs }}<p>Correct AI/human guesses: {{ player.belief_n_correct }} '
                       '(+{{ player.belief_bonus_earned }} points).</p>{{ endif }}\n')
MIRROR_MESSAGE = None  # the human bots' message, set once the app's bots module is imported


def normalize(html: str) -> str:
    """Page HTML without what changes from one serving to the next (timers)."""
    html = re.sub(r'\s+', ' ', html)
    html = re.sub(r'(remaining_?\w*|timeout_seconds|data-remaining\w*)(["\']?\s*[:=]\s*["\']?)[0-9.]+', r'\1\2#', html,
                  flags=re.I)
    return html


def swap_kinds():
    from game_logic import society

    ids = society.candidate_ids
    society.candidate_ids = lambda num_human, num_ai: dict(human=ids(0, num_human)['ai'], ai=ids(num_ai, 0)['human'])
    society.kind_of = lambda candidate_id: 'human' if candidate_id.startswith('A') else 'ai'
    # false_label's badge is the one thing the treatment computes from the kind, by design (the opposite):
    # the swapped run keeps each card's badge as the first run showed it, so only leaks can differ.
    badge_for = society.badge_for
    society.badge_for = lambda kind, identity: badge_for(kind, 'disclosed' if identity == 'false_label' else identity)


def mirror_ai_partners():
    """AI candidates decide as the human bots do: the bots' message, half of what they received back."""
    from ai_partners import partners
    from ai_partners.config import PartnerSettings, read_settings

    import partner_selection.round_flow as round_flow
    import partner_selection.tests as bots

    class MirrorPartner(partners.ScriptedPartner):
        def scripted_value(self, decision, view, amount_sent=0, amount_received=0, counterpart=''):
            return bots.MESSAGE if decision == 'message' else bots.expected_return(amount_received)

    round_flow.make_partner = lambda config, key: MirrorPartner(
        config if isinstance(config, PartnerSettings) else read_settings(config), key)


def kind_blind_bots():
    """The app's bots (normal case) with choices and guesses that never look at kinds."""
    from otree.api import Submission  # noqa: F401

    import partner_selection.tests as bots

    class LeakBot(bots.PlayerBot):
        cases = ['normal']

        def choose(self):
            player = self.player
            labels = player.offered_display_labels.split(';')
            rng = random.Random(f'{self.participant.code}-{self.round_number}')
            data = dict(choice=labels[rng.randrange(len(labels))])
            if self.session.config['selector_chooses_amount']:
                data['amount'] = rng.randint(0, self.session.config['endowment'])
            if bots.elicits_beliefs(player):
                for position in range(1, len(labels) + 1):
                    data[f'belief_{position}'] = 'ai' if (position + self.round_number) % 2 else 'human'
            yield bots.Choose, data

        def check_feedback(self):
            yield bots.Feedback

        def finish(self):
            pass  # the debrief is the exit app's, after the pages this check covers

    bots.PlayerBot = LeakBot


def inject(leak: str):
    if leak == 'feedback_line':
        from otree.templating.loader import ibis_loader
        from otree.templating.template import Template

        name = 'partner_selection/Feedback.html'
        text = (ROOT / name).read_text(encoding='utf8')
        anchor = '  <p>Your points this round:'
        assert anchor in text, 'the Feedback template changed: update the injected leak'
        text = text.replace(anchor, LEAKY_FEEDBACK_LINE + anchor, 1)
        ibis_loader.cache[name] = Template(text, name, template_type='Page')
    elif leak == 'round_bonus':
        from dataclasses import replace

        import partner_selection.round_flow as round_flow

        rules = round_flow.round_rules
        round_flow.round_rules = lambda obj: replace(rules(obj), belief_bonus_in_round_payoff=True)
    else:
        raise ValueError(f'unknown leak {leak!r}')


def record_bot_pages(record: list):
    from otree.bots import bot

    served = bot.ParticipantBot.response

    def remember(self, response):
        served.fset(self, response)
        record.append((self.participant_code, self.path, str(self.html)))

    bot.ParticipantBot.response = property(served.fget, remember)


def rendered_pages(session_code: str, participant) -> list:
    """(page, round, html) of every page of the participant's sequence before the debrief, rendered now."""
    from otree.api import WaitPage
    from otree.lookup import _get_session_lookups

    from study.ai_decisions import AIGate

    import exit as exit_app

    pages = []
    for index, lookup in sorted(_get_session_lookups(session_code).items()):
        page = lookup.page_class
        if page is exit_app.Debrief:
            break
        if lookup.round_number > participant.session.config['num_rounds']:
            continue
        participant._index_in_pages = index
        view = page.instantiate_without_request()
        view.set_attributes(participant)
        if not (issubclass(page, AIGate) or view._is_displayed()):
            continue
        if issubclass(page, WaitPage):
            context = view.get_context_data()
        else:
            context = view.get_context_data(form=view.get_form_or_mockform())
        response = view.render_page(context)
        pages.append((page.__name__, lookup.round_number, normalize(response.body.decode('utf8'))))
    return pages


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--out', required=True)
    parser.add_argument('--swap', action='store_true')
    parser.add_argument('--inject', default='')
    parser.add_argument('--participants', type=int, default=None)
    parser.add_argument('--set', action='append', default=[], help='key=value session-config override')
    args = parser.parse_args()

    from bot_session import parse_override, run_sessions, setup_otree

    setup_otree()
    import otree.common

    otree.common.rng.seed(20250713)  # the same session and participant codes in every run
    if args.swap:
        swap_kinds()
    mirror_ai_partners()
    kind_blind_bots()
    if args.inject:
        inject(args.inject)
    served = []
    record_bot_pages(served)
    overrides = dict(parse_override(item) for item in args.set)
    [session_id] = run_sessions(args.config, args.participants, 0, overrides)

    from otree.database import session_scope
    from otree.models import Session

    import partner_selection as app

    out = dict(selectors={}, truth={})
    with session_scope():
        session = Session.objects_get(id=session_id)
        for participant in session.get_participants():
            if participant.ps_role != app.C.SELECTOR or participant.excluded:
                continue
            pages = []
            for code, path, html in served:
                if code != participant.code:
                    continue
                if '/Debrief/' in path:
                    break
                name = path.strip('/').split('/')[3] if path.count('/') >= 4 else path
                pages.append(('served:' + name, path, normalize(html)))
            rendered = rendered_pages(session.code, participant)
            out['selectors'][participant.code] = pages + [('rendered:' + n, str(r), h) for n, r, h in rendered]
            players = [p for p in participant.get_players()
                       if isinstance(p, app.Player) and p.round_number <= session.config['num_rounds']]
            out['truth'][participant.code] = dict(
                chosen_kinds=[app.society.kind_of(p.chosen_candidate_id) if p.chosen_candidate_id else ''
                              for p in players],
                belief_n_correct=[p.belief_n_correct for p in players],
                treatment=players[0].treatment,
            )
    Path(args.out).write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding='utf8')


if __name__ == '__main__':
    main()
