"""The addition problem (Arjovsky et al., 2016): add the two marked values of a long sequence.

    python3 additionproblem.py [--data_dir ~/Data/AdditionProblem] [--length 100] ...

Inputs `[N, length, 2]`: channel 0 holds values uniform in [0, 1); channel 1 is zero except for
one 1 at a uniform position in the first half and one in the second half. Targets `[N]`: the sum
of the two marked values.
"""

import argparse
import pathlib

import numpy as np

import utils

DEFAULT_DATA_DIR = pathlib.Path('~/Data/AdditionProblem').expanduser()
SPLITS = ('train', 'val', 'test')


def generate_inputs_and_targets(length, num_examples, rng=None):
    """Returns inputs float32 `[num_examples, length, 2]` and targets float32 `[num_examples]`."""
    if length < 2:
        raise ValueError(f'length must be at least 2; got {length}.')
    rng = np.random.default_rng(rng)
    values = rng.uniform(0.0, 1.0, size=[num_examples, length])
    half = length // 2
    first = rng.integers(0, half, size=num_examples)
    second = rng.integers(half, length, size=num_examples)
    markers = np.zeros([num_examples, length])
    markers[np.arange(num_examples), first] = 1.0
    markers[np.arange(num_examples), second] = 1.0
    inputs = np.stack([values, markers], axis=-1).astype(np.float32)
    targets = (inputs[:, :, 0] * inputs[:, :, 1]).sum(axis=1, dtype=np.float32)
    return inputs, targets


def file_names(length, split):
    return [f'length_{length}_{split}_inputs.npy', f'length_{length}_{split}_targets.npy']


def load(data_dir=DEFAULT_DATA_DIR, length=100):
    """Returns `{split: (inputs, targets)}` for train, val and test."""
    command = f'python3 additionproblem.py --data_dir {data_dir} --length {length}'
    return {split: tuple(utils.load_arrays(data_dir, file_names(length, split), command)) for split in SPLITS}


def load_split(data_dir=DEFAULT_DATA_DIR, length=100, val=True):
    """Returns `(train_inputs, train_targets, test_inputs, test_targets)`, where the test set is the
    validation set if `val`, else the test set."""
    data = load(data_dir, length)
    return data['train'] + data['val' if val else 'test']


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data_dir', type=pathlib.Path, default=DEFAULT_DATA_DIR)
    parser.add_argument('--length', type=int, default=100)
    utils.add_generated_data_arguments(parser)
    args = parser.parse_args()
    utils.write_generated_splits(
        args, lambda num_examples, rng: generate_inputs_and_targets(args.length, num_examples, rng),
        lambda split: file_names(args.length, split))
    print(f'Wrote the addition problem (length {args.length}) to {args.data_dir}.')


if __name__ == '__main__':
    main()
