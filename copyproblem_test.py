"""Evaluate a trained copy-problem run on the test split: prints the error rate, writes test_result.txt.

    python3 copyproblem_test.py --results_dir ~/Data/CopyProblem/results/100_MISTLayer_tanh_0141_1.000000_1.0_8_00
"""

import argparse

import copyproblem
import copyproblem_train
import training


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_test_arguments(parser, copyproblem.DEFAULT_DATA_DIR)
    training.test(parser.parse_args(), copyproblem_train.build_task)


if __name__ == '__main__':
    main()
