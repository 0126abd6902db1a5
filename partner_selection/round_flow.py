"""partner_selection's round, step by step at the oTree boundary: the wait pages' after_all_players_arrive
functions and the AI gates' collect/settle. The rules themselves are game_logic/round_engine.py; this module
reads the models into its plain data and writes its outcome back. It uses the app's models, so the app
imports it after defining them.
"""
import json
import time

from ai_partners import GameView, make_partner, seat_settings
from ai_partners.selectors import PastRound, SelectorCard, SelectorSettings, SelectorView, make_selector, resolve_params
from game_logic import round_engine, session_config, society
from game_logic.round_engine import HumanCandidateSeat, Return, RoundRules, SelectorRound
from study import ai_decisions
from study.text import clean_text, escape_text
from study.config import ai_settings_of, config_of

from study.journey import peek

from . import C, AICall, AISelector, Candidate, Group, Player, group_counts, is_selector, role_of


def round_rules(obj) -> RoundRules:
    config = config_of(obj)
    return RoundRules(
        endowment=config.endowment, multiplier=config.multiplier, candidate_base_pay=config.candidate_base_pay,
        selector_chooses_amount=config.selector_chooses_amount, belief_bonus_per_correct=config.belief_bonus,
        dropout_after_timeouts=config.dropout_after_timeouts, persistent_labels=config.persistent_candidate_labels,
        # The belief bonus is never part of a round's payoff (it would tell which cards were AI): pay_beliefs
        # adds it once, after the last played round.
        belief_bonus_in_round_payoff=False,
    )


def candidate_key(group: Group, candidate_id: str) -> str:
    return f'{group.session.code}-g{group.id_in_subsession}-{candidate_id}'


def ai_seat_settings(group: Group, candidate_id: str):
    """How AI candidate A<n> of the group decides: its entry of the group's composition (ai_composition)."""
    entries = config_of(group).ai_candidate_entries(group.ai_composition)
    return seat_settings(ai_settings_of(group), entries[int(candidate_id[1:]) - 1])


def ai_partner(group: Group, candidate_id: str):
    return make_partner(ai_seat_settings(group, candidate_id), candidate_key(group, candidate_id))


def ai_policy_label(group: Group, candidate_id: str) -> str:
    ai = ai_seat_settings(group, candidate_id)
    if ai.ai_policy == 'llm':
        return f'llm:{ai.llm_model}'
    honesty = '' if ai.intention_honesty is None else f':{ai.intention_honesty:g}'
    return f'scripted:{ai.ai_preset}{honesty}'


def round_candidates(group: Group) -> list:
    return sorted(Candidate.filter(group=group), key=lambda c: c.candidate_id)


def engine_candidates(group: Group) -> list:
    """The round's Candidate rows as the round engine's plain candidates."""
    return [round_engine.Candidate(c.candidate_id, c.kind, c.participant_code, c.active, c.dropped, False)
            for c in round_candidates(group)]


def ai_view(group: Group, candidate: Candidate) -> GameView:
    """What the AI candidate knows: the rules, the round, and only its own past interactions."""
    config = config_of(group)
    past = [
        c
        for r in range(1, group.round_number)
        for c in Candidate.filter(group=group.in_round(r), candidate_id=candidate.candidate_id)
    ]
    history = [
        dict(round=c.round_number, times_chosen=c.times_chosen, received=c.amount_received, returned=c.amount_returned)
        for c in sorted(past, key=lambda c: c.round_number)
    ]
    return GameView(
        role='candidate', round_number=group.round_number, num_rounds=config.num_rounds,
        endowment=config.endowment, multiplier=config.multiplier, max_message_length=config.max_message_length,
        identity=group.treatment, shown_as=society.badge_for('ai', group.treatment), history=history,
    )


def broker_key(group: Group, candidate_id: str, decision: str, counterpart: str = '') -> str:
    return f'{candidate_key(group, candidate_id)}-r{group.round_number}-{decision}-{counterpart}'


