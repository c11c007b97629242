"""Evaluate a trained addition-problem run on the test split: prints the MSE, writes test_result.txt.

    python3 additionproblem_test.py --results_dir ~/Data/AdditionProblem/results/100_MISTLayer_tanh_0139_1.000000_1.0_8_00
"""

import argparse

import additionproblem
import additionproblem_train
import training


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_test_arguments(parser, additionproblem.DEFAULT_DATA_DIR)
    training.test(parser.parse_args(), additionproblem_train.build_task)


if __name__ == '__main__':
    main()
