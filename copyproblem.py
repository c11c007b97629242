"""The copy problem: remember delay/10 symbols, wait `delay` steps, then recall them.

    python3 copyproblem.py [--data_dir ~/Data/CopyProblem] [--delay 100] ...

With S possible symbols (0 .. S-1), the blank is S and the go marker S + 1. A sequence is
`delay/10 + delay + delay/10` steps long:
    inputs:  the delay/10 symbols, delay - 1 blanks, go, delay/10 blanks
    targets: delay/10 + delay blanks, then the delay/10 symbols
"""

import argparse
import pathlib

import numpy as np

import utils

DEFAULT_DATA_DIR = pathlib.Path('~/Data/CopyProblem').expanduser()
SPLITS = ('train', 'val', 'test')


def generate_inputs_and_targets(delay, num_examples, num_possible_symbols=10, rng=None):
    """Returns inputs and targets, int16 `[num_examples, delay/10 + delay + delay/10]`."""
    if delay < 10 or delay % 10:
        raise ValueError(f'delay must be a positive multiple of 10; got {delay}.')
    if num_possible_symbols < 1:
        raise ValueError(f'num_possible_symbols must be positive; got {num_possible_symbols}.')
    rng = np.random.default_rng(rng)
    num_symbols = delay // 10
    blank, go = num_possible_symbols, num_possible_symbols + 1
    symbols = rng.integers(0, num_possible_symbols, size=[num_examples, num_symbols])
    inputs = np.full([num_examples, 2 * num_symbols + delay], blank, dtype=np.int16)
    inputs[:, :num_symbols] = symbols
    inputs[:, num_symbols + delay - 1] = go
    targets = np.full_like(inputs, blank)
    targets[:, -num_symbols:] = symbols
    return inputs, targets


def file_names(delay, num_possible_symbols, split):
    prefix = f'delay_{delay}_num_possible_symbols_{num_possible_symbols}_{split}'
    return [f'{prefix}_inputs.npy', f'{prefix}_targets.npy']


def load(data_dir=DEFAULT_DATA_DIR, delay=100, num_possible_symbols=10):
    """Returns `{split: (inputs, targets)}` for train, val and test."""
    command = f'python3 copyproblem.py --data_dir {data_dir} --delay {delay} ' \
              f'--num_possible_symbols {num_possible_symbols}'
    return {split: tuple(utils.load_arrays(data_dir, file_names(delay, num_possible_symbols, split), command))
            for split in SPLITS}


def load_split(data_dir=DEFAULT_DATA_DIR, delay=100, num_possible_symbols=10, val=True):
    """Returns `(train_inputs, train_targets, test_inputs, test_targets)`, where the test set is the
    validation set if `val`, else the test set."""
    data = load(data_dir, delay, num_possible_symbols)
    return data['train'] + data['val' if val else 'test']


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data_dir', type=pathlib.Path, default=DEFAULT_DATA_DIR)
    parser.add_argument('--delay', type=int, default=100)
    parser.add_argument('--num_possible_symbols', type=int, default=10)
    utils.add_generated_data_arguments(parser)
    args = parser.parse_args()
    utils.write_generated_splits(
        args, lambda num_examples, rng: generate_inputs_and_targets(args.delay, num_examples,
                                                                    args.num_possible_symbols, rng),
        lambda split: file_names(args.delay, args.num_possible_symbols, split))
    print(f'Wrote the copy problem (delay {args.delay}) to {args.data_dir}.')


if __name__ == '__main__':
    main()
