"""The training loop that every task's train script shares, and the shared part of the test scripts.

A task script describes its data and model with a `Task` and calls `train(args, build_task)`; its
test script calls `test(args, build_task)`. Everything a run writes goes to
`DATA_DIR/results/PARAMS/`:

    params.json         the run's flags, read back by the test scripts
    events.out.tfevents.*  TensorBoard scalars: train loss, train <metric>, val <metric>
    train_status.txt    PARAMS ELAPSED STEP TRAIN_LOSS, one line per train summary
    val_status.txt      PARAMS ELAPSED STEP VAL BEST_VAL, one line per validation
    best/               checkpoint of the best validation score (model and optimizer)
    latest/             checkpoint of the last validation, to resume from
    test_result.txt     written by the test script

Exit codes: 0 when done; 3 when the loss became NaN or infinite (the best checkpoint is kept);
128 + the signal number (143 for SIGTERM, 130 for SIGINT) when stopped by a signal, after saving
the latest checkpoint. Running the same command again resumes a stopped run.
"""

import argparse
import dataclasses
import json
import math
import pathlib
import shutil
import signal
import sys
import time
from typing import Callable

import numpy as np
import tensorflow as tf

import models
import optimizers
import utils

EXIT_NON_FINITE_LOSS = 3


@dataclasses.dataclass
class Task:
    """What a task script tells the training loop.

    `train_batch(indices)` and `test_batch(indices)` return `(inputs, targets)` float32 arrays,
    `[batch_size, length, input_size]` and `[batch_size, length, target_size]` with NaN where a
    step has no target. The test set is the validation set while training.
    """
    model_class: type
    input_size: int
    target_size: int
    num_train: int
    num_test: int
    train_batch: Callable
    test_batch: Callable
    batch_size: int
    test_batch_size: int
    loss: str  # 'stepwise' or 'seqwise'
    metric: str  # 'error rate' or 'mse'
    train_summary_every: int
    val_every: int
    describe: Callable = None  # (inputs, targets, predictions) -> text, printed with --debug


def add_arguments(parser, data_dir, num_hidden_units, num_opt_steps):
    """The flags every train script has, with the original defaults."""
    parser.add_argument('--data_dir', type=pathlib.Path, default=data_dir)
    parser.add_argument('--debug', type=int, default=0, help='1: print targets and predictions at each '
                        'validation, and shrink long sequences (MNIST 4x per side, TIMIT every 16th frame)')
    parser.add_argument('--layer_type', default='MISTLayer', choices=models.LAYER_TYPES)
    parser.add_argument('--activation_type', default='tanh', help='a function in tf.nn')
    parser.add_argument('--num_hidden_units', type=int, default=num_hidden_units)
    parser.add_argument('--optimizer', default='ClippingMomentumOptimizer',
                        choices=['ClippingMomentumOptimizer', 'ClippingGradientDescentOptimizer'])
    parser.add_argument('--learning_rate', type=float, default=1.0)
    parser.add_argument('--optional_bias_shift', type=float, default=1.0)
    parser.add_argument('--num_pre_act_mixture_delays', type=int, default=8,
                        help='MIST delays 2**0 .. 2**(n-1)')
    parser.add_argument('--trial', type=int, default=0)
    parser.add_argument('--num_opt_steps', type=int, default=num_opt_steps)
    parser.add_argument('--seed', type=int, default=None, help='default: drawn at random, saved in params.json')
    parser.add_argument('--overwrite', type=int, default=0,
                        help='1: delete this run\'s old results and start over (default: resume them)')


def params_name(args, task_value=None):
    """e.g. 100_MISTLayer_tanh_0141_1.000000_1.0_8_00"""
    parts = [] if task_value is None else [task_value]
    parts += [args.layer_type, args.activation_type, f'{args.num_hidden_units:04d}', f'{args.learning_rate:.6f}',
              f'{args.optional_bias_shift:.1f}', f'{args.num_pre_act_mixture_delays:d}', f'{args.trial:02d}']
    return '_'.join(str(part) for part in parts)


