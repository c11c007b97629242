"""Times one compiled train step of each recurrent layer against Keras' LSTM, GRU and SimpleRNN.

    python3 benchmarks/bench_layers.py [--quick] [--shapes pmnist copy timit] [--repeats 15]

One train step is forward, loss, backward and a ClippingMomentumOptimizer update, compiled with
`tf.function(jit_compile=True)` for every layer alike. Compilation (the first call) is timed
separately; then the layers take turns, one step each per round, and each one's median is reported
with its ratio to Keras' LSTM. Peak memory is the step's working memory: on a GPU TensorFlow's own
peak counter, on a CPU the growth of the process's peak resident set during one step (glibc is told
to return large buffers at once, so freed memory does not hide the next step's).
"""

import argparse
import os
import pathlib
import platform
import sys
import time

if os.environ.get('MALLOC_MMAP_THRESHOLD_') is None:  # Must be set before the process starts.
    os.environ['MALLOC_MMAP_THRESHOLD_'] = '65536'
    os.execv(sys.executable, [sys.executable] + sys.argv)

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import models  # noqa: E402
import optimizers  # noqa: E402

# name: (batch_size, length, input_size, num_hidden_units, target at every step)
SHAPES = {
    'pmnist': (100, 784, 1, 139, False),
    'copy': (100, 120, 12, 141, True),
    'timit': (100, 300, 13, 139, True),
}
OUR_LAYERS = ('MISTLayer', 'LSTMLayer', 'GRULayer', 'SimpleLayer')
KERAS_LAYERS = ('keras.LSTM', 'keras.GRU', 'keras.SimpleRNN', 'keras.LSTM.nojit')
NUM_CLASSES = 10


class KerasModel(tf.Module):
    """A Keras recurrent layer and a Dense projection, with our models' classification loss."""

    def __init__(self, layer_name, input_size, num_hidden_units):
        super().__init__()
        layer_class = getattr(tf.keras.layers, layer_name.split('.')[1])
        kwargs = {'reset_after': False} if layer_name.startswith('keras.GRU') else {}
        self.rnn = layer_class(num_hidden_units, return_sequences=True, **kwargs)
        self.dense = tf.keras.layers.Dense(NUM_CLASSES)
        self.rnn.build((None, None, input_size))
        self.dense.build((None, None, num_hidden_units))
        self.trainable_variables_list = self.rnn.trainable_variables + self.dense.trainable_variables
        self.reference = models.RNNClassificationModel('SimpleLayer', 1, NUM_CLASSES, 1)  # only for losses

    @property
    def trainable_variables(self):
        return [variable.value if hasattr(variable, 'value') and not isinstance(variable, tf.Variable)
                else variable for variable in self.trainable_variables_list]

    def __call__(self, inputs):
        return self.dense(self.rnn(inputs)), None

    def losses(self, predictions, targets):
        return self.reference.losses(predictions, targets)


def make_train_step(layer_name, shape):
    batch_size, length, input_size, num_hidden_units, every_step = shape
    if layer_name in OUR_LAYERS:
        model = models.RNNClassificationModel(layer_name, input_size, NUM_CLASSES, num_hidden_units, 'tanh')
    else:
        model = KerasModel(layer_name, input_size, num_hidden_units)
    variables = model.trainable_variables
    optimizer = optimizers.ClippingMomentumOptimizer(1e-3)
    optimizer.build(variables)

    @tf.function(jit_compile=not layer_name.endswith('.nojit'))
    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            predictions, _ = model(inputs)
            loss = model.losses(predictions, targets)['stepwise_loss_for_opt']
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    rng = np.random.default_rng(0)
    inputs = tf.constant(rng.standard_normal([batch_size, length, input_size]), tf.float32)
    labels = np.eye(NUM_CLASSES, dtype=np.float32)[rng.integers(0, NUM_CLASSES, [batch_size, length])]
    if not every_step:
        labels[:, :-1] = np.nan
    targets = tf.constant(labels)
    return lambda: float(train_step(inputs, targets))


def memory_status(field):
    with open('/proc/self/status') as status:
        for line in status:
            if line.startswith(field + ':'):
                return int(line.split()[1]) * 1024
    return float('nan')


def step_peak_memory(step):
    """Bytes of working memory one call of `step` needs above what the process holds before it."""
    if tf.config.list_physical_devices('GPU'):
        tf.config.experimental.reset_memory_stats('GPU:0')
        before = tf.config.experimental.get_memory_info('GPU:0')['current']
        step()
        return tf.config.experimental.get_memory_info('GPU:0')['peak'] - before
    before = memory_status('VmRSS')
    with open('/proc/self/clear_refs', 'w') as clear_refs:
        clear_refs.write('5')  # Resets the peak resident set (VmHWM) to the current one.
    step()
    return memory_status('VmHWM') - before


def benchmark(shape_name, layer_names, repeats):
    shape = SHAPES[shape_name]
    steps, compile_seconds = {}, {}
    for name in layer_names:
        tf.keras.utils.set_random_seed(0)
        steps[name] = make_train_step(name, shape)
        start = time.perf_counter()
        steps[name]()
        compile_seconds[name] = time.perf_counter() - start
        steps[name]()  # One more call, so that the timed calls find everything allocated.
    timings = {name: [] for name in layer_names}
    for _ in range(repeats):
        for name in layer_names:
            start = time.perf_counter()
            steps[name]()
            timings[name].append(time.perf_counter() - start)
    peak_memory = {name: step_peak_memory(steps[name]) for name in layer_names}
    reference = np.median(timings['keras.LSTM']) if 'keras.LSTM' in timings else float('nan')
    batch_size, length, input_size, units, _ = shape
    print(f'\n{shape_name}: batch {batch_size}, length {length}, input {input_size}, hidden {units}; '
          f'median of {repeats} interleaved steps')
    print(f'| layer | step (ms) | / Keras LSTM | first call incl. compile (s) | peak step memory (MiB) |')
    print(f'|---|---|---|---|---|')
    for name in layer_names:
        median = np.median(timings[name])
        print(f'| {name} | {1000 * median:.1f} | {median / reference:.2f} | {compile_seconds[name]:.1f} | '
              f'{peak_memory[name] / 2 ** 20:.0f} |', flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--shapes', nargs='+', choices=sorted(SHAPES), default=['pmnist', 'copy', 'timit'])
    parser.add_argument('--layers', nargs='+', choices=OUR_LAYERS + KERAS_LAYERS, default=OUR_LAYERS + KERAS_LAYERS)
    parser.add_argument('--repeats', type=int, default=15)
    parser.add_argument('--quick', action='store_true', help='pMNIST shape at a tenth of its length, 3 repeats')
    args = parser.parse_args()
    if args.quick:
        SHAPES['pmnist'] = SHAPES['pmnist'][:1] + (78,) + SHAPES['pmnist'][2:]
        args.shapes, args.repeats = ['pmnist'], 3
    devices = [device.name for device in tf.config.list_physical_devices('GPU')] or [
        f'CPU ({os.cpu_count()} cores, {platform.processor() or platform.machine()})']
    print(f'TensorFlow {tf.__version__}, Keras {tf.keras.__version__}, device: {", ".join(devices)}')
    for shape_name in args.shapes:
        benchmark(shape_name, args.layers, args.repeats)


if __name__ == '__main__':
    main()
