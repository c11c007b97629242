"""Helpers: token ids, one-hot labels, padding, batch generators and data files.

A sequence is a NumPy array whose first axis is time, `[length, ...]`. Batches are padded to the
longest sequence in them: inputs with 0.0, targets with NaN, which the models read as "no target".
"""

import io
import os
import pathlib
import tempfile

import numpy as np


def tokens_to_ids(tokens, token_vocab):
    """Maps each token to its index in `token_vocab`; returns an int array shaped like `tokens`."""
    index = {token: i for i, token in enumerate(token_vocab)}
    tokens = np.asarray(tokens)
    unknown = sorted({str(token) for token in tokens.ravel() if token not in index})
    if unknown:
        raise ValueError(f'Tokens not in the vocabulary: {", ".join(unknown[:10])}.')
    return np.vectorize(index.__getitem__, otypes=[np.int64])(tokens) if tokens.size else tokens.astype(np.int64)


def ids_to_tokens(ids, token_vocab):
    """Maps each id to its token: a list for a 1-D `ids`, nested lists otherwise."""
    return np.asarray(token_vocab, dtype=object)[np.asarray(ids, dtype=np.int64)].tolist()


def one_hot(labels, num_classes):
    """labels `[...]` (ints, or floats with NaN for "no label") -> float32 `[..., num_classes]`;
    a NaN label gives a row of NaN."""
    labels = np.asarray(labels, dtype=np.float64)
    missing = np.isnan(labels)
    ids = np.where(missing, 0, labels).astype(np.int64)
    if np.any((ids < 0) | (ids >= num_classes)):
        raise ValueError(f'Labels must lie in [0, {num_classes}); got values from {ids.min()} to {ids.max()}.')
    encoded = np.eye(num_classes, dtype=np.float32)[ids]
    encoded[missing] = np.nan
    return encoded


def seq_ind_generator(num_seqs, num_epochs=np.inf, shuffle=True, rng=None):
    """Yields sequence indices, epoch after epoch, each epoch a (shuffled) pass over all of them."""
    rng = np.random.default_rng(rng)
    epoch = 0
    while epoch < num_epochs:
        yield from (rng.permutation(num_seqs) if shuffle else np.arange(num_seqs))
        epoch += 1


def pad_seq(seq, length, value):
    """Pads `seq` `[seq_length, ...]` along time to `[length, ...]` with `value`."""
    seq = np.asarray(seq)
    if len(seq) > length:
        raise ValueError(f'Cannot pad a sequence of length {len(seq)} to the shorter length {length}.')
    padding = np.full((length - len(seq),) + seq.shape[1:], value, dtype=np.result_type(seq.dtype, type(value)))
    return np.concatenate([seq, padding], axis=0)


def _check_pairs(input_seqs, target_seqs, max_batch_size):
    if len(input_seqs) != len(target_seqs):
        raise ValueError(f'Got {len(input_seqs)} input sequences but {len(target_seqs)} target sequences.')
    if len(input_seqs) == 0:
        raise ValueError('Got no sequences to batch.')
    if max_batch_size < 1:
        raise ValueError(f'max_batch_size must be positive; got {max_batch_size}.')
    for i, (inputs, targets) in enumerate(zip(input_seqs, target_seqs)):
        if len(inputs) != len(targets):
            raise ValueError(f'Sequence {i} has {len(inputs)} input steps but {len(targets)} target steps.')


def make_batch(input_seqs, target_seqs, length=None):
    """Pads sequences to one batch: inputs `[batch_size, length, ...]` (0.0), targets (NaN), float32."""
    length = length or max(len(seq) for seq in input_seqs)
    inputs = np.stack([pad_seq(np.asarray(seq, np.float32), length, 0.0) for seq in input_seqs])
    targets = np.stack([pad_seq(np.asarray(seq, np.float32), length, np.nan) for seq in target_seqs])
    return inputs.astype(np.float32), targets.astype(np.float32)


