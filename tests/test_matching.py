"""Trust-game matching (game_logic.matching): who is paired with whom, each round."""
import pytest

from game_logic.matching import MatchingError, trust_group_matrix


def test_ai_partner_puts_every_trustor_alone():
    assert trust_group_matrix(3, 1, 'ai', False) == [[1], [2], [3]]
    assert trust_group_matrix(3, 7, 'ai', True) == [[1], [2], [3]]


def test_fixed_pairs_are_consecutive_and_kept_every_round():
    for round_number in (1, 2, 10):
        assert trust_group_matrix(6, round_number, 'human', False) == [[1, 2], [3, 4], [5, 6]]


def test_rematch_rotates_trustees_and_keeps_roles():
    assert trust_group_matrix(6, 1, 'human', True) == [[1, 2], [3, 4], [5, 6]]
    assert trust_group_matrix(6, 2, 'human', True) == [[1, 4], [3, 6], [5, 2]]
    assert trust_group_matrix(6, 3, 'human', True) == [[1, 6], [3, 2], [5, 4]]
    assert trust_group_matrix(6, 4, 'human', True) == trust_group_matrix(6, 1, 'human', True)


def test_rematch_never_repeats_a_pair_within_as_many_rounds_as_pairs():
    num_pairs = 5
    seen = set()
    for round_number in range(1, num_pairs + 1):
        matrix = trust_group_matrix(2 * num_pairs, round_number, 'human', True)
        assert sorted(i for row in matrix for i in row) == list(range(1, 2 * num_pairs + 1))
        assert all(trustor % 2 == 1 and trustee % 2 == 0 for trustor, trustee in matrix)
        pairs = {tuple(row) for row in matrix}
        assert not pairs & seen
        seen |= pairs
    assert len(seen) == num_pairs * num_pairs  # every trustor met every trustee exactly once


def test_one_pair_with_rematch_keeps_the_only_partner():
    assert trust_group_matrix(2, 5, 'human', True) == [[1, 2]]


def test_odd_number_of_humans_is_refused_with_a_usable_suggestion():
    with pytest.raises(MatchingError, match='even number of participants, got 5; use 4 or 6'):
        trust_group_matrix(5, 1, 'human', False)


@pytest.mark.parametrize(
    'args, message',
    [
        ((0, 1, 'ai', False), 'positive whole number'),
        ((True, 1, 'ai', False), 'positive whole number'),
        ((4, 0, 'human', False), 'round_number'),
        ((4, 1, 'robot', False), "partner must be one of"),
    ],
)
def test_bad_arguments_are_refused(args, message):
    with pytest.raises(MatchingError, match=message):
        trust_group_matrix(*args)


def test_a_single_human_is_told_to_bring_a_partner():
    with pytest.raises(MatchingError, match='got 1; use 2$'):
        trust_group_matrix(1, 1, 'human', False)