def start_round(group: Group):
    """Round start: the candidate pool (dropouts leave it), card letters, and the AI messages in the background."""
    config = config_of(group)
    seats = [
        HumanCandidateSeat(pp.candidate_id, pp.code, pp.timeout_streak, bool(pp.dropped), bool(pp.excluded))
        for pp in (p.participant for p in group.get_players()) if peek(pp, 'ps_role') == C.CANDIDATE
    ]
    participants = {p.participant.code: p.participant for p in group.get_players()}
    for seat in round_engine.round_candidates(seats, config.num_ai_candidates, round_rules(group)):
        if seat.newly_dropped:
            participants[seat.participant_code].dropped = True
        candidate = Candidate.create(
            group=group, candidate_id=seat.candidate_id, candidate_key=candidate_key(group, seat.candidate_id),
            kind=seat.kind, participant_code=seat.participant_code, round_number=group.round_number,
            policy='human' if seat.kind == 'human' else ai_policy_label(group, seat.candidate_id),
            active=seat.active, dropped=seat.dropped,
        )
        if seat.kind == 'ai':
            partner = ai_partner(group, seat.candidate_id)
            ai_decisions.start(broker_key(group, seat.candidate_id, 'message'), partner, 'message',
                               ai_view(group, candidate))
    group.ai_messages_requested_at = time.time()
    for selector_id in config.ai_selector_ids:
        settings = ai_selector_settings(group, selector_id)
        AISelector.create(group=group, round_number=group.round_number, selector_id=selector_id,
                          selector_key=candidate_key(group, selector_id), policy=settings.label,
                          params_json=settings.params_json, treatment=group.treatment)
    labels = round_engine.display_labels([c.candidate_id for c in round_candidates(group)], group.session.code,
                                         group.id_in_subsession, group.round_number, round_rules(group))
    group.display_labels = json.dumps(labels)


def collect_messages(group: Group):
    """Human messages are in; card orders are drawn; AI messages are collected if they are ready."""
    players_by_code = {p.participant.code: p for p in group.get_players()}
    for candidate in round_candidates(group):
        if candidate.kind == 'human':
            author = players_by_code[candidate.participant_code]
            candidate.message = author.field_maybe_none('message') or ''
            candidate.message_timed_out = author.message_timed_out
    try_collect_ai_messages(group, wait=ai_decisions.has_bots(group))
    labels = json.loads(group.display_labels)
    candidates = engine_candidates(group)
    for player in group.get_players():
        if is_selector(player):
            order = round_engine.draw_card_order(
                candidates, group.session.code, player.participant.code, group.round_number)
            player.offered_candidate_ids = ';'.join(order)
            player.offered_display_labels = ';'.join(labels[cid] for cid in order)


def try_collect_ai_messages(group: Group, wait: bool = False, force: bool = False) -> bool:
    """Store the AI candidates' messages once all are ready (or the deadline passed); never blocks people.

    Returns True when the messages are in. `wait` blocks until the deadline (bots only); `force`
    collects now, unfinished calls becoming flagged fallbacks. Messages of AI and human candidates
    are revealed together, so timing cannot tell them apart.
    """
    if group.ai_messages_collected:
        return True
    ai_candidates = [c for c in round_candidates(group) if c.kind == 'ai']
    keys = [broker_key(group, c.candidate_id, 'message') for c in ai_candidates]
    if not (wait or force or ai_decisions.ready(group, keys, group.ai_messages_requested_at)):
        return False
    for candidate, key in zip(ai_candidates, keys):
        decision = ai_decisions.collect(
            AICall, group, key, ai_partner(group, candidate.candidate_id), 'message', ai_view(group, candidate),
            candidate_id=candidate.candidate_id, requested_at=group.ai_messages_requested_at, wait=wait,
        )
        candidate.message = clean_text(ai_decisions.value_used(decision, 'message'))  # as a human's
        candidate.message_fallback = decision.fallback
        candidate.message_timed_out = ai_decisions.timed_out(decision)
    group.ai_messages_collected = True
    start_ai_choices(group)
    return True


# --- AI selectors: selector seats the server plays (ai_partners.selectors) ------------------------------

def ai_selectors(group: Group) -> list:
    """The group's AI selectors this round (AISelector rows), S1, S2, … in order."""
    if not config_of(group).num_ai_selectors:
        return []  # no query where the session has none (these are asked on most requests)
    return sorted(AISelector.filter(group=group), key=lambda s: int(s.selector_id[1:]))


def selector_seats(group: Group) -> list:
    """Every selector of the round, human (Player, in group order) and then AI (AISelector): the order of
    the choices, and so of a candidate's return decisions."""
    return [p for p in group.get_players() if is_selector(p)] + ai_selectors(group)


def selector_code(seat) -> str:
    """A selector's code in return slots, AI calls and exports: the participant code, or the AI selector's key."""
    return seat.selector_key if isinstance(seat, AISelector) else seat.participant.code


