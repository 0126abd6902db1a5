"""One partner-selection round (game_logic.round_engine), outside oTree: pool, labels, cards, choices,
beliefs, payoffs to the point, history and debrief."""
import random
from dataclasses import replace

import pytest

from game_logic import round_engine as engine
from game_logic import society
from game_logic.payoffs import InvalidAmount
from game_logic.round_engine import Choice, HumanCandidateSeat, Return, RoundRules, SelectorRound

RULES = RoundRules(
    endowment=10,
    multiplier=3,
    candidate_base_pay=5,
    selector_chooses_amount=False,
    belief_bonus_per_correct=1,
    dropout_after_timeouts=2,
    persistent_labels=False,
)


def seat(cid, streak=0, dropped=False, excluded=False):
    return HumanCandidateSeat(cid, f'code-{cid}', streak, dropped, excluded)


def default_pool(rules=RULES, **human_h2):
    """Two human candidates (H2 as given) and two AI candidates, the app's default group."""
    return engine.round_candidates([seat('H1'), seat('H2', **human_h2)], 2, rules)


def cards_for(candidates, treatment='disclosed', code='s1', round_number=1, rules=RULES):
    labels = engine.display_labels([c.candidate_id for c in candidates], 'sess', 1, round_number, rules)
    order = engine.draw_card_order(candidates, 'sess', code, round_number)
    messages = {c.candidate_id: f'hello from {c.candidate_id}' for c in candidates}
    return engine.make_cards(order, labels, messages, treatment)


def card_of(cards, cid):
    return next(card for card in cards if card.candidate_id == cid)


# --- pool and dropouts ---


def test_pool_lists_humans_and_ai_in_candidate_order_with_ai_always_active():
    pool = default_pool()
    assert [(c.candidate_id, c.kind, c.active) for c in pool] == [
        ('A1', 'ai', True), ('A2', 'ai', True), ('H1', 'human', True), ('H2', 'human', True)
    ]
    assert pool[2].participant_code == 'code-H1' and pool[0].participant_code == ''


def test_candidate_order_is_the_string_order_the_seeds_were_drawn_with():
    # A10 sorts before A2: today's draws depend on it, so it must not become a numeric sort
    ids = [c.candidate_id for c in engine.round_candidates([seat('H1')], 11, RULES)]
    assert ids[:4] == ['A1', 'A10', 'A11', 'A2']


def test_candidate_is_dropped_at_round_start_once_the_streak_reaches_the_limit():
    kept = {c.candidate_id: c for c in default_pool(streak=1)}['H2']
    assert kept.active and not kept.dropped
    dropped = {c.candidate_id: c for c in default_pool(streak=2)}['H2']
    assert (dropped.active, dropped.dropped, dropped.newly_dropped) == (False, True, True)


def test_dropped_candidate_stays_dropped_whatever_its_streak():
    later = {c.candidate_id: c for c in default_pool(streak=0, dropped=True)}['H2']
    assert (later.active, later.dropped, later.newly_dropped) == (False, True, False)


def test_no_dropouts_when_the_limit_is_zero():
    pool = default_pool(replace(RULES, dropout_after_timeouts=0), streak=50)
    assert all(c.active and not c.dropped for c in pool)


def test_excluded_candidate_is_inactive_but_not_dropped():
    h2 = {c.candidate_id: c for c in default_pool(excluded=True)}['H2']
    assert (h2.active, h2.dropped) == (False, False)


# --- labels and card order ---


def test_labels_cover_every_candidate_with_distinct_letters():
    labels = engine.display_labels(['H2', 'A1', 'H1', 'A2'], 'sess', 1, 1, RULES)
    assert sorted(labels) == ['A1', 'A2', 'H1', 'H2']
    assert len(set(labels.values())) == 4 and set(labels.values()) <= set(society.LABEL_LETTERS)


def test_persistent_labels_are_the_same_every_round():
    rules = replace(RULES, persistent_labels=True)
    ids = ['A1', 'A2', 'H1', 'H2']
    rounds = [engine.display_labels(ids, 'sess', 3, r, rules) for r in range(1, 6)]
    assert all(labels == rounds[0] for labels in rounds)


def test_labels_are_redrawn_each_round_unless_persistent():
    ids = ['A1', 'A2', 'H1', 'H2']
    rounds = [engine.display_labels(ids, 'sess', 3, r, RULES) for r in range(1, 6)]
    assert len({tuple(sorted(labels.items())) for labels in rounds}) > 1


