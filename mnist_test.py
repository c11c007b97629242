"""Evaluate a trained MNIST run on the test split: prints the error rate, writes test_result.txt.

    python3 mnist_test.py --results_dir ~/Data/MNIST/results/1_MISTLayer_tanh_0139_1.000000_1.0_8_00
"""

import argparse

import mnist
import mnist_train
import training


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_test_arguments(parser, mnist.DEFAULT_DATA_DIR)
    training.test(parser.parse_args(), mnist_train.build_task)


if __name__ == '__main__':
    main()