def ai_selector_settings(group: Group, selector_id: str) -> SelectorSettings:
    """How AI selector `selector_id` of the group decides (its parameters drawn once per key, reproducibly)."""
    config = config_of(group)
    policy = config.ai_selector_policy_of(int(selector_id[1:]))
    params = resolve_params(session_config.parse_selector_params(config.ai_selector_params), config.ai_selector_model,
                            config.ai_seed, candidate_key(group, selector_id))
    return SelectorSettings(
        policy=policy, model=config.ai_selector_model, params=params, fallback=config.ai_selector_fallback,
        perceive_ai_above=config.ai_selector_perceive_ai_above, ai_seed=config.ai_seed,
        llm=ai_settings_of(group) if policy == 'llm' else None)


def ai_selector_agent(seat: AISelector):
    return make_selector(ai_selector_settings(seat.group, seat.selector_id), seat.selector_key)


def previous_seats(seat) -> list:
    """The same selector's rows of the earlier rounds, in round order."""
    if isinstance(seat, AISelector):
        return [s for r in range(1, seat.round_number)
                for s in AISelector.filter(group=seat.group.in_round(r), selector_id=seat.selector_id)]
    return list(seat.in_previous_rounds())


def selector_cards(seat) -> tuple:
    """The seat's cards as its page shows them: letter, badge, message; no candidate id, no kind."""
    return tuple(SelectorCard(card.label, card.badge, card.message) for card in engine_cards(seat))


def selector_view(seat) -> SelectorView:
    """What a selector seat's pages show this round (Instructions' rules, Choose's cards and history, its
    earlier Choose and Feedback pages), for an AI selector; built alike for a human's seat (the prompt test
    compares it with the human's page)."""
    config = config_of(seat)
    counts = group_counts(seat.group)
    past = []
    for prev in previous_seats(seat):
        labels = dict(zip(prev.offered_candidate_ids.split(';'), prev.offered_display_labels.split(';')))
        past.append(PastRound(prev.round_number, selector_cards(prev), labels.get(prev.chosen_candidate_id, ''),
                              prev.amount_sent, prev.amount_returned))
    return SelectorView(
        round_number=seat.round_number, num_rounds=config.num_rounds, endowment=config.endowment,
        multiplier=config.multiplier, max_message_length=config.max_message_length,
        num_selectors=counts['num_selectors'], num_human=counts['num_human'], num_ai=counts['num_ai'],
        ai_description=ai_settings_of(seat).ai_description, identity_shown=seat.treatment != 'hidden',
        selector_chooses_amount=config.selector_chooses_amount,
        elicit_beliefs=round_engine.elicits_beliefs(config.elicit_beliefs, seat.treatment),
        belief_bonus=config.belief_bonus, belief_payment=config.belief_payment,
        persistent_labels=config.persistent_candidate_labels, cards=selector_cards(seat),
        history=[vars(row) for row in selector_history(seat)], past_rounds=past,
        candidate_capacity=config.candidate_capacity,
    )


def choice_key(group: Group, seat: AISelector) -> str:
    return f'{seat.selector_key}-r{group.round_number}-choice'


def start_ai_choices(group: Group):
    """Once every message is in: each AI selector's cards (its own random order) and its choice, in the
    background."""
    labels = json.loads(group.display_labels)
    candidates = engine_candidates(group)
    for seat in ai_selectors(group):
        order = round_engine.draw_card_order(candidates, group.session.code, seat.selector_key, group.round_number)
        seat.offered_candidate_ids = ';'.join(order)
        seat.offered_display_labels = ';'.join(labels[cid] for cid in order)
        ai_decisions.start(choice_key(group, seat), ai_selector_agent(seat), 'choice', selector_view(seat))
    group.ai_choices_requested_at = time.time()


def apply_ai_choice(seat: AISelector, decision):
    """An AI selector's decision (an AIDecision, a fault already replaced by its fallback) as a choice."""
    value, cards, rules = decision.value, engine_cards(seat), round_rules(seat)
    choice = round_engine.choose(seat.selector_key, cards, value['card'], value['amount'], rules)
    seat.choice, seat.chosen_candidate_id, seat.amount_sent = value['card'], choice.candidate_id, choice.amount_sent
    seat.choice_fallback = decision.fallback
    seat.seconds_on_choice_page = round(float(decision.latency_ms or 0) / 1000, 3)
    if round_engine.elicits_beliefs(config_of(seat).elicit_beliefs, seat.treatment):
        score = round_engine.score_beliefs(cards, value['beliefs'], rules)
        seat.belief_guesses, seat.belief_n_correct, seat.belief_bonus_earned = (
            score.guesses_text, score.n_correct, score.bonus)