def test_more_candidates_than_letters_is_a_config_error():
    with pytest.raises(society.ConfigError, match='at most 22'):
        engine.display_labels([f'A{i}' for i in range(1, 24)], 'sess', 1, 1, RULES)


def test_card_order_is_a_permutation_of_the_active_candidates():
    pool = default_pool(streak=2)  # H2 dropped
    order = engine.draw_card_order(pool, 'sess', 's1', 4)
    assert sorted(order) == ['A1', 'A2', 'H1']


def test_card_order_is_the_same_for_the_same_seed_parts_and_varies_between_selectors():
    pool = engine.round_candidates([seat(f'H{i}') for i in range(1, 6)], 5, RULES)
    first = engine.draw_card_order(pool, 'sess', 's1', 2)
    assert engine.draw_card_order(pool, 'sess', 's1', 2) == first
    others = {engine.draw_card_order(pool, 'sess', f's{i}', 2) for i in range(2, 8)}
    assert others != {first}


def test_seeds_reproduce_todays_draws_through_society_directly():
    ids = ['A1', 'A2', 'H1', 'H2']
    pool = engine.round_candidates([seat('H1'), seat('H2')], 2, RULES)
    assert engine.display_labels(ids, 'sessx1', 2, 3, RULES) == society.draw_display_labels(
        ids, random.Random('sessx1-g2-labels-r3')
    )
    persistent = replace(RULES, persistent_labels=True)
    assert engine.display_labels(ids, 'sessx1', 2, 3, persistent) == society.draw_display_labels(
        ids, random.Random('sessx1-g2-labels')
    )
    assert list(engine.draw_card_order(pool, 'sessx1', 'p2x9k', 3)) == society.card_order(
        ids, random.Random('sessx1-p2x9k-r3-order')
    )


def test_draws_of_existing_sessions_do_not_change():
    # Pinned values: a change here changes the labels and card orders of every session already exported.
    ids = ['A1', 'A2', 'H1', 'H2']
    pool = engine.round_candidates([seat('H1'), seat('H2')], 2, RULES)
    assert engine.display_labels(ids, 'sessx1', 2, 3, RULES) == {'A1': 'Z', 'A2': 'D', 'H1': 'P', 'H2': 'M'}
    assert engine.display_labels(ids, 'sessx1', 2, 3, replace(RULES, persistent_labels=True)) == {
        'A1': 'B', 'A2': 'E', 'H1': 'W', 'H2': 'C'
    }
    assert engine.draw_card_order(pool, 'sessx1', 'p2x9k', 3) == ('H2', 'A2', 'H1', 'A1')


# --- cards ---


@pytest.mark.parametrize('treatment, ai_badge, human_badge', [
    ('disclosed', 'AI', 'Human'), ('hidden', '', ''), ('false_label', 'Human', 'AI'),
])
def test_cards_show_the_treatments_badge_and_keep_the_true_kind(treatment, ai_badge, human_badge):
    cards = cards_for(default_pool(), treatment)
    assert [card.position for card in cards] == [1, 2, 3, 4]
    assert (card_of(cards, 'A1').kind, card_of(cards, 'A1').badge) == ('ai', ai_badge)
    assert (card_of(cards, 'H1').kind, card_of(cards, 'H1').badge) == ('human', human_badge)
    assert card_of(cards, 'H2').message == 'hello from H2'


def test_card_message_is_raw_text_not_escaped():
    cards = engine.make_cards(['A1'], {'A1': 'K'}, {'A1': '<b>hi</b>\nthere'}, 'hidden')
    assert cards[0].message == '<b>hi</b>\nthere'


# --- choices and payoffs ---


def chosen(cards, cid, code, amount=None, rules=RULES):
    return engine.choose(code, cards, card_of(cards, cid).label, amount, rules)


def test_choice_of_a_card_letter_sends_the_endowment():
    cards = cards_for(default_pool())
    choice = chosen(cards, 'H1', 's1', amount=3)  # amount ignored: the selector does not choose it
    assert choice == Choice('s1', 'H1', 10) and choice.made


def test_no_letter_is_no_choice_and_nothing_sent():
    assert engine.choose('s1', cards_for(default_pool()), None, 7, RULES) == Choice('s1', '', 0)
    assert not engine.choose('s1', cards_for(default_pool()), '', None, RULES).made


