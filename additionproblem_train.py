"""Train an RNN on the addition problem: 2 input channels, the sum of the marked values at the last step.

    python3 additionproblem.py && python3 additionproblem_train.py [--num_opt_steps 500]
"""

import argparse

import additionproblem
import models
import training


def build_task(args, val=True):
    train_inputs, train_targets, test_inputs, test_targets = additionproblem.load_split(
        args.data_dir, args.length, val=val)

    def batch(inputs, targets):
        length = inputs.shape[1]
        return lambda indices: (inputs[indices], training.targets_at_last_step(targets[indices, None], length))

    def describe(inputs, targets, predictions):
        return '\n'.join(f'  target {target[-1, 0]:.4f}  prediction {prediction[-1, 0]:.4f}'
                         for target, prediction in zip(targets, predictions))

    return training.Task(
        model_class=models.RNNRegressionModel, input_size=2, target_size=1, num_train=len(train_inputs),
        num_test=len(test_inputs), train_batch=batch(train_inputs, train_targets),
        test_batch=batch(test_inputs, test_targets), batch_size=100, test_batch_size=1000, loss='stepwise',
        metric='mse', train_summary_every=10, val_every=25, describe=describe)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_arguments(parser, additionproblem.DEFAULT_DATA_DIR, num_hidden_units=139, num_opt_steps=100000)
    parser.add_argument('--length', type=int, default=100)
    args = parser.parse_args()
    training.train(args, build_task, task_value=f'{args.length:d}')


if __name__ == '__main__':
    main()
