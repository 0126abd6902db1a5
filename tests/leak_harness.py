"""One bot session for the leak test (tests/test_leaks.py): every page each selector (partner_selection)
or trustor (trust_game) sees before the debrief, as HTML, written to a JSON file.

    python tests/leak_harness.py CONFIG --out FILE [--swap] [--case NAME] [--inject LEAK]

Two runs of one config differ only in which partners are AI; every decision stays the same.

partner_selection: `--swap` makes the human candidates' seats A1, A2, … and the AI candidates H1, H2, …
(game_logic.society's ids and kind_of inverted), so each card keeps its letter, its place and its
decisions while its true kind flips. In false_label the card's badge (the treatment's deliberate,
kind-derived label) is kept as the first run showed it. Every candidate, human bot or AI, writes the same
message and returns half of what it received (the AI partner is replaced by a mirror of the human bots),
and the selector bots pick cards and guess "AI"/"Human" from the card position and round only.

trust_game: `--swap` plays the config with the other kind of trustee (partner=human ↔ ai; two
participants, trustor and trustee, or one trustor with an AI); the AI trustee returns what the human
trustee bot returns (tests of trust_game: seeded by session, round and amount), so every trustor's
decisions and outcomes are the same. Only the trustor, who is the one kept unaware, is compared.

Session and participant codes come from a fixed seed, so card letters, card orders and the paid belief
round are drawn alike. Whatever differs between the two runs' pages is therefore computed from true kinds.

Pages: the HTML of every page the bots were served (oTree's bots read each page as a browser would)
up to the debrief, and every page of the participant's sequence before the debrief rendered afterwards
from the final database, as a browser participant's sequence (bots skip the gates, which need the
page's script, and wait on pages a browser never displays): wait pages and gates included, the gates
regardless of is_displayed (the messages gate's display depends on timing, not on kinds).

Prompts: for every selector and round, the chat messages an LLM AI selector would get in that seat
(`prompts`), and every AI selector's logged choice with its prompt (`ai_selector_calls`).

`--inject` puts back a leak, for the companion tests: `feedback_line` today's "Correct AI/human guesses"
line on the Feedback page; `round_bonus` the belief bonus inside each round's payoff; `send_wait`
trust_game's earlier SendWaitPage, shown to the trustor only when the trustee is human.
"""
import argparse
import json
from dataclasses import replace
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
    if leak == 'send_wait':
        import trust_game

        trust_game.SendWaitPage.is_displayed = staticmethod(
            lambda player: trust_game.is_played_round(player) and player.group.partner_kind == 'human')
    elif leak == 'feedback_line':
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

    from study import ai_decisions
    from study.ai_decisions import AIGate

    import exit as exit_app

    ai_decisions.has_bots = lambda group: False  # the sequence a browser participant passes
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