def test_a_letter_not_on_the_cards_is_rejected():
    cards = cards_for(default_pool())
    unused = next(letter for letter in society.LABEL_LETTERS if letter not in {card.label for card in cards})
    with pytest.raises(ValueError, match='not offered'):
        engine.choose('s1', cards, unused, None, RULES)


def test_nobody_chose_a_human():
    pool = default_pool()
    cards = cards_for(pool)
    choices = [chosen(cards, 'A1', 's1'), chosen(cards, 'A2', 's2'), chosen(cards, 'A1', 's3')]
    returns = {'s1': Return(19), 's2': Return(15, fallback=True), 's3': Return(0, timed_out=True)}
    outcome = engine.settle_round(pool, choices, returns, RULES)
    assert [s.payoff for s in outcome.selectors.values()] == [19, 15, 0]
    assert outcome.selectors['s2'].return_fallback and outcome.selectors['s3'].return_timed_out
    a1, a2, h1, h2 = (outcome.candidates[cid] for cid in ('A1', 'A2', 'H1', 'H2'))
    assert (a1.times_chosen, a1.amount_received, a1.amount_returned, a1.returns, a1.payoff) == (2, 60, 19, '19;0', 46)
    assert a1.return_timed_out and not a1.return_fallback
    assert (a2.returns, a2.payoff, a2.return_fallback) == ('15', 5 + 30 - 15, True)
    for human in (h1, h2):  # not chosen: base pay only
        assert (human.times_chosen, human.amount_received, human.returns, human.payoff) == (0, 0, '', 5)


def test_two_selectors_on_one_candidate_get_slots_in_choice_order():
    pool = default_pool()
    cards = cards_for(pool)
    choices = [chosen(cards, 'H1', 's2'), chosen(cards, 'A1', 's1'), chosen(cards, 'H1', 's3')]
    slots = engine.return_slots(pool, choices, RULES)
    assert [slot.selector_code for slot in slots['H1'].slots] == ['s2', 's3']
    assert (slots['H1'].times_chosen, slots['H1'].amount_received) == (2, 60)
    assert slots['H1'].slots[0].amount_received == 30
    assert slots['H2'].times_chosen == 0 and list(slots) == ['A1', 'A2', 'H1', 'H2']

    outcome = engine.settle_round(pool, choices, {'s2': Return(12), 's1': Return(10), 's3': Return(5)}, RULES)
    h1 = outcome.candidates['H1']
    assert (h1.amount_returned, h1.returns, h1.payoff) == (17, '12;5', 5 + 60 - 17)
    assert {code: s.payoff for code, s in outcome.selectors.items()} == {'s2': 12, 's1': 10, 's3': 5}
    assert list(outcome.selectors) == ['s2', 's1', 's3']


def test_timed_out_selector_keeps_the_endowment_plus_any_bonus_and_takes_no_slot():
    pool = default_pool()
    cards = cards_for(pool)
    choices = [engine.choose('s1', cards, None, None, RULES), chosen(cards, 'H2', 's2')]
    outcome = engine.settle_round(pool, choices, {'s2': Return(30)}, RULES, belief_bonuses={'s1': 2})
    s1 = outcome.selectors['s1']
    assert (s1.candidate_id, s1.amount_sent, s1.amount_returned, s1.return_timed_out, s1.return_fallback) == (
        '', 0, 0, False, False
    )
    assert s1.payoff == 10 + 2
    assert outcome.selectors['s2'].payoff == 30
    assert sum(c.times_chosen for c in outcome.candidates.values()) == 1


def test_selector_chosen_amounts_are_sent_and_multiplied():
    rules = replace(RULES, selector_chooses_amount=True)
    pool = default_pool(rules)
    cards = cards_for(pool, rules=rules)
    choices = [chosen(cards, 'H1', 's1', 4, rules), chosen(cards, 'H1', 's2', 0, rules)]
    assert [c.amount_sent for c in choices] == [4, 0]
    outcome = engine.settle_round(pool, choices, {'s1': Return(7), 's2': Return(0)}, rules)
    assert outcome.selectors['s1'].payoff == 10 - 4 + 7
    assert outcome.selectors['s2'].payoff == 10
    h1 = outcome.candidates['H1']
    assert (h1.times_chosen, h1.amount_received, h1.returns, h1.payoff) == (2, 12, '7;0', 5 + 12 - 7)


