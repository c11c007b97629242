"""TIMIT: turn the raw LDC release (LDC93S1) into train, val and test folders.

    python3 timit.py [--raw_data_dir ~/Data/TIMIT_raw] [--data_dir ~/Data/TIMIT]

The raw release holds README.DOC, DOC/, TRAIN/DRn/SPEAKER/ and TEST/DRn/SPEAKER/, each utterance as
.WAV (NIST SPHERE), .PHN, .WRD and .TXT (upper or lower case). The output holds
`{train,val,test}/<speaker>/<utterance>.{wav,phn,wrd,txt}`, all names lower case: the 462 training
speakers, the standard 50-speaker development set (val) and the 24-speaker core test set (test),
both from TEST, without the dialect sentences (SA*), the audio as standard WAV files.
"""

import argparse
import json
import pathlib
import shutil
import sys

import numpy as np
import scipy.io.wavfile

RESOURCES = pathlib.Path(__file__).resolve().parent / 'resources'
SAMPLE_RATE = 16000
DEFAULT_RAW_DATA_DIR = pathlib.Path('~/Data/TIMIT_raw').expanduser()
DEFAULT_DATA_DIR = pathlib.Path('~/Data/TIMIT').expanduser()
_SPEAKERS = json.loads((RESOURCES / 'timit_speakers.json').read_text())
TRAIN_SPEAKERS, VAL_SPEAKERS, TEST_SPEAKERS = _SPEAKERS['train'], _SPEAKERS['val'], _SPEAKERS['test']
TOKEN_VOCAB = json.loads((RESOURCES / 'timit_phones.json').read_text())['phones']  # The 61 phones.
SPLITS = {'train': ('train', TRAIN_SPEAKERS), 'val': ('test', VAL_SPEAKERS), 'test': ('test', TEST_SPEAKERS)}


class TIMITError(ValueError):
    """The raw data is not what TIMIT should be; the message names the file or folder."""


def read_sphere(path):
    """Reads a NIST SPHERE file of 16-bit PCM: returns (sample_rate, int16 samples `[num_samples]`)."""
    data = pathlib.Path(path).read_bytes()
    if not data.startswith(b'NIST_1A\n'):
        raise TIMITError(f'{path} is not a NIST SPHERE file (it does not start with NIST_1A).')
    try:
        header_size = int(data[8:16])
        fields = {}
        for line in data[16:header_size].decode('ascii').splitlines():
            parts = line.split(None, 2)
            if parts and parts[0] == 'end_head':
                break
            if len(parts) == 3:
                fields[parts[0]] = int(parts[2]) if parts[1] == '-i' else parts[2].strip()
    except (ValueError, UnicodeDecodeError) as error:
        raise TIMITError(f'{path} has an unreadable SPHERE header ({error}).') from None
    if fields.get('sample_coding', 'pcm') != 'pcm' or fields.get('sample_n_bytes', 2) != 2 \
            or fields.get('channel_count', 1) != 1:
        raise TIMITError(f'{path} is not single-channel 16-bit PCM: {fields}.')
    byte_order = '>' if fields.get('sample_byte_format', '01') == '10' else '<'
    samples = np.frombuffer(data[header_size:], dtype=byte_order + 'i2').astype(np.int16)
    if 'sample_count' in fields and len(samples) != fields['sample_count']:
        raise TIMITError(f'{path} holds {len(samples)} samples but its header says {fields["sample_count"]}.')
    return fields.get('sample_rate'), samples


def _children_by_lower_name(folder):
    return {child.name.lower(): child for child in folder.iterdir()}


def find_speaker_folders(raw_data_dir):
    """`{(part, speaker): folder}` with part 'train' or 'test', all names lower case."""
    raw_data_dir = pathlib.Path(raw_data_dir).expanduser()
    if not raw_data_dir.is_dir():
        raise TIMITError(f'{raw_data_dir} does not exist. Point --raw_data_dir at the TIMIT release (LDC93S1).')
    top = _children_by_lower_name(raw_data_dir)
    if not {'train', 'test'} <= {name for name, child in top.items() if child.is_dir()}:
        raise TIMITError(f'{raw_data_dir} is not a TIMIT folder: it should hold TRAIN/ and TEST/ '
                         f'(and README.DOC, DOC/). Point --raw_data_dir at the TIMIT release.')
    speakers = {}
    for part in ('train', 'test'):
        for dialect in sorted(top[part].iterdir()):
            if dialect.is_dir():
                for speaker in sorted(dialect.iterdir()):
                    if speaker.is_dir():
                        speakers[(part, speaker.name.lower())] = speaker
    return speakers


def convert(raw_data_dir=DEFAULT_RAW_DATA_DIR, data_dir=DEFAULT_DATA_DIR, log=print):
    raw_data_dir, data_dir = pathlib.Path(raw_data_dir).expanduser(), pathlib.Path(data_dir).expanduser()
    if data_dir.exists():
        raise TIMITError(f'{data_dir} already exists and is left as it is. Remove it, or choose another --data_dir.')
    speaker_folders = find_speaker_folders(raw_data_dir)
    missing = [f'{part}/{speaker}' for split, (part, speakers) in SPLITS.items() for speaker in speakers
               if (part, speaker) not in speaker_folders]
    if missing:
        log(f'Warning: {len(missing)} listed speakers are not in {raw_data_dir}: {", ".join(missing[:5])} ...')
    partial = data_dir.with_name(data_dir.name + '.partial')
    if partial.exists():
        shutil.rmtree(partial)  # Our own leftover from an interrupted run.
    try:
        for split, (part, speakers) in SPLITS.items():
            for speaker in speakers:
                source = speaker_folders.get((part, speaker))
                if source is None:
                    continue
                target = partial / split / speaker
                target.mkdir(parents=True)
                for file in sorted(source.iterdir()):
                    name = file.name.lower()
                    if name.startswith('sa') or file.suffix.lower() not in ('.wav', '.phn', '.wrd', '.txt'):
                        continue
                    if name.endswith('.wav'):
                        sample_rate, samples = read_sphere(file)
                        if sample_rate != SAMPLE_RATE:
                            raise TIMITError(f'{file} has a sample rate of {sample_rate} Hz, not {SAMPLE_RATE} Hz.')
                        scipy.io.wavfile.write(target / name, SAMPLE_RATE, samples)
                    else:
                        shutil.copyfile(file, target / name)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    partial.rename(data_dir)
    log(f'Wrote TIMIT train, val and test to {data_dir}.')


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--raw_data_dir', type=pathlib.Path, default=DEFAULT_RAW_DATA_DIR)
    parser.add_argument('--data_dir', type=pathlib.Path, default=DEFAULT_DATA_DIR)
    args = parser.parse_args()
    try:
        convert(args.raw_data_dir, args.data_dir)
    except TIMITError as error:
        sys.exit(f'timit.py: {error}')


if __name__ == '__main__':
    main()
