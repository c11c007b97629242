"""Train and test scripts end to end on tiny data: results layout, TensorBoard, resume, signals."""

import gzip
import json
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from tensorboard.backend.event_processing import plugin_event_accumulator

import mnist
import training
from conftest import REPO
from test_data import run_script
from test_timit import write_corpus

SMALL = ['--num_hidden_units', '16', '--debug', '1', '--seed', '1']


@pytest.fixture(scope='module')
def copy_data(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp('copy')
    run_script('copyproblem.py', '--data_dir', data_dir, '--delay', '10', '--num_train_examples', '300',
               '--num_val_examples', '50', '--num_test_examples', '60', '--seed', '0')
    return data_dir


def scalars(results_dir):
    """{tag: [(step, value)]} as TensorBoard reads them: TF2 writes scalars as tensor summaries, and
    TensorBoard serves them through this accumulator, which honours restart markers."""
    accumulator = plugin_event_accumulator.EventAccumulator(str(results_dir), size_guidance={'tensors': 0})
    accumulator.Reload()
    return {tag: [(event.step, float(tf.make_ndarray(event.tensor_proto))) for event in accumulator.Tensors(tag)]
            for tag in accumulator.Tags()['tensors']}


def status_steps(path):
    return [int(line.split()[2]) for line in path.read_text().splitlines()]


def in_process_test_metric(results_dir, build_task):
    """The test metric computed here, from the best checkpoint, without the test script."""
    params = training.argparse.Namespace(**json.loads((results_dir / 'params.json').read_text()))
    task = build_task(params, val=False)
    model = training.build_model(params, task)
    tf.train.Checkpoint(model=model).restore(tf.train.latest_checkpoint(results_dir / 'best')).expect_partial()
    inputs, targets = task.test_batch(np.arange(task.num_test))
    losses = model.losses(model(inputs)[0], targets)
    return float(losses['error_rate'] if task.metric == 'error rate' else losses['stepwise_loss'])


def check_run(results_dir, module, metric, num_steps, val_every, summary_every):
    assert results_dir.is_dir(), results_dir
    name = results_dir.name
    for line in (results_dir / 'train_status.txt').read_text().splitlines():
        fields = line.split()
        assert fields[0] == name and len(fields) == 4 and len(fields[1].split('.')[1]) == 1
    expected_val_steps = sorted(set(range(val_every, num_steps + 1, val_every)) | {num_steps})
    assert status_steps(results_dir / 'val_status.txt') == expected_val_steps
    assert status_steps(results_dir / 'train_status.txt') == list(range(summary_every, num_steps + 1, summary_every))
    found = scalars(results_dir)
    assert [step for step, _ in found['train loss']] == list(range(summary_every, num_steps + 1, summary_every))
    assert [step for step, _ in found[f'train {metric}']] == [step for step, _ in found['train loss']]
    assert [step for step, _ in found[f'val {metric}']] == expected_val_steps
    best_val = min(value for _, value in found[f'val {metric}'])
    assert float((results_dir / 'val_status.txt').read_text().split()[-1]) == pytest.approx(best_val, abs=1e-4)

    run_script(f'{module}_test.py', '--results_dir', results_dir)
    written = float((results_dir / 'test_result.txt').read_text())
    build_task = __import__(f'{module}_train').build_task
    assert written == pytest.approx(in_process_test_metric(results_dir, build_task), abs=1e-5)


def test_copy_problem_end_to_end(copy_data):
    run_script('copyproblem_train.py', '--data_dir', copy_data, '--copy_delay', '10', '--num_opt_steps', '30', *SMALL)
    results_dir = copy_data / 'results' / '10_MISTLayer_tanh_0016_1.000000_1.0_8_00'
    check_run(results_dir, 'copyproblem', 'error rate', 30, 25, 10)
    params = json.loads((results_dir / 'params.json').read_text())
    assert params['copy_delay'] == 10 and params['seed'] == 1 and params['learning_rate'] == 1.0


def test_addition_problem_end_to_end(tmp_path):
    run_script('additionproblem.py', '--data_dir', tmp_path, '--length', '12', '--num_train_examples', '200',
               '--num_val_examples', '30', '--num_test_examples', '40')
    run_script('additionproblem_train.py', '--data_dir', tmp_path, '--length', '12', '--num_opt_steps', '25',
               '--layer_type', 'GRULayer', '--learning_rate', '0.01', *SMALL)
    check_run(tmp_path / 'results' / '12_GRULayer_tanh_0016_0.010000_1.0_8_00', 'additionproblem', 'mse', 25, 25, 10)


def test_mnist_end_to_end(tmp_path):
    rng = np.random.default_rng(0)
    for prefix, count in (('train', 2100), ('t10k', 150)):
        images = rng.integers(0, 256, [count, 28, 28], dtype=np.uint8)
        labels = rng.integers(0, 10, count, dtype=np.uint8)
        (tmp_path / f'{prefix}-images-idx3-ubyte.gz').write_bytes(
            gzip.compress(mnist._idx_bytes(images, mnist.IMAGES_MAGIC)))
        (tmp_path / f'{prefix}-labels-idx1-ubyte.gz').write_bytes(
            gzip.compress(mnist._idx_bytes(labels, mnist.LABELS_MAGIC)))
    run_script('mnist_train.py', '--data_dir', tmp_path, '--num_opt_steps', '12', '--layer_type', 'LSTMLayer',
               '--learning_rate', '0.1', *SMALL)
    check_run(tmp_path / 'results' / '1_LSTMLayer_tanh_0016_0.100000_1.0_8_00', 'mnist', 'error rate', 12, 150, 10)


def test_timit_end_to_end(tmp_path):
    write_corpus(tmp_path / 'raw')
    run_script('timit.py', '--raw_data_dir', tmp_path / 'raw', '--data_dir', tmp_path / 'timit')
    run_script('timitphonemerec.py', '--data_dir', tmp_path / 'timit')
    result = run_script('timitphonemerec_train.py', '--data_dir', tmp_path / 'timit', '--num_opt_steps', '12',
                        '--num_pre_act_mixture_delays', '3', *SMALL)
    check_run(tmp_path / 'timit' / 'results' / 'MISTLayer_tanh_0016_1.000000_1.0_3_00', 'timitphonemerec',
              'error rate', 12, 10, 1)
    assert 'target:' in result.stdout  # --debug prints targets and predictions.
    compiled = int(result.stdout.split('Compiled ')[1].split()[0])
    assert 1 <= compiled <= 3  # Lengths 16..21 after --debug's subsampling fall into a few buckets.


def start_training(data_dir, num_steps, trial):
    command = [sys.executable, 'copyproblem_train.py', '--data_dir', str(data_dir), '--copy_delay', '10',
               '--num_opt_steps', str(num_steps), '--trial', str(trial), *SMALL]
    return command, subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for_val_lines(path, count, process, timeout=120):
    start = time.time()
    while time.time() - start < timeout:
        if path.exists() and len(path.read_text().splitlines()) >= count:
            return
        if process.poll() is not None:
            raise AssertionError(process.stdout.read())
        time.sleep(0.05)
    raise AssertionError(f'{path} did not reach {count} lines in {timeout} s')


def test_sigkill_then_restart_ends_like_an_uninterrupted_run(copy_data, tmp_path):
    results_dir = copy_data / 'results' / '10_MISTLayer_tanh_0016_1.000000_1.0_8_01'
    command, process = start_training(copy_data, 2000, trial=1)
    wait_for_val_lines(results_dir / 'val_status.txt', 4, process)
    time.sleep(0.1)  # Let it run past its last checkpoint, so that the restart has steps to redo.
    process.kill()
    process.wait()
    interrupted_at = status_steps(results_dir / 'train_status.txt')[-1]
    assert interrupted_at < 2000
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert 'Resuming' in result.stdout
    train_steps = status_steps(results_dir / 'train_status.txt')
    val_steps = status_steps(results_dir / 'val_status.txt')
    assert train_steps == list(range(10, 2001, 10))  # What an uninterrupted run writes.
    assert val_steps == list(range(25, 2001, 25))
    found = scalars(results_dir)  # TensorBoard drops what the killed run wrote past its checkpoint.
    assert [step for step, _ in found['train loss']] == train_steps
    assert [step for step, _ in found['val error rate']] == val_steps
    reader = tf.train.load_checkpoint(tf.train.latest_checkpoint(results_dir / 'best'))
    assert reader.get_tensor('step/.ATTRIBUTES/VARIABLE_VALUE') in val_steps


def test_sigterm_saves_a_checkpoint_and_exits_143(copy_data):
    results_dir = copy_data / 'results' / '10_MISTLayer_tanh_0016_1.000000_1.0_8_02'
    _, process = start_training(copy_data, 100000, trial=2)
    wait_for_val_lines(results_dir / 'val_status.txt', 1, process)
    process.send_signal(signal.SIGTERM)
    output = process.communicate(timeout=60)[0]
    assert process.returncode == 143, output
    saved_step = int(tf.train.load_checkpoint(tf.train.latest_checkpoint(results_dir / 'latest')).get_tensor(
        'step/.ATTRIBUTES/VARIABLE_VALUE'))
    assert saved_step >= 25 and f'at step {saved_step}' in output


def test_results_are_never_deleted_without_the_flag(copy_data, tmp_path):
    results_dir = copy_data / 'results' / '10_MISTLayer_tanh_0016_1.000000_1.0_8_00'
    run_script('copyproblem_train.py', '--data_dir', copy_data, '--copy_delay', '10', '--num_opt_steps', '30', *SMALL)
    marker = results_dir / 'notes.txt'
    marker.write_text('keep me')
    before = (results_dir / 'val_status.txt').read_text()
    result = run_script('copyproblem_train.py', '--data_dir', copy_data, '--copy_delay', '10', '--num_opt_steps',
                        '30', *SMALL)
    assert 'Resuming' in result.stdout and marker.exists()
    assert (results_dir / 'val_status.txt').read_text() == before
    result = run_script('copyproblem_test.py', '--results_dir', tmp_path, check=False)
    assert result.returncode and 'not a results directory' in result.stderr
    run_script('copyproblem_train.py', '--data_dir', copy_data, '--copy_delay', '10', '--num_opt_steps', '25',
               '--overwrite', '1', *SMALL)
    assert not marker.exists() and status_steps(results_dir / 'val_status.txt') == [25]


def test_missing_data_says_how_to_make_it_and_writes_nothing(tmp_path):
    result = run_script('copyproblem_train.py', '--data_dir', tmp_path, check=False)
    assert result.returncode and 'python3 copyproblem.py --data_dir' in result.stderr
    assert 'Traceback' not in result.stderr and not (tmp_path / 'results').exists()


def test_non_finite_loss_stops_and_keeps_best(copy_data):
    result = run_script('copyproblem_train.py', '--data_dir', copy_data, '--copy_delay', '10', '--num_opt_steps',
                        '200', '--learning_rate', '1e30', '--optimizer', 'ClippingGradientDescentOptimizer',
                        '--activation_type', 'relu', *SMALL, check=False)
    assert result.returncode == training.EXIT_NON_FINITE_LOSS, result.stdout + result.stderr
    assert 'learning rate' in result.stderr and 'became' in result.stderr


def test_summarize_sorts_runs_and_plots(copy_data, tmp_path):
    for trial, learning_rate in enumerate(['0.5', '0.05']):
        run_script('copyproblem_train.py', '--data_dir', copy_data, '--copy_delay', '10', '--num_opt_steps', '25',
                   '--trial', str(trial + 5), '--learning_rate', learning_rate, '--layer_type', 'SimpleLayer',
                   *SMALL)
    result = run_script('batch_runs/summarize.py', copy_data / 'results', '--plot', tmp_path / 'curves.png')
    rows = [line.split() for line in result.stdout.splitlines()[1:] if line.startswith('10_')]
    best_values = [float(row[3]) for row in rows]
    assert len(rows) >= 3 and best_values == sorted(best_values)
    assert (tmp_path / 'curves.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n'


def test_print_learning_rate():
    grid = run_script('batch_runs/print_learning_rate.py', 'grid', '-4', '1', '--grid_ind', '4').stdout
    assert float(grid) == pytest.approx(0.001)
    values = [float(run_script('batch_runs/print_learning_rate.py', 'random', '-4', '1', '--seed', str(seed)).stdout)
              for seed in range(5)]
    assert all(1e-4 <= value < 10 for value in values) and len(set(values)) == 5