def try_process_choices(group: Group, wait: bool = False, force: bool = False) -> bool:
    """Once every choice is in, human and AI (or the AI deadline passed): the return slots, and the AI
    returns started; never blocks people. `wait` blocks for the AI selectors (bots); `force` collects now,
    unfinished choices becoming the fallback policy's, flagged. Returns True when the choices are processed."""
    if group.choices_processed:
        return True
    if not try_collect_ai_messages(group, wait=wait, force=force):
        return False  # the AI selectors' choices start once every message is in
    seats = ai_selectors(group)
    keys = [choice_key(group, seat) for seat in seats]
    if not (wait or force or ai_decisions.ready(group, keys, group.ai_choices_requested_at)):
        return False
    for seat, key in zip(seats, keys):
        decision = ai_decisions.collect(
            AICall, group, key, ai_selector_agent(seat), 'choice', selector_view(seat),
            candidate_id=seat.selector_id, requested_at=group.ai_choices_requested_at, wait=wait,
        )
        apply_ai_choice(seat, decision)
    process_choices(group)
    group.choices_processed = True
    return True


def choices_arrived(group: Group):
    try_process_choices(group, wait=ai_decisions.has_bots(group))


def engine_cards(player: Player) -> tuple:
    """The selector's cards in display order (round_engine.Card: id, kind, letter, badge, raw message)."""
    candidates = {c.candidate_id: c for c in round_candidates(player.group)}
    order = [cid for cid in player.offered_candidate_ids.split(';') if cid]
    labels = dict(zip(order, player.offered_display_labels.split(';')))
    messages = {cid: candidates[cid].message for cid in order}
    return round_engine.make_cards(order, labels, messages, player.treatment)


def offered_cards(player: Player) -> list:
    """The cards as the Choose page and the export read them, the message escaped for the page."""
    return [
        dict(vars(card), message_html=escape_text(card.message), belief_field=f'belief_{card.position}')
        for card in engine_cards(player)
    ]


def market_cards(group: Group) -> list:
    """Every active candidate's card of the round as selectors saw it (letter, badge, escaped message) and
    how often it was chosen, in letter order: the candidates' market feedback (session config
    market_feedback). Nothing else about a candidate, so a human candidate learns of the AI ones only
    what the selectors were shown."""
    labels = json.loads(group.display_labels)
    treatment = group.treatment
    cards = [dict(label=labels[c.candidate_id], badge=society.badge_for(c.kind, treatment),
                  message_html=escape_text(c.message), times_chosen=c.times_chosen)
             for c in round_candidates(group) if c.active]
    return sorted(cards, key=lambda card: card['label'])


def page_cards(player: Player) -> list:
    """The cards as the Choose page gets them: what is shown, never the candidate id or the true kind (oTree's
    debug panel prints every template variable, and ids start with A or H)."""
    shown = ('position', 'label', 'badge', 'message_html', 'belief_field')
    return [{key: card[key] for key in shown} for card in offered_cards(player)]


def selector_choices(group: Group) -> list:
    """Every selector's choice this round (round_engine.Choice), human and AI, in selector_seats order."""
    return [round_engine.Choice(selector_code(seat), seat.chosen_candidate_id, seat.amount_sent)
            for seat in selector_seats(group)]


def apply_capacity(group: Group):
    """candidate_capacity: selectors whose card is full are moved to another of their cards
    (round_engine.apply_capacity, seeded, kind-blind); their seat records the card moved to."""
    capacity = config_of(group).candidate_capacity
    if not capacity:
        return
    seats = {selector_code(seat): seat for seat in selector_seats(group)}
    offered = {code: [cid for cid in seat.offered_candidate_ids.split(';') if cid] for code, seat in seats.items()}
    seed = round_engine.capacity_seed(group.session.code, group.id_in_subsession, group.round_number)
    for choice in round_engine.apply_capacity(selector_choices(group), offered, capacity, seed):
        if choice.reassigned:
            # `choice` keeps the letter the selector picked; the partner and the amount are the moved choice's
            seat = seats[choice.selector_code]
            seat.choice_reassigned = True
            seat.chosen_candidate_id, seat.amount_sent = choice.candidate_id, choice.amount_sent


