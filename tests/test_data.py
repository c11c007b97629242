"""Data modules: generated problems, MNIST download and import, TIMIT conversion and features."""

import gzip
import hashlib
import http.server
import subprocess
import sys
import threading

import numpy as np
import pytest

import additionproblem
import copyproblem
import mnist
from conftest import REPO, SHARED

MNIST_DIR = SHARED / 'data' / 'mnist'


def run_script(*args, check=True):
    result = subprocess.run([sys.executable, *map(str, args)], cwd=REPO, capture_output=True, text=True)
    if check and result.returncode:
        raise AssertionError(f'{args} failed:\n{result.stdout}\n{result.stderr}')
    return result


@pytest.mark.parametrize('delay, num_symbols', [(10, 10), (50, 3), (100, 8)])
def test_copy_problem_structure(delay, num_symbols):
    inputs, targets = copyproblem.generate_inputs_and_targets(delay, 50, num_symbols, rng=0)
    count = delay // 10
    blank, go = num_symbols, num_symbols + 1
    assert inputs.dtype == np.int16 and inputs.shape == targets.shape == (50, 2 * count + delay)
    symbols = inputs[:, :count]
    assert (symbols >= 0).all() and (symbols < num_symbols).all()
    assert (inputs[:, count:count + delay - 1] == blank).all()
    assert (inputs[:, count + delay - 1] == go).all()
    assert (inputs[:, count + delay:] == blank).all()
    assert (targets[:, :count + delay] == blank).all()
    np.testing.assert_array_equal(targets[:, count + delay:], symbols)


def test_copy_problem_rejects_delay_not_multiple_of_ten():
    with pytest.raises(ValueError, match='multiple of 10'):
        copyproblem.generate_inputs_and_targets(15, 5)


def test_addition_problem_structure():
    inputs, targets = additionproblem.generate_inputs_and_targets(40, 3000, rng=0)
    assert inputs.shape == (3000, 40, 2) and targets.shape == (3000,)
    values, markers = inputs[:, :, 0], inputs[:, :, 1]
    assert (values >= 0).all() and (values < 1).all()
    assert set(np.unique(markers)) == {0.0, 1.0}
    assert (markers[:, :20].sum(1) == 1).all() and (markers[:, 20:].sum(1) == 1).all()
    np.testing.assert_allclose(targets, (values * markers).sum(1), rtol=1e-6)
    first, second = markers[:, :20].argmax(1), markers[:, 20:].argmax(1) + 20
    assert set(first) == set(range(20)) and set(second) == set(range(20, 40))


@pytest.mark.parametrize('module, flags, names', [
    ('copyproblem', ['--delay', '20'], lambda split: copyproblem.file_names(20, 10, split)),
    ('additionproblem', ['--length', '30'], lambda split: additionproblem.file_names(30, split))])
def test_scripts_write_reproducible_files_and_load_split(tmp_path, module, flags, names):
    counts = ['--num_train_examples', '40', '--num_val_examples', '7', '--num_test_examples', '9']
    for folder in ('a', 'b'):
        run_script(f'{module}.py', '--data_dir', tmp_path / folder, *flags, *counts, '--seed', '3')
    files = [name for split in ('train', 'val', 'test') for name in names(split)]
    assert sorted(path.name for path in (tmp_path / 'a').iterdir()) == sorted(files)
    for name in files:
        np.testing.assert_array_equal(np.load(tmp_path / 'a' / name), np.load(tmp_path / 'b' / name))
    loader = copyproblem if module == 'copyproblem' else additionproblem
    size = int(flags[1])
    train_inputs, train_targets, val_inputs, _ = loader.load_split(tmp_path / 'a', size, val=True)
    _, _, test_inputs, test_targets = loader.load_split(tmp_path / 'a', size, val=False)
    assert len(train_inputs) == len(train_targets) == 40 and len(val_inputs) == 7
    assert len(test_inputs) == len(test_targets) == 9
    np.testing.assert_array_equal(test_inputs, np.load(tmp_path / 'a' / names('test')[0]))
    assert run_script(f'{module}.py', '-h').returncode == 0


