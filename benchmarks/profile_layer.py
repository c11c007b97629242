"""Where a layer's compiled train step spends its time: XLA's kernels, summed over the loop's steps.

    python3 benchmarks/profile_layer.py [--layer_type MISTLayer] [--length 784] [--top 25]

Runs the forward and backward pass of one layer (pMNIST shape by default) under TensorFlow's
profiler with XLA's per-kernel trace events on, and prints each kernel's total time per step of
training, with how often it ran. Matrix products show up as MatMul*, XLA's fused element-wise
kernels as *_fusion. Where a layer cuts its batch into parts, one per core, each part has its own
kernels (the same product appears once per part, under different numbers), and the kernels' sum
can exceed the pass's time because the parts run at the same time.
"""

import argparse
import collections
import os
import pathlib
import sys
import tempfile

os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '') + ' --xla_cpu_enable_xprof_traceme=true').strip()
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent.parent))

import tensorflow as tf  # noqa: E402
from tensorflow.tsl.profiler.protobuf import xplane_pb2  # noqa: E402

import layers  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--layer_type', default='MISTLayer', choices=['MISTLayer', 'LSTMLayer', 'GRULayer',
                                                                       'SimpleLayer'])
    parser.add_argument('--batch_size', type=int, default=100)
    parser.add_argument('--length', type=int, default=784)
    parser.add_argument('--input_size', type=int, default=1)
    parser.add_argument('--num_hidden_units', type=int, default=139)
    parser.add_argument('--repeats', type=int, default=3)
    parser.add_argument('--top', type=int, default=25)
    args = parser.parse_args()

    layer = getattr(layers, args.layer_type)(args.num_hidden_units)
    layer.build(args.input_size)
    inputs = tf.random.normal([args.batch_size, args.length, args.input_size])
    variables = layer.trainable_variables

    @tf.function(jit_compile=True)
    def forward_and_backward(inputs):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(tf.square(layer(inputs)[0]))
        return tape.gradient(loss, variables)

    run = lambda: [gradient.numpy() for gradient in forward_and_backward(inputs)]
    run()  # Compile outside the profile.
    with tempfile.TemporaryDirectory() as log_dir:
        tf.profiler.experimental.start(log_dir)
        for _ in range(args.repeats):
            run()
        tf.profiler.experimental.stop()
        trace = sorted(pathlib.Path(log_dir).rglob('*.xplane.pb'))[-1]
        space = xplane_pb2.XSpace.FromString(trace.read_bytes())

    milliseconds, counts, total = collections.Counter(), collections.Counter(), 0.0
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, '?')
                if 'Eigen' in line.name:  # XLA's worker threads: the kernels themselves.
                    milliseconds[name] += event.duration_ps / 1e9 / args.repeats
                    counts[name] += 1 / args.repeats
                elif name == 'CpuExecutable::ExecuteAsyncOnStream':
                    total += event.duration_ps / 1e9 / args.repeats
    print(f'{args.layer_type}, batch {args.batch_size}, length {args.length}, input {args.input_size}, hidden '
          f'{args.num_hidden_units}: {total:.1f} ms per forward and backward pass')
    kernels = sum(time for name, time in milliseconds.items() if name != 'ThunkExecutor::Execute')
    print(f'kernels: {kernels:.1f} ms, summed over the cores; what one chain of kernels leaves of the pass is '
          f'XLA\'s per-kernel overhead and the profiler\'s own')
    print(f'{"ms":>8} {"calls":>7}  kernel')
    for name, time in milliseconds.most_common():
        if name == 'ThunkExecutor::Execute':
            continue
        print(f'{time:8.2f} {counts[name]:7.0f}  {name}')
        args.top -= 1
        if not args.top:
            break


if __name__ == '__main__':
    main()
