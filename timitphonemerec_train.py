"""Train an RNN on TIMIT phoneme recognition: 13 MFCCs in, one of 40 phone classes out at every frame.

    python3 timit.py && python3 timitphonemerec.py && python3 timitphonemerec_train.py

Batches are padded to one of a few lengths (utils.bucket_length), so that the compiled train step is
built for a bounded number of shapes. With --debug 1 only every 16th frame is kept.
"""

import argparse

import models
import timitphonemerec
import training
import utils


def build_task(args, val=True):
    train_inputs, train_labels, test_inputs, test_labels = timitphonemerec.load_split(args.data_dir, val=val)
    if args.debug:
        subsample = lambda seqs: [seq[::16] for seq in seqs]
        train_inputs, train_labels, test_inputs, test_labels = map(
            subsample, (train_inputs, train_labels, test_inputs, test_labels))
    num_classes = len(timitphonemerec.TOKEN_VOCAB)

    def batch(inputs, labels):
        def make(indices):
            length = utils.bucket_length(max(len(inputs[i]) for i in indices))
            return utils.make_batch([inputs[i] for i in indices],
                                    [utils.one_hot(labels[i], num_classes) for i in indices], length)
        return make

    return training.Task(
        model_class=models.RNNClassificationModel, input_size=timitphonemerec.NUM_CEPSTRA, target_size=num_classes,
        num_train=len(train_inputs), num_test=len(test_inputs), train_batch=batch(train_inputs, train_labels),
        test_batch=batch(test_inputs, test_labels), batch_size=100, test_batch_size=400, loss='stepwise',
        metric='error rate', train_summary_every=1, val_every=10, describe=training.describe_classification)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    training.add_arguments(parser, timitphonemerec.DEFAULT_DATA_DIR, num_hidden_units=139, num_opt_steps=2000)
    args = parser.parse_args()
    training.train(args, build_task)


if __name__ == '__main__':
    main()
