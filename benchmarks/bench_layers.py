"""Times one compiled train step of each recurrent layer against Keras' LSTM, GRU and SimpleRNN.

    python3 benchmarks/bench_layers.py [--quick] [--shapes pmnist copy timit] [--repeats 15]

One train step is forward, loss, backward and a ClippingMomentumOptimizer update in a tf.function:
our layers compiled with XLA (`jit_compile=True`, as the train scripts do), Keras' layers on their
fastest path (without XLA here: TensorFlow's automatic gradient of a while loop compiles into a far
slower program, about 5 s per pMNIST step on this CPU; on a GPU Keras picks cuDNN). Compilation (the
first call) is timed separately; then the layers take turns, one step each per round, and each
one's median is reported with its ratio to Keras' LSTM.

Memory: "XLA step memory" is what the XLA-compiled train step allocates beyond its inputs, from
XLA's buffer assignment, for every layer alike (Keras' layers are compiled for this column only).
On a GPU, "GPU peak" is TensorFlow's allocator peak during one step as run. (On a CPU TensorFlow's
allocator statistics miss the loop's saved tensors, so that column is left out there.)
"""

import argparse
import os
import pathlib
import platform
import sys
import time

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
KERAS_LAYERS = ('keras.LSTM', 'keras.GRU', 'keras.SimpleRNN')
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
        self.reference = models.RNNClassificationModel('SimpleLayer', 1, NUM_CLASSES, 1)  # For its losses only.

    @property
    def trainable_variables(self):
        # Keras 3 wraps each tf.Variable; the tape and our optimizer take the tf.Variable itself.
        return [variable.value for variable in self.rnn.trainable_variables + self.dense.trainable_variables]

    def __call__(self, inputs):
        return self.dense(self.rnn(inputs)), None

    def losses(self, predictions, targets):
        return self.reference.losses(predictions, targets)


def make_train_step(layer_name, shape, jit_compile):
    """Returns the compiled train step and its arguments."""
    batch_size, length, input_size, num_hidden_units, every_step = shape
    tf.keras.utils.set_random_seed(0)
    if layer_name in OUR_LAYERS:
        model = models.RNNClassificationModel(layer_name, input_size, NUM_CLASSES, num_hidden_units, 'tanh')
    else:
        model = KerasModel(layer_name, input_size, num_hidden_units)
    variables = model.trainable_variables
    optimizer = optimizers.ClippingMomentumOptimizer(1e-3)
    optimizer.build(variables)

    @tf.function(jit_compile=jit_compile)
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
    return train_step, (inputs, tf.constant(labels))


def xla_step_memory(train_step, arguments):
    """Bytes that XLA's buffer assignment gives the compiled step beyond its parameters."""
    from tensorflow.compiler.xla.service import hlo_pb2
    serialized = train_step.experimental_get_compiler_ir(*arguments)(stage='optimized_hlo_proto_serialized')
    allocations = hlo_pb2.HloProto.FromString(serialized).buffer_assignment.buffer_allocations
    return sum(allocation.size for allocation in allocations
               if not allocation.is_entry_computation_parameter and not allocation.is_constant)


def gpu_peak_memory(run_step):
    """Bytes of TensorFlow's GPU allocator peak during one step, above what was allocated before it."""
    tf.config.experimental.reset_memory_stats('GPU:0')
    before = tf.config.experimental.get_memory_info('GPU:0')['current']
    run_step()
    return tf.config.experimental.get_memory_info('GPU:0')['peak'] - before


def benchmark(shape_name, layer_names, repeats):
    shape = SHAPES[shape_name]
    steps, compile_seconds, xla_memory, peak_memory = {}, {}, {}, {}
    on_gpu = bool(tf.config.list_physical_devices('GPU'))
    for name in layer_names:
        train_step, arguments = make_train_step(name, shape, jit_compile=name in OUR_LAYERS)
        steps[name] = lambda train_step=train_step, arguments=arguments: float(train_step(*arguments))
        start = time.perf_counter()
        steps[name]()
        compile_seconds[name] = time.perf_counter() - start
        steps[name]()  # One more call, so that the timed calls find everything allocated.
        compiled_step, arguments = (train_step, arguments) if name in OUR_LAYERS else \
            make_train_step(name, shape, jit_compile=True)
        xla_memory[name] = xla_step_memory(compiled_step, arguments)
        if on_gpu:
            peak_memory[name] = gpu_peak_memory(steps[name])
    timings = {name: [] for name in layer_names}
    for _ in range(repeats):
        for name in layer_names:
            start = time.perf_counter()
            steps[name]()
            timings[name].append(time.perf_counter() - start)
    reference = np.median(timings['keras.LSTM']) if 'keras.LSTM' in timings else float('nan')
    batch_size, length, input_size, units, _ = shape
    print(f'\n{shape_name}: batch {batch_size}, length {length}, input {input_size}, hidden {units}; '
          f'median of {repeats} interleaved steps')
    print('| layer | step (ms) | / Keras LSTM | first call incl. compile (s) | XLA step memory (MiB) |'
          + (' GPU peak (MiB) |' if on_gpu else ''))
    print('|---|---|---|---|---|' + ('---|' if on_gpu else ''))
    for name in layer_names:
        median = np.median(timings[name])
        print(f'| {name} | {1000 * median:.1f} | {median / reference:.2f} | {compile_seconds[name]:.1f} | '
              f'{xla_memory[name] / 2 ** 20:.0f} |' + (f' {peak_memory[name] / 2 ** 20:.0f} |' if on_gpu else ''),
              flush=True)


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