def build_model(args, task):
    layer_kwargs = {'optional_bias_shift': args.optional_bias_shift}
    if args.layer_type == 'MISTLayer':
        layer_kwargs['pre_act_mixture_delays'] = [2 ** i for i in range(args.num_pre_act_mixture_delays)]
    return task.model_class(args.layer_type, task.input_size, task.target_size, args.num_hidden_units,
                            args.activation_type, **layer_kwargs)


def metric_of(losses, metric):
    return losses['error_rate'] if metric == 'error rate' else losses['stepwise_loss']


def make_evaluation_step(model, metric):
    @tf.function(jit_compile=True)
    def evaluation_step(inputs, targets):
        predictions, _ = model(inputs)
        losses = model.losses(predictions, targets)
        return metric_of(losses, metric), losses['num_valid_steps'], predictions
    return evaluation_step


def evaluate(evaluation_step, task, debug=False):
    """The metric over the whole test (or validation) set, weighting each step alike.

    The last batch is filled up with target-less sequences, so every batch has one shape."""
    total, num_steps = 0.0, 0.0
    for start in range(0, task.num_test, task.test_batch_size):
        indices = np.arange(start, min(start + task.test_batch_size, task.num_test))
        inputs, targets = task.test_batch(np.resize(indices, task.test_batch_size))
        targets[len(indices):] = np.nan
        value, count, predictions = evaluation_step(inputs, targets)
        total, num_steps = total + float(value) * float(count), num_steps + float(count)
        if debug and start == 0 and task.describe:
            print(task.describe(inputs[:3], targets[:3], predictions.numpy()[:3]))
    return total / max(num_steps, 1.0)


class Status:
    """An append-only text file of lines `PARAMS ELAPSED STEP ...`, one per step, that survives being
    killed: on resume, lines past the restored step (and a torn last line) are dropped."""

    def __init__(self, path, name, resume_step):
        self.path, self.name = path, name
        kept = []
        if path.exists():
            for line in path.read_text().splitlines(keepends=True):
                fields = line.split()
                if line.endswith('\n') and len(fields) >= 3 and fields[2].isdigit() and int(fields[2]) <= resume_step:
                    kept.append(line)
        utils.write_atomically(path, ''.join(kept))

    def write(self, elapsed, step, *values):
        line = f'{self.name} {elapsed:06.1f} {step} ' + ' '.join(f'{value:.4f}' for value in values) + '\n'
        with open(self.path, 'a') as file:
            file.write(line)


def prepare_results_dir(results_dir, args):
    """Creates or resumes the results directory; deletes old results only with --overwrite 1."""
    params_path = results_dir / 'params.json'
    if results_dir.exists() and args.overwrite:
        if not params_path.exists() and any(results_dir.iterdir()):
            raise SystemExit(f'{results_dir} is not a results directory of this project (no params.json); '
                             f'it was left as it is.')
        print(f'--overwrite 1: deleting the old results in {results_dir}')
        shutil.rmtree(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    params = {key: str(value) if isinstance(value, pathlib.Path) else value for key, value in vars(args).items()}
    if params_path.exists():
        previous = json.loads(params_path.read_text())
        if args.seed is None:
            params['seed'] = previous.get('seed')
    if params['seed'] is None:
        params['seed'] = int(np.random.SeedSequence().entropy % 2 ** 31)
    utils.write_atomically(params_path, json.dumps(params, indent=2, sort_keys=True) + '\n')
    return params['seed']


def _write_session_start(results_dir, step):
    """Marks in TensorBoard's log that a session (re)starts at `step`: TensorBoard then drops the scalars
    that a stopped run wrote past its last checkpoint (a SessionLog START event; it ignores the first)."""
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter
    # Event files are read in name order; this one's name sorts before the summary writer's next one
    # (same or earlier second, then '.restart' < '.v2').
    writer = EventFileWriter(str(results_dir), filename_suffix='.restart')
    writer.add_event(event_pb2.Event(wall_time=time.time(), step=step,
                                     session_log=event_pb2.SessionLog(status=event_pb2.SessionLog.START)))
    writer.close()


class Progress:
    """A tqdm bar on a terminal; plain lines (one per validation) in a log file, e.g. under SLURM."""

    def __init__(self, start_step, num_steps):
        self.interactive = sys.stderr.isatty()
        self.start_time, self.start_step, self.num_steps = time.time(), start_step, num_steps
        if self.interactive:
            import tqdm
            self.bar = tqdm.tqdm(initial=start_step, total=num_steps, unit='step', dynamic_ncols=True)
        self.latest = {}

    def update(self, step, **figures):
        self.latest.update(figures)
        text = ', '.join(f'{name} {value:.4f}' for name, value in self.latest.items())
        if self.interactive:
            self.bar.update(step - self.bar.n)
            self.bar.set_postfix_str(text, refresh=False)
        elif 'val' in figures:
            rate = (step - self.start_step) / max(time.time() - self.start_time, 1e-9)
            remaining = (self.num_steps - step) / max(rate, 1e-9)
            print(f'step {step}/{self.num_steps}, {rate:.2f} steps/s, ETA {remaining / 60:.1f} min, {text}',
                  flush=True)

    def close(self):
        if self.interactive:
            self.bar.close()


def load_task(build_task, args, val):
    """The task's data and settings; missing or broken data ends the script with the loader's message."""
    try:
        return build_task(args, val=val)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f'{pathlib.Path(sys.argv[0]).name}: {error}') from None


