"""Rules of the partner-selection mini-society (game_logic.society), outside oTree."""
import random
from collections import Counter

import pytest

from game_logic import session_config, society
from study.text import escape_text


def test_roles_put_selectors_first_and_keep_group_size():
    assert society.assign_roles(5, 3) == ['selector'] * 3 + ['candidate'] * 2
    assert society.assign_roles(2, 3) == ['selector', 'selector']


def test_groups_are_consecutive_chunks_with_a_smaller_remainder():
    assert society.split_into_groups(list(range(1, 13)), 5) == [[1, 2, 3, 4, 5], [6, 7, 8, 9, 10], [11, 12]]
    with pytest.raises(society.ConfigError, match='at least one participant'):
        society.split_into_groups([1, 2], 0)


def test_treatment_rotation_gives_equal_groups_per_treatment():
    treatments = session_config.parse(dict(treatments='hidden, disclosed,false_label')).treatment_rotation
    counts = Counter(society.treatment_for_group(i, treatments) for i in range(1, 13))
    assert counts == {'hidden': 4, 'disclosed': 4, 'false_label': 4}


def test_single_identity_used_when_no_treatment_list():
    assert session_config.parse(dict(treatments='', identity='hidden')).treatment_rotation == ['hidden']


def test_unknown_treatment_is_rejected_by_name():
    with pytest.raises(session_config.ConfigError, match="'secret'"):
        session_config.parse(dict(treatments='hidden,secret'))


@pytest.mark.parametrize(
    'identity, ai_badge, human_badge',
    [('disclosed', 'AI', 'Human'), ('hidden', '', ''), ('false_label', 'Human', 'AI')],
)
def test_badge_tells_truth_nothing_or_the_opposite(identity, ai_badge, human_badge):
    assert society.badge_for('ai', identity) == ai_badge
    assert society.badge_for('human', identity) == human_badge


def test_card_order_is_a_permutation_and_varies_between_selectors():
    ids = ['A1', 'A2', 'H1', 'H2']
    orders = {tuple(society.card_order(ids, random.Random(seed))) for seed in range(50)}
    assert all(sorted(order) == sorted(ids) for order in orders)
    assert len(orders) > 10
    # each id lands in first position roughly equally often (no position bias by kind)
    first = Counter(society.card_order(ids, random.Random(seed))[0] for seed in range(4000))
    assert all(850 < n < 1150 for n in first.values())


def test_display_labels_are_distinct_letters_and_reproducible():
    ids = ['A1', 'A2', 'H1', 'H2']
    labels = society.draw_display_labels(ids, random.Random('s-g1-r1'))
    assert len(set(labels.values())) == 4
    assert set(labels.values()) <= set(society.LABEL_LETTERS)
    assert labels == society.draw_display_labels(ids, random.Random('s-g1-r1'))
    with pytest.raises(society.ConfigError):
        society.draw_display_labels([f'H{i}' for i in range(30)], random.Random(1))


def test_beliefs_score_only_correct_non_empty_guesses():
    assert society.score_beliefs(['ai', 'human', '', 'ai'], ['ai', 'ai', 'human', 'ai']) == 2


def test_two_timeouts_in_a_row_drop_a_candidate_but_an_answer_resets():
    streak = 0
    for timed_out in [True, False, True]:
        streak = society.update_timeout_streak(streak, timed_out)
    assert streak == 1 and not society.is_dropped(streak, 2)
    streak = society.update_timeout_streak(streak, True)
    assert society.is_dropped(streak, 2)
    assert not society.is_dropped(5, 0)  # 0 switches dropping off


def test_escape_text_neutralises_html_and_keeps_line_breaks():
    out = escape_text('<script>alert("x")</script>\nline two 🙂')
    assert '<script>' not in out and '&lt;script&gt;' in out
    assert '&quot;x&quot;' in out
    assert out.endswith('<br>line two 🙂')


@pytest.mark.parametrize('raw, stored', [
    ('65f0e1d2c3b4a59687786950', '65f0e1d2c3b4a59687786950'),
    ('abc<script>x</script>9', 'abcscriptxscript9'),
    ('', ''),
    (None, ''),
    ('ä-_ok', '-_ok'),
    ('x' * 100, 'x' * 64),
])
def test_external_ids_keep_only_safe_characters(raw, stored):
    assert society.clean_external_id(raw) == stored
