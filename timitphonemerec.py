"""TIMIT phoneme recognition: per-frame MFCCs and phone labels folded to 40 classes.

    python3 timitphonemerec.py [--data_dir ~/Data/TIMIT]        # after python3 timit.py

For each utterance of the folders made by timit.py: sample-level labels from the .phn file
(`start end phone`), folded from 61 to 40 classes (Lee and Hon, 1989, keeping q); the audio cropped
to the labelled span (an unlabelled sample inside it is an error); 13 MFCCs with
python_speech_features (25 ms Hamming window, 10 ms step, 85 Hz to 8 kHz), each frame labelled
with the sample nearest to its centre. Each split is saved in --data_dir as .npy files without
pickle: ragged sequences as one concatenated array plus the offsets where each sequence starts.
"""

import argparse
import json
import pathlib
import sys

import numpy as np
import scipy.io.wavfile

import timit
from utils import load_arrays, save_array_atomically

DEFAULT_DATA_DIR = timit.DEFAULT_DATA_DIR
SAMPLE_RATE = timit.SAMPLE_RATE
FOLDS = json.loads((timit.RESOURCES / 'timit_phones.json').read_text())['folds']
TOKEN_VOCAB = sorted(set(FOLDS.values()))  # The 40 classes.
WINDOW_SECONDS, STEP_SECONDS, NUM_CEPSTRA = 0.025, 0.010, 13
LOW_FREQUENCY, HIGH_FREQUENCY = 85, 8000
SPLITS = ('train', 'val', 'test')
# The arrays saved for each split, and what each holds.
ARRAYS = {
    'audio': 'int16 samples of all utterances, concatenated',
    'audio_labels': 'int8 class of each sample',
    'audio_offsets': 'int64 start of each utterance in audio, and the total length',
    'mfccs': 'float32 [frames, 13] of all utterances, concatenated',
    'mfcc_labels': 'int8 class of each frame',
    'mfcc_offsets': 'int64 start of each utterance in mfccs, and the total length',
    'utterances': 'unicode speaker/utterance names',
}