def train(args, build_task, task_value=None):
    """Trains, validates, checkpoints and logs one run; resumes it if its results directory exists."""
    name = params_name(args, task_value)
    results_dir = pathlib.Path(args.data_dir).expanduser() / 'results' / name
    task = load_task(build_task, args, val=True)  # Before anything is written: the data may be missing.
    seed = prepare_results_dir(results_dir, args)
    tf.keras.utils.set_random_seed(seed)
    model = build_model(args, task)
    variables = model.trainable_variables
    optimizer = getattr(optimizers, args.optimizer)(args.learning_rate)
    optimizer.build(variables)
    step = tf.Variable(0, dtype=tf.int64, trainable=False)
    best_val = tf.Variable(math.inf, dtype=tf.float64, trainable=False)
    elapsed = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer, step=step, best_val=best_val, elapsed=elapsed)
    latest = tf.train.CheckpointManager(checkpoint, results_dir / 'latest', max_to_keep=1)
    best = tf.train.CheckpointManager(checkpoint, results_dir / 'best', max_to_keep=1)
    if latest.latest_checkpoint:
        checkpoint.restore(latest.latest_checkpoint).assert_existing_objects_matched()
        print(f'Resuming {results_dir} from step {int(step)}.')
    start_step = int(step)
    _write_session_start(results_dir, start_step + 1)
    train_status = Status(results_dir / 'train_status.txt', name, start_step)
    val_status = Status(results_dir / 'val_status.txt', name, start_step)
    writer = tf.summary.create_file_writer(str(results_dir))
    loss_key = task.loss + '_loss'

    @tf.function(jit_compile=True)
    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            predictions, _ = model(inputs)
            losses = model.losses(predictions, targets)
        gradients = tape.gradient(losses[loss_key + '_for_opt'], variables)
        optimizer.apply_gradients(zip(gradients, variables))
        return losses[loss_key], metric_of(losses, task.metric)

    evaluation_step = make_evaluation_step(model, task.metric)
    stop_signal = []
    for signal_number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signal_number, lambda number, frame: stop_signal.append(number))

    # The data order depends only on the seed and the step the run (re)started from.
    indices = utils.seq_ind_generator(task.num_train, rng=np.random.default_rng([seed, start_step]))
    progress = Progress(start_step, args.num_opt_steps)
    session_start, elapsed_before = time.time(), float(elapsed)
    while int(step) < args.num_opt_steps and not stop_signal:
        batch_indices = np.fromiter(indices, dtype=np.int64, count=task.batch_size)
        loss, metric = train_step(*task.train_batch(batch_indices))
        loss, metric = float(loss), float(metric)
        step.assign_add(1)
        current, seconds = int(step), elapsed_before + time.time() - session_start
        if not math.isfinite(loss):
            progress.close()
            print(f'The train loss became {loss} at step {current}; stopping. The learning rate '
                  f'{args.learning_rate} may be too large. The best checkpoint (val {float(best_val):.4f}) '
                  f'is kept in {results_dir / "best"}.', file=sys.stderr)
            sys.exit(EXIT_NON_FINITE_LOSS)
        if current % task.train_summary_every == 0:
            with writer.as_default(step=current):
                tf.summary.scalar('train loss', loss)
                tf.summary.scalar(f'train {task.metric}', metric)
            train_status.write(seconds, current, loss)
            progress.update(current, loss=loss)
        if current % task.val_every == 0 or current == args.num_opt_steps:
            val = evaluate(evaluation_step, task, debug=args.debug)
            elapsed.assign(seconds)
            if val < float(best_val):
                best_val.assign(val)
                best.save(checkpoint_number=current)
            with writer.as_default(step=current):
                tf.summary.scalar(f'val {task.metric}', val)
            writer.flush()
            val_status.write(seconds, current, val, float(best_val))
            latest.save(checkpoint_number=current)
            progress.update(current, val=val, best=float(best_val))
    progress.close()
    writer.close()
    if stop_signal:
        elapsed.assign(elapsed_before + time.time() - session_start)
        latest.save(checkpoint_number=int(step))
        print(f'Stopped by signal {stop_signal[0]} at step {int(step)}; saved {latest.latest_checkpoint}. '
              f'Run the same command again to resume.', flush=True)
        sys.exit(128 + stop_signal[0])
    print(f'Done: {int(step)} steps, best val {task.metric} {float(best_val):.4f}; results in {results_dir}')
    print(f'Compiled {train_step.experimental_get_tracing_count()} train step program(s) and '
          f'{evaluation_step.experimental_get_tracing_count()} evaluation program(s) in this session.')
    return results_dir


