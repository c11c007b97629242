"""Train an RNN on (permuted) sequential MNIST: one pixel per step, the class at the last step.

    python3 mnist.py && python3 mnist_train.py [--permute 1] [--num_opt_steps 15000]

With --debug 1 the images are downsampled 4x per side (49 steps instead of 784).
"""

import argparse

import numpy as np

import mnist
import models
import training
import utils

PERMUTATION_SEED = 0  # One fixed pixel order for every run, as in the paper's pMNIST.


def build_task(args, val=True):
    train_images, train_labels, test_images, test_labels = mnist.load_split(
        args.data_dir, val=val, permute=bool(args.permute), seed=PERMUTATION_SEED)

    def to_sequences(images):
        if args.debug:
            images = images.reshape(len(images), 7, 4, 7, 4).mean(axis=(2, 4))
        return images.reshape(len(images), -1, 1).astype(np.float32)

    train_inputs, test_inputs = to_sequences(train_images), to_sequences(test_images)
    length = train_inputs.shape[1]

    def batch(inputs, labels):
        one_hot_labels = utils.one_hot(labels, mnist.NUM_CLASSES)
        return lambda indices: (inputs[indices], training.targets_at_last_step(one_hot_labels[indices], length))

    return training.Task(
        model_class=models.RNNClassificationModel, input_size=1, target_size=mnist.NUM_CLASSES,
        num_train=len(train_inputs), num_test=len(test_inputs), train_batch=batch(train_inputs, train_labels),
        test_batch=batch(test_inputs, test_labels), batch_size=100, test_batch_size=100, loss='seqwise',
        metric='error rate', train_summary_every=10, val_every=150, describe=training.describe_classification)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_arguments(parser, mnist.DEFAULT_DATA_DIR, num_hidden_units=139, num_opt_steps=15000)
    parser.add_argument('--permute', type=int, default=1, help='1: permuted MNIST, 0: pixels in scan order')
    args = parser.parse_args()
    training.train(args, build_task, task_value=f'{args.permute:d}')


if __name__ == '__main__':
    main()