def test_candidate_base_pay_only_when_active():
    pool = engine.round_candidates([seat('H1'), seat('H2', streak=2), seat('H3', excluded=True)], 1, RULES)
    cards = cards_for(pool)
    outcome = engine.settle_round(pool, [chosen(cards, 'A1', 's1')], {'s1': Return(10)}, RULES)
    payoffs = {cid: c.payoff for cid, c in outcome.candidates.items()}
    assert payoffs == {'A1': 5 + 30 - 10, 'H1': 5, 'H2': 0, 'H3': 0}


def test_belief_bonus_is_in_the_round_payoff_unless_paid_elsewhere():
    pool = default_pool()
    cards = cards_for(pool)
    choices = [chosen(cards, 'H1', 's1')]
    today = engine.settle_round(pool, choices, {'s1': Return(9)}, RULES, {'s1': 3})
    assert (today.selectors['s1'].payoff, today.selectors['s1'].belief_bonus) == (12, 3)
    later = engine.settle_round(pool, choices, {'s1': Return(9)}, replace(RULES, belief_bonus_in_round_payoff=False),
                                {'s1': 3})
    assert (later.selectors['s1'].payoff, later.selectors['s1'].belief_bonus) == (9, 3)


def test_thirty_selectors_choosing_one_candidate():
    pool = default_pool()
    cards = cards_for(pool)
    choices = [chosen(cards, 'A2', f's{i}') for i in range(1, 31)]
    returns = {f's{i}': Return(i) for i in range(1, 31)}
    outcome = engine.settle_round(pool, choices, returns, RULES)
    a2 = outcome.candidates['A2']
    assert (a2.times_chosen, a2.amount_received, a2.amount_returned) == (30, 900, sum(range(1, 31)))
    assert a2.returns == ';'.join(str(i) for i in range(1, 31))
    assert a2.payoff == 5 + 900 - 465
    assert [s.payoff for s in outcome.selectors.values()] == list(range(1, 31))


def test_points_are_conserved_in_a_round():
    # everything held at the end = endowments + (multiplier − 1) × sent + base pay of active candidates
    rules = replace(RULES, selector_chooses_amount=True)
    pool = default_pool(rules, streak=2)
    cards = cards_for(pool, rules=rules)
    choices = [chosen(cards, 'A1', 's1', 10, rules), chosen(cards, 'H1', 's2', 6, rules),
               engine.choose('s3', cards, None, None, rules), chosen(cards, 'A1', 's4', 3, rules)]
    outcome = engine.settle_round(pool, choices, {'s1': Return(12), 's2': Return(18), 's4': Return(1)}, rules)
    total = sum(s.payoff for s in outcome.selectors.values()) + sum(c.payoff for c in outcome.candidates.values())
    assert total == 4 * 10 + 2 * (10 + 6 + 3) + 3 * 5


# --- bad input ---


@pytest.mark.parametrize('amount', [-1, 11, 2.5, True, None])
def test_a_chosen_amount_outside_zero_to_endowment_raises(amount):
    rules = replace(RULES, selector_chooses_amount=True)
    cards = cards_for(default_pool(rules), rules=rules)
    with pytest.raises(InvalidAmount):
        chosen(cards, 'H1', 's1', amount, rules)


@pytest.mark.parametrize('returned', [-1, 31, 3.0, False])
def test_a_return_outside_zero_to_received_raises(returned):
    pool = default_pool()
    cards = cards_for(pool)
    with pytest.raises(InvalidAmount):
        engine.settle_round(pool, [chosen(cards, 'H1', 's1')], {'s1': Return(returned)}, RULES)


def test_a_missing_return_for_a_choosing_selector_raises():
    pool = default_pool()
    cards = cards_for(pool)
    with pytest.raises(ValueError, match='no return'):
        engine.settle_round(pool, [chosen(cards, 'H1', 's1')], {}, RULES)


def test_a_return_for_a_selector_without_a_choice_raises():
    pool = default_pool()
    with pytest.raises(ValueError, match='chose no candidate'):
        engine.settle_round(pool, [Choice('s1', '', 0)], {'s1': Return(0)}, RULES)


def test_choosing_an_inactive_candidate_or_choosing_twice_raises():
    pool = default_pool(streak=2)
    with pytest.raises(ValueError, match='not an active candidate'):
        engine.return_slots(pool, [Choice('s1', 'H2', 10)], RULES)
    with pytest.raises(ValueError, match='one choice per selector'):
        engine.return_slots(pool, [Choice('s1', 'H1', 10), Choice('s1', 'A1', 10)], RULES)


