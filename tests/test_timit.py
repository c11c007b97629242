"""TIMIT conversion and phoneme-recognition features on a small corpus in the real release layout."""

import json

import numpy as np
import pytest
import scipy.io.wavfile

import timit
import timitphonemerec
from conftest import SHARED
from test_data import run_script

TRAIN, VAL, TEST = ['faem0', 'mcpm0'], ['fadg0', 'mdlf0'], ['fdhc0']
UNLISTED_TRAIN, UNLISTED_TEST = 'mzzz0', 'fzzz9'
UTTERANCES = ['SA1', 'SA2', 'SI1573', 'SX133']
PHONES = ['h#', 'sh', 'iy', 'hv', 'ae', 'dcl', 'd', 'y', 'axr', 'pau', 'zh', 'q', 'h#']


def sphere_bytes(samples, sample_rate=16000, utterance_id='xxx0_sx1'):
    lines = ['NIST_1A', '   1024', 'database_id -s5 TIMIT', 'database_version -s3 1.0',
             f'utterance_id -s{len(utterance_id)} {utterance_id}', 'channel_count -i 1',
             f'sample_count -i {len(samples)}', f'sample_rate -i {sample_rate}', f'sample_min -i {samples.min()}',
             f'sample_max -i {samples.max()}', 'sample_n_bytes -i 2', 'sample_byte_format -s2 01',
             'sample_sig_bits -i 16', 'end_head']
    header = ('\n'.join(lines) + '\n').encode('ascii')
    return header + b' ' * (1024 - len(header)) + samples.astype('<i2').tobytes()


def phone_segments(num_samples, rng):
    bounds = np.sort(rng.choice(np.arange(200, num_samples - 400), len(PHONES) - 1, replace=False))
    bounds = [0, *bounds, num_samples - 300]  # The last label ends before the audio does.
    return [(start, end, phone) for start, end, phone in zip(bounds[:-1], bounds[1:], PHONES)]


def write_corpus(root, sample_rate=16000, gap=False):
    """A TIMIT-like release with upper-case names; returns {speaker/utterance: (samples, segments)}."""
    rng = np.random.default_rng(0)
    (root / 'DOC').mkdir(parents=True)
    (root / 'README.DOC').write_text('TIMIT\n')
    (root / 'DOC' / 'PHONCODE.DOC').write_text('phones\n')
    written = {}
    speakers = [('TRAIN', s) for s in TRAIN + [UNLISTED_TRAIN]] + [('TEST', s) for s in VAL + TEST + [UNLISTED_TEST]]
    for index, (part, speaker) in enumerate(speakers):
        folder = root / part / f'DR{index % 3 + 1}' / speaker.upper()
        folder.mkdir(parents=True)
        for utterance in UTTERANCES:
            samples = rng.integers(-3000, 3000, 6000 + 100 * index).astype(np.int16)
            segments = phone_segments(len(samples), rng)
            if gap:
                segments[3] = (segments[3][0] + 10, segments[3][1], segments[3][2])
            (folder / f'{utterance}.WAV').write_bytes(sphere_bytes(samples, sample_rate))
            (folder / f'{utterance}.PHN').write_text(''.join(f'{s} {e} {p}\n' for s, e, p in segments))
            (folder / f'{utterance}.WRD').write_text(f'{segments[1][0]} {segments[3][1]} she\n')
            (folder / f'{utterance}.TXT').write_text(f'0 {len(samples)} She had your dark suit.\n')
            written[f'{speaker}/{utterance.lower()}'] = (samples, segments)
    return written


def test_lists_match_shared_folder():
    shared = SHARED / 'data' / 'timit'
    if not shared.is_dir():
        pytest.skip(f'{shared} not found')
    assert json.loads((shared / 'speakers.json').read_text()) == {
        'train': timit.TRAIN_SPEAKERS, 'val': timit.VAL_SPEAKERS, 'test': timit.TEST_SPEAKERS}
    assert len(timit.TRAIN_SPEAKERS) == 462 and len(timit.VAL_SPEAKERS) == 50 and len(timit.TEST_SPEAKERS) == 24
    assert len(timit.TOKEN_VOCAB) == 61 and len(timitphonemerec.TOKEN_VOCAB) == 40
    assert set(TRAIN) <= set(timit.TRAIN_SPEAKERS) and set(VAL) <= set(timit.VAL_SPEAKERS)
    assert set(TEST) <= set(timit.TEST_SPEAKERS)