def test_missing_data_names_directory_and_command(tmp_path):
    with pytest.raises(FileNotFoundError, match=f'{tmp_path}.*python3 copyproblem.py --data_dir {tmp_path}'):
        copyproblem.load_split(tmp_path)
    with pytest.raises(FileNotFoundError, match='python3 additionproblem.py'):
        additionproblem.load_split(tmp_path)
    with pytest.raises(FileNotFoundError, match=f'{tmp_path}.*python3 mnist.py'):
        mnist.load(tmp_path)


# MNIST -----------------------------------------------------------------------------------------

needs_mnist = pytest.mark.skipif(not MNIST_DIR.is_dir(), reason=f'real MNIST not found in {MNIST_DIR}')


def small_idx_files():
    """Tiny genuine-format idx files, gzipped, and a FILES table with their MD5s."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, [5, 28, 28], dtype=np.uint8)
    labels = rng.integers(0, 10, 5, dtype=np.uint8)
    raw = {'train-images-idx3-ubyte': mnist._idx_bytes(images, mnist.IMAGES_MAGIC),
           'train-labels-idx1-ubyte': mnist._idx_bytes(labels, mnist.LABELS_MAGIC),
           't10k-images-idx3-ubyte': mnist._idx_bytes(images[:3], mnist.IMAGES_MAGIC),
           't10k-labels-idx1-ubyte': mnist._idx_bytes(labels[:3], mnist.LABELS_MAGIC)}
    gzipped = {name: gzip.compress(data, mtime=0) for name, data in raw.items()}
    table = {name: (hashlib.md5(gzipped[name]).hexdigest(), hashlib.md5(raw[name]).hexdigest()) for name in raw}
    return gzipped, table


@pytest.fixture
def mirror_server():
    """HTTP mirrors on 127.0.0.1: /good/ serves the files, /bad/ too but with corrupted train labels."""
    gzipped, table = small_idx_files()
    requests = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            requests.append(self.path)
            folder, _, name = self.path.strip('/').partition('/')
            name = name.removesuffix('.gz')
            if folder == 'bad' and name == 'train-labels-idx1-ubyte':
                body = gzipped[name][:-5] + b'xxxxx'
            elif folder in ('good', 'bad') and name in gzipped:
                body = gzipped[name]
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{server.server_port}', table, requests
    server.shutdown()
    server.server_close()


def test_download_falls_through_mirrors_and_rejects_bad_md5(tmp_path, mirror_server, monkeypatch):
    base, table, requests = mirror_server
    monkeypatch.setattr(mnist, 'FILES', table)
    refused = 'http://127.0.0.1:9/'  # Nothing listens on the discard port: connection refused.
    mnist.download(tmp_path / 'data', [refused, base + '/missing/', base + '/bad/', base + '/good/'], log=lambda _: None)
    assert sorted(path.name for path in (tmp_path / 'data').iterdir()) == sorted(name + '.gz' for name in table)
    assert '/bad/train-labels-idx1-ubyte.gz' in requests and '/good/train-labels-idx1-ubyte.gz' in requests
    train_images, train_labels, test_images, _ = mnist.load(tmp_path / 'data')
    assert train_images.shape == (5, 28, 28, 1) and test_images.shape == (3, 28, 28, 1)

    # Only the corrupted mirror: nothing is written under the final name, and the error lists the mirrors.
    with pytest.raises(RuntimeError, match='MD5'):
        mnist.download(tmp_path / 'only_bad', [base + '/bad/'], log=lambda _: None)
    assert not (tmp_path / 'only_bad' / 'train-labels-idx1-ubyte.gz').exists()
    assert not list((tmp_path / 'only_bad').glob('*.partial'))


def test_download_keeps_existing_files(tmp_path, mirror_server, monkeypatch):
    base, table, requests = mirror_server
    monkeypatch.setattr(mnist, 'FILES', table)
    data_dir = tmp_path / 'data'
    data_dir.mkdir()
    (data_dir / 'train-images-idx3-ubyte.gz').write_bytes(b'not mnist')
    with pytest.raises(mnist.MNISTFileError, match='left as it is'):
        mnist.download(data_dir, [base + '/good/'], log=lambda _: None)
    assert (data_dir / 'train-images-idx3-ubyte.gz').read_bytes() == b'not mnist'
    (data_dir / 'train-images-idx3-ubyte.gz').unlink()
    mnist.download(data_dir, [base + '/good/'], log=lambda _: None)
    count = len(requests)
    mnist.download(data_dir, [base + '/good/'], log=lambda _: None)
    assert len(requests) == count  # Nothing downloaded again.


def test_script_reports_unreachable_mirrors(tmp_path):
    result = run_script('mnist.py', '--data_dir', tmp_path, '--mirrors', 'http://127.0.0.1:9/', check=False)
    assert result.returncode != 0 and '--import_from' in result.stderr


def test_truncated_or_foreign_idx_names_the_file(tmp_path):
    gzipped, _ = small_idx_files()
    truncated = tmp_path / 'train-images-idx3-ubyte.gz'
    truncated.write_bytes(gzip.compress(gzip.decompress(gzipped['train-images-idx3-ubyte'])[:-100]))
    with pytest.raises(mnist.MNISTFileError, match=f'{truncated}.*truncated'):
        mnist.read_idx(truncated, mnist.IMAGES_MAGIC)
    foreign = tmp_path / 'train-labels-idx1-ubyte'
    foreign.write_bytes(b'\x00\x00\x08\x03' + bytes(20))
    with pytest.raises(mnist.MNISTFileError, match=f'{foreign}.*magic number'):
        mnist.read_idx(foreign, mnist.LABELS_MAGIC)
    not_gzip = tmp_path / 't10k-labels-idx1-ubyte.gz'
    not_gzip.write_bytes(b'hello')
    with pytest.raises(mnist.MNISTFileError, match=str(not_gzip)):
        mnist.read_idx(not_gzip, mnist.LABELS_MAGIC)


@needs_mnist
def test_import_from_folder_raw_and_npz_then_load_split(tmp_path):
    result = run_script('mnist.py', '--data_dir', tmp_path / 'from_gz', '--import_from', MNIST_DIR)
    assert 'Imported' in result.stdout
    train_images, train_labels, test_images, test_labels = mnist.load(tmp_path / 'from_gz')
    assert train_images.shape == (60000, 28, 28, 1) and test_images.shape == (10000, 28, 28, 1)
    assert train_images.dtype == np.float32 and 0 <= train_images.min() and train_images.max() <= 1
    assert np.bincount(train_labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert np.bincount(test_labels).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]

    raw_folder = tmp_path / 'raw'
    raw_folder.mkdir()
    for name in mnist.FILES:
        (raw_folder / name).write_bytes(gzip.decompress((MNIST_DIR / (name + '.gz')).read_bytes()))
    mnist.import_files(raw_folder, tmp_path / 'from_raw', log=lambda _: None)
    np.testing.assert_array_equal(mnist.load(tmp_path / 'from_raw')[1], train_labels)

    npz = tmp_path / 'mnist.npz'
    np.savez(npz, x_train=(train_images[..., 0] * 255).round().astype(np.uint8), y_train=train_labels.astype(np.uint8),
             x_test=(test_images[..., 0] * 255).round().astype(np.uint8), y_test=test_labels.astype(np.uint8))
    mnist.import_files(npz, tmp_path / 'from_npz', log=lambda _: None)
    np.testing.assert_array_equal(mnist.load(tmp_path / 'from_npz')[2], test_images)

    train, labels, val, val_labels = mnist.load_split(tmp_path / 'from_gz', val=True, normalize=False)
    assert len(train) == 58000 and len(val) == 2000
    np.testing.assert_array_equal(val, train_images[-2000:])
    np.testing.assert_array_equal(val_labels, train_labels[-2000:])
    permuted_train, _, permuted_test, _ = mnist.load_split(tmp_path / 'from_gz', val=False, permute=True, seed=5,
                                                           normalize=False)
    permutation = np.random.RandomState(5).permutation(784)
    np.testing.assert_array_equal(permuted_train.reshape(-1, 784), train_images.reshape(-1, 784)[:, permutation])
    np.testing.assert_array_equal(permuted_test.reshape(-1, 784), test_images.reshape(-1, 784)[:, permutation])
    normalized = mnist.load_split(tmp_path / 'from_gz', val=True)[2].reshape(2000, -1)
    np.testing.assert_allclose(normalized.mean(1), 0, atol=1e-5)
    np.testing.assert_allclose(normalized.std(1), 1, atol=1e-4)