def full_bptt_batch_generator(input_seqs, target_seqs, max_batch_size, num_epochs=np.inf, shuffle=True,
                              random_roll=False, rng=None):
    """Yields `(inputs, targets)` batches of whole sequences, padded to the batch's longest one.

    Batches run on across epochs, so every batch holds `max_batch_size` sequences except the last
    one of a finite run. `random_roll` rolls each sequence's inputs and targets together in time by
    a random amount (for tasks where the start is arbitrary)."""
    _check_pairs(input_seqs, target_seqs, max_batch_size)
    rng = np.random.default_rng(rng)
    indices = seq_ind_generator(len(input_seqs), num_epochs, shuffle, rng)
    while True:
        batch = [index for _, index in zip(range(max_batch_size), indices)]
        if not batch:
            return
        inputs, targets = [input_seqs[i] for i in batch], [target_seqs[i] for i in batch]
        if random_roll:
            shifts = [rng.integers(len(seq)) for seq in inputs]
            inputs = [np.roll(seq, shift, axis=0) for seq, shift in zip(inputs, shifts)]
            targets = [np.roll(seq, shift, axis=0) for seq, shift in zip(targets, shifts)]
        yield make_batch(inputs, targets)


def truncated_bptt_batch_generator(input_seqs, target_seqs, max_batch_size, max_truncation_length,
                                   num_epochs=np.inf, shuffle=True, random_roll=False, rng=None):
    """Yields `(inputs, targets, reset_states)`: each full-BPTT batch cut along time into pieces of
    at most `max_truncation_length` steps. `reset_states` is True for the first piece of a batch,
    where the model must start from its initial states, and False where it carries its final
    states over from the previous piece."""
    if max_truncation_length < 1:
        raise ValueError(f'max_truncation_length must be positive; got {max_truncation_length}.')
    for inputs, targets in full_bptt_batch_generator(input_seqs, target_seqs, max_batch_size, num_epochs,
                                                     shuffle, random_roll, rng):
        for start in range(0, inputs.shape[1], max_truncation_length):
            end = start + max_truncation_length
            yield inputs[:, start:end], targets[:, start:end], start == 0


def bucket_length(length, buckets_per_octave=4):
    """Rounds `length` up to one of a few sizes (4 per doubling by default), so that data of varied
    lengths compiles a bounded number of programs: at most `buckets_per_octave` per doubling, at
    most 1 / buckets_per_octave padding."""
    if length <= buckets_per_octave:
        return int(length)
    step = 2 ** max(int(np.floor(np.log2(length))) - int(np.log2(buckets_per_octave)), 0)
    return int(-(-length // step) * step)


# Data files.
class MissingDataError(FileNotFoundError):
    """Raised when a data set has not been prepared yet; the message says how to prepare it."""


def write_atomically(path, data):
    """Writes `data` (bytes or str) to `path` through a temporary file in the same folder, so that
    no half-written file is ever left under the final name."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix='.' + path.name, suffix='.partial')
    try:
        with os.fdopen(handle, 'wb') as file:
            file.write(data.encode() if isinstance(data, str) else data)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def save_array_atomically(path, array):
    """Saves `array` as the .npy file `path` (without pickle), atomically."""
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    write_atomically(path, buffer.getvalue())


def add_generated_data_arguments(parser):
    """The flags of the scripts that generate their data: the size of each split and a seed."""
    parser.add_argument('--num_train_examples', type=int, default=100000)
    parser.add_argument('--num_val_examples', type=int, default=1000)
    parser.add_argument('--num_test_examples', type=int, default=10000)
    parser.add_argument('--seed', type=int, default=None, help='makes the files reproducible')


def write_generated_splits(args, generate, file_names):
    """Writes train, val and test into args.data_dir: `generate(num_examples, rng)` returns a split's
    arrays and `file_names(split)` their file names."""
    rng = np.random.default_rng(args.seed)
    for split in ('train', 'val', 'test'):
        arrays = generate(getattr(args, f'num_{split}_examples'), rng)
        for name, array in zip(file_names(split), arrays):
            save_array_atomically(pathlib.Path(args.data_dir).expanduser() / name, array)


def load_arrays(data_dir, file_names, command):
    """Loads `file_names` from `data_dir` (without pickle); a missing one raises MissingDataError
    that names the folder and the `command` that makes the files."""
    data_dir = pathlib.Path(data_dir).expanduser()
    missing = [name for name in file_names if not (data_dir / name).is_file()]
    if missing:
        raise MissingDataError(f'Data not found in {data_dir}: missing {", ".join(missing)}. '
                               f'Create it with: {command}')
    return [np.load(data_dir / name, allow_pickle=False) for name in file_names]
