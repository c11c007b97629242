"""Print a learning rate for a search: on a log10 grid, or drawn log-uniformly.

    python3 print_learning_rate.py random -4 1               # 10**u, u uniform in [-4, 1)
    python3 print_learning_rate.py grid -4 1 --grid_ind 3     # 10**(-4 + 3 * 0.25)
"""

import argparse

import numpy as np


def learning_rate(mode, log_min, log_max, grid_log_step=0.25, grid_ind=0, rng=None):
    if log_max <= log_min:
        raise ValueError(f'LOG_MAX must exceed LOG_MIN; got {log_min} and {log_max}.')
    if mode == 'random':
        return 10.0 ** np.random.default_rng(rng).uniform(log_min, log_max)
    exponents = np.arange(log_min, log_max + 1e-9, grid_log_step)
    if not 0 <= grid_ind < len(exponents):
        raise ValueError(f'--grid_ind must lie in [0, {len(exponents)}) for this grid; got {grid_ind}.')
    return 10.0 ** exponents[grid_ind]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('mode', choices=['grid', 'random'])
    parser.add_argument('log_min', type=float)
    parser.add_argument('log_max', type=float)
    parser.add_argument('--grid_log_step', type=float, default=0.25)
    parser.add_argument('--grid_ind', type=int, default=0)
    parser.add_argument('--seed', type=int, default=None, help='makes the random draw reproducible')
    args = parser.parse_args()
    try:
        print(f'{learning_rate(args.mode, args.log_min, args.log_max, args.grid_log_step, args.grid_ind, args.seed):.6f}')
    except ValueError as error:
        parser.error(str(error))


if __name__ == '__main__':
    main()
