"""Evaluate a trained TIMIT phoneme recognition run on the core test set: prints the frame error rate,
writes test_result.txt.

    python3 timitphonemerec_test.py --results_dir ~/Data/TIMIT/results/MISTLayer_tanh_0139_1.000000_1.0_8_00
"""

import argparse

import timitphonemerec
import timitphonemerec_train
import training


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_test_arguments(parser, timitphonemerec.DEFAULT_DATA_DIR)
    training.test(parser.parse_args(), timitphonemerec_train.build_task)


if __name__ == '__main__':
    main()