def sample_labels(phn_path, num_samples):
    """Returns (start, end, labels): the labelled span and the folded class of each sample in it."""
    segments = []
    for line_number, line in enumerate(pathlib.Path(phn_path).read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            start, end, phone = line.split()
            segments.append((int(start), int(end), FOLDS[phone]))
        except (ValueError, KeyError):
            raise ValueError(f'{phn_path}, line {line_number}: expected "start end phone" with one of the 61 '
                             f'TIMIT phones; got {line!r}.') from None
    if not segments:
        raise ValueError(f'{phn_path} holds no phone labels.')
    span_start, span_end = segments[0][0], min(segments[-1][1], num_samples)
    labels = np.full(span_end - span_start, -1, dtype=np.int8)
    for start, end, folded in segments:
        labels[max(start, span_start) - span_start:min(end, span_end) - span_start] = TOKEN_VOCAB.index(folded)
    unlabelled = np.flatnonzero(labels < 0)
    if len(unlabelled):
        raise ValueError(f'{phn_path}: sample {span_start + unlabelled[0]} lies inside the labelled span but '
                         f'has no phone label (a gap between segments).')
    return span_start, span_end, labels


def mfccs_and_labels(audio, labels):
    """audio `[num_samples]`, labels `[num_samples]` -> MFCCs float32 `[frames, 13]`, labels `[frames]`."""
    import python_speech_features
    mfccs = python_speech_features.mfcc(audio.astype(np.float64), samplerate=SAMPLE_RATE, winlen=WINDOW_SECONDS,
                                        winstep=STEP_SECONDS, numcep=NUM_CEPSTRA, lowfreq=LOW_FREQUENCY,
                                        highfreq=HIGH_FREQUENCY, winfunc=np.hamming)
    window, step = int(round(WINDOW_SECONDS * SAMPLE_RATE)), int(round(STEP_SECONDS * SAMPLE_RATE))
    centres = np.minimum(np.arange(len(mfccs)) * step + window // 2, len(labels) - 1)
    return mfccs.astype(np.float32), labels[centres]


def prepare_split(data_dir, split):
    """Reads `data_dir/split/*/*.wav` and its .phn files; returns the ARRAYS of the split."""
    split_dir = pathlib.Path(data_dir) / split
    wav_paths = sorted(split_dir.glob('*/*.wav'))
    if not wav_paths:
        raise FileNotFoundError(f'No utterances in {split_dir}. Run first: python3 timit.py --data_dir {data_dir}')
    audios, audio_labels, mfccs, mfcc_labels, names = [], [], [], [], []
    for wav_path in wav_paths:
        sample_rate, audio = scipy.io.wavfile.read(wav_path)
        if sample_rate != SAMPLE_RATE:
            raise ValueError(f'{wav_path} has a sample rate of {sample_rate} Hz, not {SAMPLE_RATE} Hz.')
        start, end, labels = sample_labels(wav_path.with_suffix('.phn'), len(audio))
        audio = audio[start:end]
        utterance_mfccs, utterance_mfcc_labels = mfccs_and_labels(audio, labels)
        audios.append(audio), audio_labels.append(labels), names.append(f'{wav_path.parent.name}/{wav_path.stem}')
        mfccs.append(utterance_mfccs), mfcc_labels.append(utterance_mfcc_labels)
    offsets = lambda seqs: np.cumsum([0] + [len(seq) for seq in seqs]).astype(np.int64)
    return {'audio': np.concatenate(audios).astype(np.int16), 'audio_labels': np.concatenate(audio_labels),
            'audio_offsets': offsets(audios), 'mfccs': np.concatenate(mfccs),
            'mfcc_labels': np.concatenate(mfcc_labels), 'mfcc_offsets': offsets(mfccs),
            'utterances': np.array(names)}


def file_name(split, array_name):
    return f'{split}_{array_name}.npy'


def load(data_dir=DEFAULT_DATA_DIR, mfcc=True):
    """Returns `{split: (input_seqs, label_seqs)}`: with mfcc, inputs float32 `[frames, 13]` and labels
    int `[frames]`; else audio float32 `[samples, 1]` in [-1, 1) and labels `[samples]`."""
    data_dir = pathlib.Path(data_dir).expanduser()
    names = ('mfccs', 'mfcc_labels', 'mfcc_offsets') if mfcc else ('audio', 'audio_labels', 'audio_offsets')
    data = {}
    for split in SPLITS:
        inputs, labels, offsets = load_arrays(data_dir, [file_name(split, name) for name in names],
                                              f'python3 timitphonemerec.py --data_dir {data_dir}')
        if not mfcc:
            inputs = (inputs.astype(np.float32) / 32768.0)[:, None]
        data[split] = ([inputs[start:end] for start, end in zip(offsets[:-1], offsets[1:])],
                       [labels[start:end].astype(np.int64) for start, end in zip(offsets[:-1], offsets[1:])])
    return data


def load_split(data_dir=DEFAULT_DATA_DIR, val=True, mfcc=True, normalize=True):
    """Returns `(train_inputs, train_labels, test_inputs, test_labels)`, lists of sequences, where the
    test set is the validation set if `val`. normalize: each sequence is centred and scaled to unit
    standard deviation per feature on its own."""
    data = load(data_dir, mfcc)
    train_inputs, train_labels = data['train']
    test_inputs, test_labels = data['val' if val else 'test']
    if normalize:
        standardize = lambda seq: (seq - seq.mean(axis=0)) / (seq.std(axis=0) + 1e-8)
        train_inputs, test_inputs = [standardize(seq) for seq in train_inputs], [standardize(seq) for seq in test_inputs]
    return train_inputs, train_labels, test_inputs, test_labels


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data_dir', type=pathlib.Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    data_dir = args.data_dir.expanduser()
    try:
        for split in SPLITS:
            arrays = prepare_split(data_dir, split)
            for name, array in arrays.items():
                save_array_atomically(data_dir / file_name(split, name), array)
            print(f'{split}: {len(arrays["utterances"])} utterances, {len(arrays["mfccs"])} frames.')
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f'timitphonemerec.py: {error}')


if __name__ == '__main__':
    main()
