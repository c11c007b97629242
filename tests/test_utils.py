import numpy as np
import pytest

import utils


def sequences():
    lengths = [3, 5, 2, 4, 1]
    inputs = [np.full([length, 2], i + 1, np.float32) for i, length in enumerate(lengths)]
    targets = [np.arange(length, dtype=np.float32)[:, None] + 10 * i for i, length in enumerate(lengths)]
    return inputs, targets


def test_one_hot_and_token_ids():
    encoded = utils.one_hot([[0, 2], [np.nan, 1]], 3)
    np.testing.assert_array_equal(encoded[0], [[1, 0, 0], [0, 0, 1]])
    assert np.isnan(encoded[1, 0]).all()
    np.testing.assert_array_equal(encoded[1, 1], [0, 1, 0])
    with pytest.raises(ValueError, match=r'\[0, 3\)'):
        utils.one_hot([3], 3)
    vocab = ['a', 'b', 'c']
    np.testing.assert_array_equal(utils.tokens_to_ids(['c', 'a'], vocab), [2, 0])
    assert utils.ids_to_tokens([2, 0], vocab) == ['c', 'a']
    with pytest.raises(ValueError, match='not in the vocabulary: z'):
        utils.tokens_to_ids(['z'], vocab)


def test_pad_seq():
    np.testing.assert_array_equal(utils.pad_seq(np.array([1.0, 2.0]), 4, 0.0), [1, 2, 0, 0])
    with pytest.raises(ValueError):
        utils.pad_seq(np.zeros(5), 4, 0.0)


def test_full_bptt_batches_padding_counts_and_last_batch():
    inputs, targets = sequences()
    batches = list(utils.full_bptt_batch_generator(inputs, targets, 2, num_epochs=3, rng=0))
    assert [len(batch_inputs) for batch_inputs, _ in batches] == [2] * 7 + [1]  # 15 sequences in all.
    seen = []
    for batch_inputs, batch_targets in batches:
        for row_inputs, row_targets in zip(batch_inputs, batch_targets):
            sequence = int(row_inputs[0, 0]) - 1
            length = len(inputs[sequence])
            seen.append(sequence)
            assert batch_inputs.shape[1] == max(len(inputs[int(row[0, 0]) - 1]) for row in batch_inputs)
            assert (row_inputs[length:] == 0.0).all() and np.isnan(row_targets[length:]).all()
            np.testing.assert_array_equal(row_targets[:length], targets[sequence])
    assert sorted(seen) == sorted(list(range(5)) * 3)
    # Each epoch visits every sequence once.
    assert sorted(seen[:5]) == list(range(5)) and sorted(seen[5:10]) == list(range(5))


def test_random_roll_rolls_inputs_and_targets_together():
    inputs = [np.arange(6, dtype=np.float32)[:, None]]
    targets = [np.arange(6, dtype=np.float32)[:, None] * 10]
    shifts = set()
    for batch_inputs, batch_targets in utils.full_bptt_batch_generator(inputs, targets, 1, num_epochs=20,
                                                                       random_roll=True, rng=3):
        np.testing.assert_array_equal(batch_targets, batch_inputs * 10)
        shifts.add(int(batch_inputs[0, 0, 0]))
    assert len(shifts) > 1


def test_truncated_bptt_splits_and_reset_flags():
    inputs, targets = sequences()
    pieces = list(utils.truncated_bptt_batch_generator(inputs, targets, 5, 2, num_epochs=1, shuffle=False))
    assert [piece[0].shape[1] for piece in pieces] == [2, 2, 1]
    assert [piece[2] for piece in pieces] == [True, False, False]
    np.testing.assert_array_equal(np.concatenate([piece[0] for piece in pieces], axis=1),
                                  next(utils.full_bptt_batch_generator(inputs, targets, 5, 1, shuffle=False))[0])


def test_bucket_length_bounds_programs_and_padding():
    lengths = range(1, 2000)
    buckets = {utils.bucket_length(length) for length in lengths}
    assert len(buckets) <= 4 * 11 + 4
    for length in lengths:
        assert length <= utils.bucket_length(length) <= length * 1.25 + 1
