"""Train an RNN on the copy problem: one-hot symbols in (12 classes), the same classes out at every step.

    python3 copyproblem.py && python3 copyproblem_train.py [--num_opt_steps 500] [--layer_type LSTMLayer]
"""

import argparse

import copyproblem
import models
import training
import utils

NUM_POSSIBLE_SYMBOLS = 10
NUM_INPUT_CLASSES = NUM_POSSIBLE_SYMBOLS + 2  # Symbols, blank, go.
NUM_TARGET_CLASSES = NUM_POSSIBLE_SYMBOLS + 1  # Symbols, blank.


def build_task(args, val=True):
    train_inputs, train_targets, test_inputs, test_targets = copyproblem.load_split(
        args.data_dir, args.copy_delay, NUM_POSSIBLE_SYMBOLS, val=val)

    def batch(inputs, targets):
        return lambda indices: (utils.one_hot(inputs[indices], NUM_INPUT_CLASSES),
                                utils.one_hot(targets[indices], NUM_TARGET_CLASSES))

    return training.Task(
        model_class=models.RNNClassificationModel, input_size=NUM_INPUT_CLASSES, target_size=NUM_TARGET_CLASSES,
        num_train=len(train_inputs), num_test=len(test_inputs), train_batch=batch(train_inputs, train_targets),
        test_batch=batch(test_inputs, test_targets), batch_size=100, test_batch_size=1000, loss='stepwise',
        metric='error rate', train_summary_every=10, val_every=25, describe=training.describe_classification)


def add_task_arguments(parser):
    parser.add_argument('--copy_delay', type=int, default=100)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_arguments(parser, copyproblem.DEFAULT_DATA_DIR, num_hidden_units=141, num_opt_steps=100000)
    add_task_arguments(parser)
    args = parser.parse_args()
    training.train(args, build_task, task_value=f'{args.copy_delay:d}')


if __name__ == '__main__':
    main()