def mirror_ai_trustees(case: str):
    """AI trustees return what the human trustee bots return (and the trustor bots expect just that)."""
    from ai_partners import partners
    from ai_partners.config import PartnerSettings, read_settings

    import trust_game
    import trust_game.tests as bots

    class MirrorTrustee(partners.ScriptedPartner):
        def scripted_value(self, decision, view, amount_sent=0, amount_received=0, counterpart=''):
            session_code = self.candidate_key.split('-', 1)[0]
            return bots.human_return(case, session_code, view.round_number, amount_received)

        def decide_return(self, view, amount_sent, amount_received, counterpart=''):
            if bots.return_times_out(case, view.round_number, 'human'):
                # Times out where the human bot's page does (its fallback would return something: not used).
                decision = super().decide_return(view, amount_sent, amount_received, counterpart)
                return replace(decision, value=amount_received // 2, fallback=True, fallback_reason='timeout')
            return super().decide_return(view, amount_sent, amount_received, counterpart)

    trust_game.make_partner = lambda config, key: MirrorTrustee(
        config if isinstance(config, PartnerSettings) else read_settings(config), key)
    bots.expected_ai_return = lambda bot, round_number, sent: bots.human_return(
        bot.case, bot.session.code, round_number, sent * bot.session.config['multiplier'])
    times_out = bots.return_times_out
    bots.return_times_out = lambda case_name, round_number, partner: times_out(case_name, round_number, 'human')


def play(args, game: str) -> int:
    """Set the run up for the game (swap, mirrored AI, kind-blind bots, an injected leak); the session id."""
    from bot_session import parse_override, run_sessions
    from otree.session import SESSION_CONFIGS_DICT

    overrides = dict(parse_override(item) for item in args.set)
    participants = args.participants
    case = args.case
    if game == 'trust_game':
        partner = overrides.get('partner', SESSION_CONFIGS_DICT[args.config]['partner'])
        if args.swap:
            partner = dict(human='ai', ai='human')[partner]
        overrides['partner'] = partner
        participants = participants or (2 if partner == 'human' else 1)
        case = case or 'random'
        mirror_ai_trustees(case)
    else:
        if args.swap:
            swap_kinds()
        mirror_ai_partners()
        kind_blind_bots()
        case = case or 0
    if args.inject:
        inject(args.inject)
    [session_id] = run_sessions(args.config, participants, case, overrides)
    return session_id


def wait_page_names(app_names) -> set:
    import importlib

    from otree.api import WaitPage

    return {page.__name__ for app in app_names for page in importlib.import_module(app).page_sequence
            if issubclass(page, WaitPage)}


def watched(game: str, participant) -> bool:
    """The participants whose pages must not depend on true kinds: selectors, trustors."""
    if participant.vars.get('excluded'):
        return False
    if game == 'trust_game':
        return participant.journey_role == 'selector'  # the trustor (trust_game.leave_after_last_round)
    return participant.ps_role == 'selector'


def truth_of(game: str, participant, num_rounds: int) -> dict:
    """The true kinds behind what the participant saw (the runs must really differ in them)."""
    import partner_selection as ps
    import trust_game

    if game == 'trust_game':
        players = [p for p in participant.get_players()
                   if isinstance(p, trust_game.Player) and p.round_number <= num_rounds]
        return dict(chosen_kinds=[p.group.partner_kind for p in players], belief_n_correct=[],
                    treatment=players[0].group.identity)
    players = [p for p in participant.get_players() if isinstance(p, ps.Player) and p.round_number <= num_rounds]
    return dict(
        chosen_kinds=[ps.society.kind_of(p.chosen_candidate_id) if p.chosen_candidate_id else '' for p in players],
        belief_n_correct=[p.belief_n_correct for p in players],
        treatment=players[0].treatment,
    )


def seat_prompts(game: str, participant, num_rounds: int) -> list:
    """[round, prompt] for every played round of a human selector: the chat messages an LLM AI selector would
    get in that seat (round_flow.selector_view, the one view every AI selector gets), to compare with the
    seat's Choose page (tests/test_leaks.py)."""
    if game == 'trust_game':
        return []
    import partner_selection as ps
    from ai_partners.selectors import choice_messages
    from study.config import ai_settings_of

    players = [p for p in participant.get_players() if isinstance(p, ps.Player) and p.round_number <= num_rounds]
    return [[p.round_number, choice_messages(ps.selector_view(p), ai_settings_of(p).llm_persona)]
            for p in players if p.offered_candidate_ids]


def ai_selector_calls(game: str, session) -> list:
    """Every AI selector's choice as logged (round, selector, prompt, parsed choice)."""
    if game == 'trust_game':
        return []
    import partner_selection as ps

    groups = {p.group.id: p.group for pp in session.get_participants() for p in pp.get_players()
              if isinstance(p, ps.Player)}
    calls = [c for g in groups.values() for c in ps.AICall.filter(group=g) if c.decision == 'choice']
    return sorted([c.round_number, c.candidate_id, c.prompt, c.parsed_value] for c in calls)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('config')
    parser.add_argument('--out', required=True)
    parser.add_argument('--swap', action='store_true')
    parser.add_argument('--case', default=None, help='bot case name (default: the first; trust_game: random)')
    parser.add_argument('--inject', default='')
    parser.add_argument('--participants', type=int, default=None)
    parser.add_argument('--set', action='append', default=[], help='key=value session-config override')
    args = parser.parse_args()

    from bot_session import setup_otree

    setup_otree()
    import otree.common
    from otree.session import SESSION_CONFIGS_DICT

    from study.journey import game_app_name

    otree.common.rng.seed(20250713)  # the same session and participant codes in every run
    game = game_app_name(SESSION_CONFIGS_DICT[args.config])
    served = []
    record_bot_pages(served)
    session_id = play(args, game)

    from otree.database import session_scope
    from otree.models import Session

    # A bot is served a wait page while it waits (how often depends on the other bots' order): those are
    # compared as rendered, once each, like every page of the sequence.
    wait_pages = wait_page_names(SESSION_CONFIGS_DICT[args.config]['app_sequence'])
    out = dict(selectors={}, truth={}, prompts={})
    with session_scope():
        session = Session.objects_get(id=session_id)
        for participant in session.get_participants():
            if not watched(game, participant):
                continue
            pages = []
            for code, path, html in served:
                if code != participant.code:
                    continue
                if '/Debrief/' in path:
                    break
                name = path.strip('/').split('/')[3] if path.count('/') >= 4 else path
                if name not in wait_pages:
                    pages.append(('served:' + name, path, normalize(html)))
            rendered = rendered_pages(session.code, participant)
            out['selectors'][participant.code] = pages + [('rendered:' + n, str(r), h) for n, r, h in rendered]
            out['truth'][participant.code] = truth_of(game, participant, session.config['num_rounds'])
            out['prompts'][participant.code] = seat_prompts(game, participant, session.config['num_rounds'])
        out['ai_selector_calls'] = ai_selector_calls(game, session)
    Path(args.out).write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding='utf8')


if __name__ == '__main__':
    main()
