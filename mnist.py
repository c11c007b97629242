"""MNIST: download (or import offline) the four idx files, and load them as arrays.

    python3 mnist.py [--data_dir ~/Data/MNIST]                      # download, trying each mirror
    python3 mnist.py --import_from FOLDER_OR_mnist.npz              # offline machines

Every file is checked against its published MD5 and written under its final name only once
complete. Files already in --data_dir are kept, never overwritten.
"""

import argparse
import gzip
import hashlib
import pathlib
import sys
import urllib.error
import urllib.request

import numpy as np

import utils

HEIGHT, WIDTH, NUM_CHANNELS = 28, 28, 1
NUM_CLASSES = 10
CLASS_NAMES = [str(digit) for digit in range(NUM_CLASSES)]
DEFAULT_DATA_DIR = pathlib.Path('~/Data/MNIST').expanduser()
MIRRORS = [
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
    'http://yann.lecun.com/exdb/mnist/',
]
# File name: (MD5 of the gzip file, MD5 of the raw idx file).
FILES = {
    'train-images-idx3-ubyte': ('f68b3c2dcbeaaa9fbdd348bbdeb94873', '6bbc9ace898e44ae57da46a324031adb'),
    'train-labels-idx1-ubyte': ('d53e105ee54ea40749a09fcbcd1e9432', 'a25bea736e30d166cdddb491f175f624'),
    't10k-images-idx3-ubyte': ('9fb629c4189551a2d022fa330f9573f3', '2646ac647ad5339dbf082846283269ea'),
    't10k-labels-idx1-ubyte': ('ec29112dd5afa0611ce80d1b7f02629c', '27ae3e4e09519cfbb04c329615203637'),
}
IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049


class MNISTFileError(ValueError):
    """A file that is not the MNIST file it should be: wrong checksum, truncated or foreign."""


def md5(data):
    return hashlib.md5(data).hexdigest()


def is_genuine(data, name):
    """Whether `data` is MNIST's `name`: the published gzip file, or any gzip or raw copy of the idx file."""
    gz_md5, raw_md5 = FILES[name]
    if md5(data) in (gz_md5, raw_md5):
        return True
    try:
        return md5(gzip.decompress(data)) == raw_md5
    except (OSError, EOFError):
        return False


def _existing_file(data_dir, name):
    """The gzip or raw copy of `name` in `data_dir`, or None."""
    for candidate in (data_dir / (name + '.gz'), data_dir / name):
        if candidate.is_file():
            return candidate
    return None


def _already_there(data_dir, name, log):
    """Whether `data_dir` holds `name` already; a copy that is not MNIST's is an error, and is kept."""
    path = _existing_file(data_dir, name)
    if path is None:
        return False
    if not is_genuine(path.read_bytes(), name):
        raise MNISTFileError(f'{path} exists but its MD5 is not that of MNIST\'s {name}; it was left as it is. '
                             f'Remove it and run this script again.')
    log(f'{path} is already there.')
    return True


def download(data_dir=DEFAULT_DATA_DIR, mirrors=MIRRORS, timeout=30, log=print):
    """Downloads the four gzip files into `data_dir`, trying the mirrors in order for each file."""
    data_dir = pathlib.Path(data_dir).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    for name, (gz_md5, _) in FILES.items():
        if _already_there(data_dir, name, log):
            continue
        failures = []
        for mirror in mirrors:
            url = mirror.rstrip('/') + '/' + name + '.gz'
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    data = response.read()
            except (urllib.error.URLError, OSError) as error:
                failures.append(f'{url}: {getattr(error, "reason", error)}')
                continue
            if md5(data) != gz_md5:
                failures.append(f'{url}: MD5 {md5(data)} instead of {gz_md5}')
                continue
            utils.write_atomically(data_dir / (name + '.gz'), data)
            log(f'Downloaded {url}')
            break
        else:
            raise RuntimeError(f'Could not download {name}.gz from any mirror:\n  ' + '\n  '.join(failures) +
                               f'\nOn a machine without internet access, copy the four MNIST files (or Keras\' '
                               f'mnist.npz) here and run: python3 mnist.py --data_dir {data_dir} --import_from PATH')


def import_files(source, data_dir=DEFAULT_DATA_DIR, log=print):
    """Imports MNIST from a folder holding the four files (gzip or raw idx) or from a Keras `mnist.npz`."""
    source, data_dir = pathlib.Path(source).expanduser(), pathlib.Path(data_dir).expanduser()
    data_dir.mkdir(parents=True, exist_ok=True)
    if source.is_file() and source.suffix == '.npz':
        with np.load(source, allow_pickle=False) as arrays:
            contents = {
                'train-images-idx3-ubyte': _idx_bytes(arrays['x_train'], IMAGES_MAGIC),
                'train-labels-idx1-ubyte': _idx_bytes(arrays['y_train'], LABELS_MAGIC),
                't10k-images-idx3-ubyte': _idx_bytes(arrays['x_test'], IMAGES_MAGIC),
                't10k-labels-idx1-ubyte': _idx_bytes(arrays['y_test'], LABELS_MAGIC),
            }
    elif source.is_dir():
        contents = {}
        for name in FILES:
            found = _existing_file(source, name)
            if found is None:
                raise FileNotFoundError(f'{source} holds neither {name}.gz nor {name}.')
            contents[name] = found.read_bytes()
    else:
        raise FileNotFoundError(f'{source} is neither a folder of the four MNIST files nor a Keras mnist.npz.')
    for name, data in contents.items():
        if _already_there(data_dir, name, log):
            continue
        if not is_genuine(data, name):
            raise MNISTFileError(f'The {name} taken from {source} does not have MNIST\'s MD5; nothing was written '
                                 f'for it.')
        utils.write_atomically(data_dir / (name + '.gz' if data[:2] == b'\x1f\x8b' else name), data)
        log(f'Imported {name} from {source}')