def add_test_arguments(parser, data_dir):
    parser.add_argument('--data_dir', type=pathlib.Path, default=None,
                        help=f'default: the one the run was trained with (usually {data_dir})')
    parser.add_argument('--results_dir', type=pathlib.Path, required=True,
                        help='a results directory written by the train script')


def test(args, build_task):
    """Restores a run's best checkpoint, evaluates it on the test split and writes test_result.txt."""
    results_dir = args.results_dir.expanduser()
    params_path = results_dir / 'params.json'
    if not params_path.is_file():
        raise SystemExit(f'{results_dir} is not a results directory (it holds no params.json). Pass the '
                         f'folder a train script wrote, e.g. DATA_DIR/results/PARAMS.')
    params = argparse.Namespace(**json.loads(params_path.read_text()))
    if args.data_dir is not None:
        params.data_dir = str(args.data_dir)
    best_checkpoint = tf.train.latest_checkpoint(results_dir / 'best')
    if best_checkpoint is None:
        raise SystemExit(f'{results_dir} holds no best checkpoint yet: the run has not validated once.')
    task = load_task(build_task, params, val=False)
    model = build_model(params, task)
    tf.train.Checkpoint(model=model).restore(best_checkpoint).expect_partial()
    result = evaluate(make_evaluation_step(model, task.metric), task)
    print(f'{result:f}')
    utils.write_atomically(results_dir / 'test_result.txt', f'{result:f}\n')
    return result


def targets_at_last_step(values, length):
    """values `[batch_size, target_size]` -> targets `[batch_size, length, target_size]`, NaN (no target)
    before the last step."""
    targets = np.full([len(values), length, values.shape[-1]], np.nan, dtype=np.float32)
    targets[:, -1] = values
    return targets


def describe_classification(inputs, targets, predictions):
    lines = []
    for target, prediction in zip(targets, predictions):
        valid = ~np.isnan(target).any(axis=-1)
        lines.append('  target:     ' + ' '.join(map(str, target[valid].argmax(-1)[:40])))
        lines.append('  prediction: ' + ' '.join(map(str, prediction[valid].argmax(-1)[:40])))
    return '\n'.join(lines)