def process_choices(group: Group):
    """Who chose whom (after the capacity rule): return slots for human candidates; AI returns start in the
    background now."""
    apply_capacity(group)
    rows = {c.candidate_id: c for c in round_candidates(group)}
    slots = round_engine.return_slots(engine_candidates(group), selector_choices(group), round_rules(group))
    for cid, candidate_slots in slots.items():
        candidate = rows[cid]
        candidate.times_chosen = candidate_slots.times_chosen
        candidate.amount_received = candidate_slots.amount_received
        if candidate.kind == 'ai':
            for slot in candidate_slots.slots:
                ai_decisions.start(broker_key(group, cid, 'return', slot.selector_code), ai_partner(group, cid),
                                   'return', ai_view(group, candidate), **return_kwargs(slot))
    group.ai_returns_requested_at = time.time()
    for player in group.get_players():
        if role_of(player) == C.CANDIDATE and player.candidate_id in slots:
            player.return_slots = ';'.join(slot.selector_code for slot in slots[player.candidate_id].slots)


def return_kwargs(slot) -> dict:
    return dict(amount_sent=slot.amount_sent, amount_received=slot.amount_received, counterpart=slot.selector_code)


def return_slot_codes(player: Player) -> list:
    """The selector codes of a human candidate's return decisions this round, in the order of its fields."""
    return [c for c in player.return_slots.split(';') if c]


def return_fields(player: Player) -> list:
    """A human candidate's return fields this round (return_1, return_2, …): from its own row, no query."""
    return [f'return_{i}' for i in range(1, len(return_slot_codes(player)) + 1)]


def return_slots(player: Player, seats: list = None) -> list:
    """(form field, selector seat) pairs for a human candidate's return decisions this round (``seats``: the
    group's selector_seats, if the caller has them)."""
    by_code = {selector_code(seat): seat for seat in (seats if seats is not None else selector_seats(player.group))}
    return [(field, by_code[code]) for field, code in zip(return_fields(player), return_slot_codes(player))]


def return_decisions(player: Player) -> list:
    """A human candidate's return decisions this round, numbered as on its Return page."""
    multiplier = config_of(player).multiplier
    return [dict(field=field, number=i, sent=selector.amount_sent, received=selector.amount_sent * multiplier)
            for i, (field, selector) in enumerate(return_slots(player), start=1)]


def ai_return_keys(group: Group) -> list:
    return [
        broker_key(group, seat.chosen_candidate_id, 'return', selector_code(seat))
        for seat in selector_seats(group)
        if seat.chosen_candidate_id and society.kind_of(seat.chosen_candidate_id) == 'ai'
    ]


def human_returns_in(group: Group) -> bool:
    """Every chosen human candidate has decided (or its Return page timed out)."""
    return all(has_returned(p) for p in group.get_players() if role_of(p) == C.CANDIDATE)


def has_returned(player: Player) -> bool:
    return all(player.field_maybe_none(field) is not None for field in return_fields(player))


def try_settle_round(group: Group, wait: bool = False, force: bool = False) -> bool:
    """Settle the round once every return is in (human candidates' and AI's, or the AI deadline passed)
    and ai_min_return_seconds have passed since the choices; never blocks people.

    The delay is the same in every treatment and whoever was chosen: otherwise a round in which no
    selector chose a human candidate (nobody has a Return page) would show its feedback at once, and in
    the hidden treatment the speed alone would tell a selector that the partner was an AI.
    `wait` blocks for AI decisions (bots at ReturnsWaitPage, where human returns are in); `force` settles
    now (a returns gate timed out): unfinished AI calls become flagged fallbacks, human returns not made
    yet timeouts (0 returned).
    """
    if group.round_settled:
        return True
    if not (wait or force or (ai_decisions.min_delay_over(group, group.ai_returns_requested_at)
                              and human_returns_in(group)
                              and ai_decisions.ready(group, ai_return_keys(group), group.ai_returns_requested_at))):
        return False
    if force:  # otherwise every human return is in (ready, or bots all at ReturnsWaitPage)
        for player in group.get_players():
            if role_of(player) == C.CANDIDATE and not has_returned(player):
                time_out_returns(player)
    settle_round(group, wait)
    group.round_settled = True
    return True


def time_out_returns(player: Player):
    """A human candidate's return decisions that were not made in time: 0 each, flagged."""
    player.candidate_return_timed_out = True
    for field in return_fields(player):
        setattr(player, field, 0)


def returns_arrived(group: Group):
    try_settle_round(group, wait=ai_decisions.has_bots(group))