def _idx_bytes(array, magic):
    array = np.asarray(array, dtype=np.uint8)
    header = np.array([magic, *array.shape], dtype='>i4').tobytes()
    return header + array.tobytes()


def read_idx(path, magic):
    """Reads an idx file (gzip or raw) after checking its header: uint8 `[count, ...]`."""
    path = pathlib.Path(path)
    try:
        data = gzip.decompress(path.read_bytes()) if path.suffix == '.gz' else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise MNISTFileError(f'{path} is not a readable gzip file ({error}).') from None
    num_dimensions = 3 if magic == IMAGES_MAGIC else 1
    header_size = 4 * (1 + num_dimensions)
    if len(data) < header_size:
        raise MNISTFileError(f'{path} is too short to be an idx file ({len(data)} bytes).')
    header = np.frombuffer(data[:header_size], dtype='>i4')
    if header[0] != magic:
        raise MNISTFileError(f'{path} is not an MNIST {"image" if magic == IMAGES_MAGIC else "label"} file: '
                             f'magic number {header[0]} instead of {magic}.')
    shape = tuple(int(size) for size in header[1:])
    if magic == IMAGES_MAGIC and shape[1:] != (HEIGHT, WIDTH):
        raise MNISTFileError(f'{path} holds images of {shape[1]}x{shape[2]} pixels, not {HEIGHT}x{WIDTH}.')
    expected = header_size + int(np.prod(shape))
    if len(data) != expected:
        raise MNISTFileError(f'{path} should be {expected} bytes for {shape[0]} items but is {len(data)}: '
                             f'truncated or corrupt. Remove it and download or import it again.')
    return np.frombuffer(data, dtype=np.uint8, offset=header_size).reshape(shape)


def load(data_dir=DEFAULT_DATA_DIR):
    """Returns train images float32 `[60000, 28, 28, 1]` in [0, 1], train labels int64 `[60000]`,
    test images `[10000, 28, 28, 1]` and test labels `[10000]`."""
    data_dir = pathlib.Path(data_dir).expanduser()
    arrays = []
    for name in FILES:
        path = _existing_file(data_dir, name)
        if path is None:
            raise FileNotFoundError(f'MNIST not found in {data_dir} (no {name}.gz). Get it with: '
                                    f'python3 mnist.py --data_dir {data_dir}  (offline: add --import_from PATH)')
        arrays.append(read_idx(path, IMAGES_MAGIC if 'images' in name else LABELS_MAGIC))
    train_images, train_labels, test_images, test_labels = arrays
    if len(train_images) != len(train_labels) or len(test_images) != len(test_labels):
        raise MNISTFileError(f'The image and label files in {data_dir} hold different numbers of items.')
    to_float = lambda images: (images.astype(np.float32) / 255.0)[..., None]
    return to_float(train_images), train_labels.astype(np.int64), to_float(test_images), test_labels.astype(np.int64)


def load_split(data_dir=DEFAULT_DATA_DIR, val=True, permute=False, normalize=True, num_val=2000, seed=None):
    """Returns `(train_images, train_labels, test_images, test_labels)`.

    val: the test set is the last `num_val` training images, which leave the training set.
    permute: every image's pixels go through one fixed permutation,
        `numpy.random.RandomState(seed).permutation(784)`.
    normalize: each image is centred and scaled to unit standard deviation on its own.
    """
    train_images, train_labels, test_images, test_labels = load(data_dir)
    if val:
        test_images, test_labels = train_images[-num_val:], train_labels[-num_val:]
        train_images, train_labels = train_images[:-num_val], train_labels[:-num_val]

    def transform(images):
        images = images.reshape(len(images), -1)
        if permute:
            images = images[:, np.random.RandomState(seed).permutation(HEIGHT * WIDTH)]
        if normalize:
            images = (images - images.mean(axis=1, keepdims=True)) / (images.std(axis=1, keepdims=True) + 1e-8)
        return images.reshape(-1, HEIGHT, WIDTH, NUM_CHANNELS).astype(np.float32)

    return transform(train_images), train_labels, transform(test_images), test_labels


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--data_dir', type=pathlib.Path, default=DEFAULT_DATA_DIR)
    parser.add_argument('--import_from', type=pathlib.Path, default=None,
                        help='a folder of the four files (gzip or raw idx) or a Keras mnist.npz')
    parser.add_argument('--mirrors', nargs='+', default=MIRRORS, help='base URLs, tried in order')
    args = parser.parse_args()
    try:
        if args.import_from:
            import_files(args.import_from, args.data_dir)
        else:
            download(args.data_dir, args.mirrors)
    except (MNISTFileError, RuntimeError, FileNotFoundError) as error:
        sys.exit(f'mnist.py: {error}')
    print(f'MNIST is in {args.data_dir}.')


if __name__ == '__main__':
    main()