# --- beliefs ---


def test_beliefs_score_correct_guesses_per_card_and_pay_per_correct_guess():
    cards = cards_for(default_pool(), 'hidden')
    truth = [card.kind for card in cards]
    wrong = ['human' if kind == 'ai' else 'ai' for kind in truth]
    rules = replace(RULES, belief_bonus_per_correct=2)
    all_right = engine.score_beliefs(cards, truth, rules)
    assert (all_right.n_correct, all_right.bonus, all_right.guesses_text) == (4, 8, ';'.join(truth))
    assert engine.score_beliefs(cards, wrong, rules).bonus == 0
    half = engine.score_beliefs(cards, truth[:2] + [None, ''], rules)
    assert (half.guesses, half.n_correct, half.bonus) == (tuple(truth[:2]) + ('', ''), 2, 4)


def test_one_guess_per_card():
    cards = cards_for(default_pool(), 'hidden')
    with pytest.raises(ValueError, match='one guess per card'):
        engine.score_beliefs(cards, ['ai'], RULES)


@pytest.mark.parametrize('elicit, treatment, asked', [
    (True, 'hidden', True), (True, 'false_label', True), (True, 'disclosed', False), (False, 'hidden', False),
])
def test_beliefs_are_asked_only_where_the_badge_is_not_the_truth(elicit, treatment, asked):
    assert engine.elicits_beliefs(elicit, treatment) is asked
    assert engine.debrief_reveals(treatment) is (treatment != 'disclosed')


# --- history and debrief ---


PAST = [
    SelectorRound(1, 'false_label', {'A1': 'K', 'H1': 'B'}, 'A1', 10, 19),
    SelectorRound(2, 'false_label', {'A1': 'C', 'H1': 'D'}, '', 0, 0),
    SelectorRound(3, 'false_label', {'A1': 'E', 'H1': 'F'}, 'H1', 10, 8),
]


def test_history_shows_the_letter_and_badge_the_selector_saw_and_marks_rounds_without_a_choice():
    rows = engine.selector_history(PAST)
    assert [(r.round, r.label, r.badge, r.sent, r.returned, r.timed_out) for r in rows] == [
        (1, 'K', 'Human', 10, 19, False),
        (2, '—', '', 0, 0, True),
        (3, 'F', 'AI', 10, 8, False),
    ]


def test_debrief_reveals_the_true_kind_beside_the_badge_shown_for_rounds_with_a_choice():
    rows = engine.debrief_rows(PAST)
    assert [(r.round, r.label, r.kind, r.badge) for r in rows] == [(1, 'K', 'ai', 'Human'), (3, 'F', 'human', 'AI')]


def test_pay_beliefs_one_random_round_is_drawn_reproducibly_from_the_codes_only():
    earned = {1: 2, 2: 0, 3: 4}
    payment = engine.pay_beliefs(earned, 'one_random_round', 'sess', 'p1')
    assert len(payment.paid_rounds) == 1 and payment.paid_rounds[0] in earned
    assert payment.bonus == earned[payment.paid_rounds[0]]
    assert payment.bonuses == {payment.paid_rounds[0]: payment.bonus}
    # the same codes draw the same round whatever the guesses earned (the draw never looks at them)
    assert engine.pay_beliefs({1: 0, 2: 0, 3: 0}, 'one_random_round', 'sess', 'p1').paid_rounds == payment.paid_rounds
    expected = random.Random(engine.belief_payment_seed('sess', 'p1')).choice([1, 2, 3])
    assert payment.paid_rounds == (expected,)
    drawn = {engine.pay_beliefs(earned, 'one_random_round', 'sess', f'p{i}').paid_rounds for i in range(40)}
    assert drawn == {(1,), (2,), (3,)}


def test_pay_beliefs_all_rounds_and_no_guesses():
    assert engine.pay_beliefs({2: 1, 1: 3}, 'all_rounds', 's', 'p').paid_rounds == (1, 2)
    assert engine.pay_beliefs({2: 1, 1: 3}, 'all_rounds', 's', 'p').bonus == 4
    for mode in ('all_rounds', 'one_random_round'):
        nothing = engine.pay_beliefs({}, mode, 's', 'p')
        assert (nothing.paid_rounds, nothing.bonus) == ((), 0)
    with pytest.raises(ValueError, match='belief payment'):
        engine.pay_beliefs({1: 1}, 'every_round', 's', 'p')