def test_timit_then_phoneme_recognition_scripts(tmp_path):
    written = write_corpus(tmp_path / 'raw')
    run_script('timit.py', '--raw_data_dir', tmp_path / 'raw', '--data_dir', tmp_path / 'timit')
    out = tmp_path / 'timit'
    for split, speakers in (('train', TRAIN), ('val', VAL), ('test', TEST)):
        assert sorted(path.name for path in (out / split).iterdir()) == sorted(speakers)
        for speaker in speakers:
            names = sorted(path.name for path in (out / split / speaker).iterdir())
            assert names == sorted(f'{u}.{ext}' for u in ('si1573', 'sx133') for ext in ('wav', 'phn', 'wrd', 'txt'))
            sample_rate, samples = scipy.io.wavfile.read(out / split / speaker / 'sx133.wav')
            assert sample_rate == 16000
            np.testing.assert_array_equal(samples, written[f'{speaker}/sx133'][0])

    run_script('timitphonemerec.py', '--data_dir', out)
    for split in ('train', 'val', 'test'):
        for name in timitphonemerec.ARRAYS:
            np.load(out / f'{split}_{name}.npy', allow_pickle=False)
    data = timitphonemerec.load(out, mfcc=False)
    utterances = np.load(out / 'train_utterances.npy').tolist()
    audio, labels = data['train'][0][0], data['train'][1][0]
    samples, segments = written[utterances[0]]
    assert len(audio) == len(labels) == segments[-1][1] - segments[0][0]
    np.testing.assert_allclose(audio[:, 0], samples[:segments[-1][1]] / 32768.0)
    vocab = timitphonemerec.TOKEN_VOCAB
    for start, end, phone in segments:
        assert (labels[start:end] == vocab.index(timitphonemerec.FOLDS[phone])).all()
    assert vocab[labels[segments[-4][0]]] == 'h#'  # pau folds into h#.
    assert vocab[labels[segments[-3][0]]] == 'sh'  # zh folds into sh.

    mfcc_data = timitphonemerec.load(out)
    for inputs, frame_labels in zip(*mfcc_data['val']):
        assert inputs.shape[1] == 13 and inputs.dtype == np.float32
        assert len(frame_labels) == len(inputs)
        assert frame_labels.min() >= 0 and frame_labels.max() < 40
    # Frame labels are the labels of the samples nearest the frame centres.
    mfccs, frame_labels = mfcc_data['train'][0][0], mfcc_data['train'][1][0]
    assert len(mfccs) == int(np.ceil((len(audio) - 400) / 160)) + 1
    np.testing.assert_array_equal(frame_labels, labels[np.minimum(np.arange(len(mfccs)) * 160 + 200, len(labels) - 1)])

    train_inputs, train_labels, val_inputs, _ = timitphonemerec.load_split(out, val=True)
    assert len(train_inputs) == 4 and len(val_inputs) == 4
    for sequence in train_inputs + val_inputs:
        np.testing.assert_allclose(sequence.mean(axis=0), 0, atol=1e-4)
        np.testing.assert_allclose(sequence.std(axis=0), 1, atol=1e-3)
    assert len(timitphonemerec.load_split(out, val=False)[2]) == 2


def test_timit_errors_name_the_problem(tmp_path):
    (tmp_path / 'not_timit').mkdir()
    result = run_script('timit.py', '--raw_data_dir', tmp_path / 'not_timit', '--data_dir', tmp_path / 'x', check=False)
    assert result.returncode and 'not a TIMIT folder' in result.stderr and 'not_timit' in result.stderr

    write_corpus(tmp_path / 'raw')
    (tmp_path / 'existing').mkdir()
    (tmp_path / 'existing' / 'keep.txt').write_text('mine')
    result = run_script('timit.py', '--raw_data_dir', tmp_path / 'raw', '--data_dir', tmp_path / 'existing', check=False)
    assert result.returncode and 'already exists' in result.stderr
    assert (tmp_path / 'existing' / 'keep.txt').read_text() == 'mine'

    write_corpus(tmp_path / 'raw8k', sample_rate=8000)
    result = run_script('timit.py', '--raw_data_dir', tmp_path / 'raw8k', '--data_dir', tmp_path / 'out8k', check=False)
    assert result.returncode and '8000 Hz' in result.stderr and '.WAV' in result.stderr
    assert not (tmp_path / 'out8k').exists() and not (tmp_path / 'out8k.partial').exists()

    write_corpus(tmp_path / 'raw_gap', gap=True)
    run_script('timit.py', '--raw_data_dir', tmp_path / 'raw_gap', '--data_dir', tmp_path / 'gap')
    result = run_script('timitphonemerec.py', '--data_dir', tmp_path / 'gap', check=False)
    assert result.returncode and 'gap' in result.stderr and '.phn' in result.stderr