def settle_round(group: Group, wait: bool):
    """Collect every return, then pay selectors and candidates by the round engine's rules."""
    rows = {c.candidate_id: c for c in round_candidates(group)}
    players = {p.participant.code: p for p in group.get_players()}
    seat_list = selector_seats(group)
    seats = {selector_code(seat): seat for seat in seat_list}
    returns = {}
    for player in players.values():
        if role_of(player) == C.CANDIDATE:
            for field, selector in return_slots(player, seat_list):
                value = player.field_maybe_none(field) or 0
                returns[selector_code(selector)] = Return(value, player.candidate_return_timed_out, False)
    for code in (code for code, seat in seats.items() if seat.chosen_candidate_id):
        candidate, selector = rows[seats[code].chosen_candidate_id], seats[code]
        if candidate.kind == 'ai':
            slot = round_engine.ReturnSlot(code, selector.amount_sent, selector.amount_sent * config_of(group).multiplier)
            decision = ai_decisions.collect(
                AICall, group, broker_key(group, candidate.candidate_id, 'return', code),
                ai_partner(group, candidate.candidate_id), 'return', ai_view(group, candidate),
                candidate_id=candidate.candidate_id, requested_at=group.ai_returns_requested_at, wait=wait,
                **return_kwargs(slot),
            )
            returns[code] = Return(ai_decisions.value_used(decision, 'return'), ai_decisions.timed_out(decision),
                                   decision.fallback)
    bonuses = {code: seat.belief_bonus_earned for code, seat in seats.items()}
    outcome = round_engine.settle_round(
        engine_candidates(group), selector_choices(group), returns, round_rules(group), bonuses)
    for code, result in outcome.selectors.items():
        player = seats[code]
        player.amount_returned = result.amount_returned
        player.return_timed_out = result.return_timed_out
        player.return_fallback = result.return_fallback
        player.payoff = result.payoff
    for cid, result in outcome.candidates.items():
        row = rows[cid]
        row.amount_returned, row.returns, row.payoff = result.amount_returned, result.returns, result.payoff
        row.return_timed_out, row.return_fallback = result.return_timed_out, result.return_fallback
    for player in players.values():
        if role_of(player) == C.CANDIDATE and not peek(player.participant, 'excluded'):
            player.payoff = outcome.candidates[player.candidate_id].payoff
    if group.round_number == config_of(group).num_rounds:
        for seat in seats.values():
            pay_beliefs(seat)


def pay_beliefs(player):
    """After the last played round: the belief bonus (round_engine.pay_beliefs), recorded on every round's
    player (belief_round_paid, belief_bonus_paid) and added once to participant.payoff, not to any round's
    payoff, so that no round's feedback can hint at kinds. participant.payoff stays the sum paid. An AI
    selector's is recorded alike (nobody is paid for it)."""
    config = config_of(player)
    rounds = [*previous_seats(player), player]
    earned = {p.round_number: p.belief_bonus_earned for p in rounds if p.belief_guesses}
    payment = round_engine.pay_beliefs(earned, config.belief_payment, player.session.code, selector_code(player))
    for p in rounds:
        p.belief_round_paid = p.round_number in payment.paid_rounds
        p.belief_bonus_paid = payment.bonuses.get(p.round_number, 0)
    if not isinstance(player, AISelector):
        player.participant.payoff += payment.bonus


def belief_summary(player: Player) -> dict:
    """The guesses' accuracy and the bonus, for the debrief and payment pages (after the last round only)."""
    rounds = []
    if is_selector(player):
        rounds = [p for p in player.in_rounds(1, config_of(player).num_rounds) if p.belief_guesses]
    return dict(
        belief_rounds=[dict(round=p.round_number, n_correct=p.belief_n_correct,
                            n_cards=len(p.belief_guesses.split(';')), paid=p.belief_round_paid) for p in rounds],
        belief_paid_rounds=[p.round_number for p in rounds if p.belief_round_paid],
        belief_bonus_total=sum(p.belief_bonus_paid for p in rounds),
        belief_payment=config_of(player).belief_payment,
    )


def past_rounds(players) -> list:
    """A selector's rounds as the round engine's plain SelectorRound."""
    return [
        SelectorRound(p.round_number, p.treatment,
                      dict(zip(p.offered_candidate_ids.split(';'), p.offered_display_labels.split(';'))),
                      p.chosen_candidate_id, p.amount_sent, p.amount_returned)
        for p in players
    ]


def selector_history(player) -> list:
    """The selector's own past partners, for the optional history table (empty when not shown)."""
    if not config_of(player).show_history:
        return []
    return list(round_engine.selector_history(past_rounds(previous_seats(player))))
