"""Recurrent layers: Simple RNN, LSTM, GRU and MIST (mixed history) RNN.

Every layer maps `inputs` `[batch_size, length, input_size]` to `outputs`
`[batch_size, length, num_hidden_units]` and `final_states`
`[batch_size, num_initial_states, state_size]`:

    outputs, final_states = layer(inputs, initial_states=None)

Each gate `g` has its own variables `(W_h, W_x, b)`, listed in `layer.gates`, and
`lin_g(h, x) = h W_h + x W_x + b`. For speed the input projections of all steps are
computed in one matrix product before the loop, and the recurrent matrices of the
gates that share an input are concatenated, so each step does as few products as the
equations allow.
"""

import os

import numpy as np
import tensorflow as tf


class RNNLayer(tf.Module):
    """The common base: variables, shape checks and the initial states.

    Subclasses set `gate_names` and implement `_run(inputs, initial_states)`; Simple, LSTM and GRU
    do so through `_scan`, giving one step (`_step`), its gradient (`_step_gradient`) and their
    recurrent weights' gradient (`_weight_gradients`).
    """

    gate_names = ()
    # Whether each loop step advances one part of the batch per CPU core side by side (see
    # `_batch_part_sizes`). It pays where the per-step products are small enough that Eigen runs
    # each on one core: measured on 2 cores at the pMNIST shape, MIST -19% and Simple -13% step
    # time, but LSTM and GRU, whose larger products Eigen already spreads over the cores, +6%.
    split_batch_across_cores = False

    def __init__(self, num_hidden_units, activation=tf.nn.tanh, square_initializer=None,
                 non_square_initializer=None, bias_initializer=None, optional_bias_shift=1.0,
                 name=None):
        super().__init__(name=name)
        if isinstance(num_hidden_units, bool) or not isinstance(num_hidden_units, (int, np.integer)) \
                or num_hidden_units < 1:
            raise ValueError(f'num_hidden_units must be a positive integer; got {num_hidden_units!r}.')
        if not callable(activation):
            raise ValueError(f'activation must be a function such as tf.nn.tanh; got {activation!r}.')
        self.num_hidden_units = int(num_hidden_units)
        self.activation = activation
        standard_deviation = 1.0 / np.sqrt(self.num_hidden_units)
        self.square_initializer = square_initializer or tf.random_normal_initializer(0.0, standard_deviation)
        self.non_square_initializer = non_square_initializer or tf.random_normal_initializer(0.0, standard_deviation)
        self.bias_initializer = bias_initializer or tf.zeros_initializer()
        self.optional_bias_shift = float(optional_bias_shift)
        self.input_size = None
        self.gates = {}

    # Shapes of the states.
    num_initial_states = 1

    @property
    def state_size(self):
        return self.num_hidden_units

    def get_initial_states(self, batch_size):
        """Zeros `[batch_size, num_initial_states, state_size]`."""
        return tf.zeros([batch_size, self.num_initial_states, self.state_size], tf.float32)

    # Variables.
    def _gate_output_size(self, gate_name):
        return self.num_hidden_units

    def _new_weight(self, shape, name):
        initializer = self.square_initializer if shape[0] == shape[1] else self.non_square_initializer
        return tf.Variable(initializer(shape, dtype=tf.float32), name=name)

    def build(self, input_size):
        """Creates the variables of every gate for inputs with `input_size` features."""
        if self.input_size is not None:
            if input_size != self.input_size:
                raise ValueError(f'{type(self).__name__} was built for input_size {self.input_size}; '
                                 f'got inputs with {input_size} features.')
            return
        if input_size is None or input_size < 1:
            raise ValueError(f'input_size must be a positive integer; got {input_size!r}.')
        self.input_size = int(input_size)
        with self.name_scope:
            for gate_name in self.gate_names:
                size = self._gate_output_size(gate_name)
                self.gates[gate_name] = (
                    self._new_weight([self.num_hidden_units, size], f'{gate_name}_W_h'),
                    self._new_weight([self.input_size, size], f'{gate_name}_W_x'),
                    tf.Variable(self.bias_initializer([size], dtype=tf.float32), name=f'{gate_name}_b'))

    def _stacked(self, gate_names):
        """The recurrent matrix, input matrix and bias of `gate_names`, concatenated along outputs."""
        return [tf.concat([self.gates[name][part] for name in gate_names], axis=-1) for part in range(3)]

    # Calling.
    def __call__(self, inputs, initial_states=None):
        """inputs: `[batch_size, length, input_size]`; initial_states: `[batch_size,
        num_initial_states, state_size]` or None for zeros. Returns outputs `[batch_size, length,
        num_hidden_units]` and final states shaped like the initial states, oldest first."""
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        if inputs.shape.rank != 3:
            raise ValueError(f'inputs must have shape [batch_size, length, input_size]; got shape {inputs.shape}.')
        self.build(inputs.shape[-1])
        batch_size = tf.shape(inputs)[0]
        if initial_states is None:
            initial_states = self.get_initial_states(batch_size)
        else:
            initial_states = tf.convert_to_tensor(initial_states, tf.float32)
            expected = [inputs.shape[0], self.num_initial_states, self.state_size]
            if initial_states.shape.rank != 3 or not initial_states.shape.is_compatible_with(expected):
                raise ValueError(f'initial_states must have shape [batch_size, num_initial_states, state_size] '
                                 f'= {expected}; got shape {initial_states.shape}. Use get_initial_states.')
        return self._run(inputs, initial_states)

    def _time_major_input_projections(self, inputs, gate_names):
        """x W_x + b of `gate_names` for all steps at once: `[length, batch_size, sum of gate sizes]`."""
        _, input_weights, biases = self._stacked(gate_names)
        # Transposing the inputs rather than the projections moves input_size numbers per step, not
        # the far more numerous projections. The bias rides in the product as a weight row for a
        # constant input of 1, so that its gradient is part of one matrix product too: XLA compiles
        # the reduction that would otherwise give it into a much slower program on the CPU.
        inputs = tf.transpose(inputs, [1, 0, 2])
        inputs_and_ones = tf.concat([inputs, tf.ones_like(inputs[:, :, :1])], axis=-1)
        return tf.tensordot(inputs_and_ones, tf.concat([input_weights, biases[None]], axis=0), axes=1)

    def _batch_part_sizes(self, batch_size):
        """The sizes of the parts of the batch that each loop step advances side by side.

        XLA's CPU runtime runs the independent operations of a loop step at the same time, so one
        part per core keeps the cores busy where one chain of small products would leave all but
        one waiting. Batches above _MAX_CUT_BATCH_SIZE make products large enough for Eigen to
        spread over the cores itself (at batch 1000, cutting made Simple's forward pass 1.45x
        slower; MIST's unchanged, against 0.7x at 100-400). A GPU prefers one large product, and
        an unknown batch size cannot be cut."""
        if (not self.split_batch_across_cores or batch_size is None or batch_size > _MAX_CUT_BATCH_SIZE
                or tf.config.list_logical_devices('GPU')):
            return [batch_size]
        num_parts = max(1, min(_num_cores(), batch_size // _MIN_PART_SIZE))
        return [batch_size // num_parts + (index < batch_size % num_parts) for index in range(num_parts)]

    def _scan(self, inputs, initial_states, gate_names, recurrent_weights, projection_shift=0.0):
        """Runs the layer's `_step` over time with the gradient of its `_step_gradient`.

        Returns outputs `[batch_size, length, num_hidden_units]` and final states
        `[batch_size, 1, state_size]`; the hidden state is the last num_hidden_units of the state."""
        projections = self._time_major_input_projections(inputs, gate_names) + projection_shift
        states = _scan_with_gradient(self._step, self._step_gradient, self._weight_gradients,
                                     projections, initial_states[:, 0], recurrent_weights,
                                     self._batch_part_sizes(inputs.shape[0]))
        outputs = tf.transpose(states[:, :, -self.num_hidden_units:], [1, 0, 2])
        return outputs, tf.transpose(states[-1:], [1, 0, 2])


def _activation_gradient(activation, pre_activations, output_gradients):
    """The gradient through `activation` at `pre_activations`, for any element-wise activation."""
    with tf.GradientTape() as tape:
        tape.watch(pre_activations)
        activations = activation(pre_activations)
    return tape.gradient(activations, pre_activations, output_gradients=output_gradients)


# A part of the batch holds at least this many samples: each part's kernels cost a fixed overhead,
# which tiny parts do not earn back.
_MIN_PART_SIZE = 16
_MAX_CUT_BATCH_SIZE = 512


def _num_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # Not on Linux.
        return os.cpu_count() or 1


def _split_batch(tensor, sizes, axis):
    return tf.split(tensor, sizes, axis=axis) if len(sizes) > 1 else [tensor]


def _recurrent_product(inputs, weights):
    """inputs `[batch_size, n]` times weights `[n, m]`, computed with m padded to a multiple of 48.

    Measured here, a per-step product with 556 columns took 157 us and the same padded to 576
    columns 118 us (139 columns: 54 us, padded to 144: 48 us), probably because Eigen's product
    kernel works on blocks of three 16-float AVX-512 registers. XLA pads the loop-invariant weights
    once, before the loop. Padding that would add more than 1/16 of the columns is not worth it.
    """
    columns = weights.shape[-1]
    padding = -columns % 48
    if padding > columns // 16:
        return tf.matmul(inputs, weights)
    return tf.matmul(inputs, tf.pad(weights, [[0, 0], [0, padding]]))[:, :columns]


def _scan_with_gradient(step, step_gradient, weight_gradients, projections, initial_state, recurrent_weights,
                        part_sizes):
    """A recurrence in one tf.while_loop, differentiated by a hand-written backward loop.

    XLA compiles TensorFlow's automatic gradient of a while loop into a program that copies its
    stacks of saved values at every step (about 7x slower than Keras' LSTM without XLA at the pMNIST
    shape); this backward loop only reads them. The weight gradient is one large matrix product
    after the loop rather than a small one per step. Each loop step advances the parts of the batch
    of sizes `part_sizes` side by side (see `RNNLayer._batch_part_sizes`).

    projections: `[length, batch_size, num_projections]`, the input part of the pre-activations.
    initial_state: `[batch_size, state_size]`; recurrent_weights: `[num_hidden_units, num_projections]`.
    step(state, projection, recurrent_weights) -> (state, saved), saved `[batch_size, num_saved]`.
    step_gradient(state_gradient, previous_state, saved, recurrent_weights) -> (previous_state_gradient,
        projection_gradient).
    weight_gradients(previous_states, saved, projection_gradients) -> the recurrent weights' gradient,
        all three stacked over time.
    Returns the states `[length, batch_size, state_size]`.
    """

    @tf.custom_gradient
    def scan(projections, initial_state, recurrent_weights):
        length = tf.shape(projections)[0]
        new_array = lambda size=length: tf.TensorArray(tf.float32, size=size, element_shape=[None, None])
        projection_parts = _split_batch(projections, part_sizes, axis=1)
        initial_state_parts = _split_batch(initial_state, part_sizes, axis=0)

        def forward_step(t, parts):
            advanced = []
            for (state, states, saved_values), part_projections in zip(parts, projection_parts):
                state, saved = step(state, part_projections[t], recurrent_weights)
                advanced.append((state, states.write(t + 1, state), saved_values.write(t, saved)))
            return t + 1, advanced

        # states[0] is the initial state and states[t + 1] the state after step t, so that the backward
        # loop reads each step's previous state without a shifted copy of the stack.
        _, parts = tf.while_loop(
            lambda t, _: t < length, forward_step,
            (tf.constant(0), [(state, new_array(length + 1).write(0, state), new_array())
                              for state in initial_state_parts]),
            maximum_iterations=length)
        states_parts = [states.stack() for _, states, _ in parts]
        saved_parts = [saved_values.stack() for _, _, saved_values in parts]

        def gradient(state_gradients):
            part_values = list(zip(_split_batch(state_gradients, part_sizes, axis=1), states_parts, saved_parts))

            def backward_step(t, parts):
                stepped = []
                for (state_gradient, projection_gradients), (state_gradients, previous_states, saved_values) \
                        in zip(parts, part_values):
                    state_gradient, projection_gradient = step_gradient(
                        state_gradients[t] + state_gradient, previous_states[t], saved_values[t], recurrent_weights)
                    stepped.append((state_gradient, projection_gradients.write(t, projection_gradient)))
                return t - 1, stepped

            _, parts = tf.while_loop(
                lambda t, _: t >= 0, backward_step,
                (length - 1, [(tf.zeros_like(state), new_array()) for state in initial_state_parts]),
                maximum_iterations=length)
            projection_gradients_parts = [projection_gradients.stack() for _, projection_gradients in parts]
            return (tf.concat(projection_gradients_parts, axis=1),
                    tf.concat([state_gradient for state_gradient, _ in parts], axis=0),
                    tf.add_n([weight_gradients(states[:-1], saved_values, projection_gradients)
                              for states, saved_values, projection_gradients in
                              zip(states_parts, saved_parts, projection_gradients_parts)]))

        return tf.concat([states[1:] for states in states_parts], axis=1), gradient

    return scan(projections, initial_state, recurrent_weights)


def _product_over_time(first, second):
    """sum over time and batch of first^T second: `[length, batch_size, m]`, `[length, batch_size, n]` -> `[m, n]`."""
    return tf.matmul(tf.reshape(first, [-1, tf.shape(first)[-1]]), tf.reshape(second, [-1, tf.shape(second)[-1]]),
                     transpose_a=True)


class SimpleLayer(RNNLayer):
    """h_t = act(lin_simple_rnn(h_{t-1}, x_t))."""

    gate_names = ('simple_rnn',)
    split_batch_across_cores = True

    def _run(self, inputs, initial_states):
        return self._scan(inputs, initial_states, self.gate_names, self.gates['simple_rnn'][0])

    def _step(self, h, projection, recurrent_weights):
        pre_activations = _recurrent_product(h, recurrent_weights) + projection
        return self.activation(pre_activations), pre_activations

    def _step_gradient(self, h_gradient, h_previous, pre_activations, recurrent_weights):
        pre_activation_gradient = _activation_gradient(self.activation, pre_activations, h_gradient)
        return _recurrent_product(pre_activation_gradient, tf.transpose(recurrent_weights)), pre_activation_gradient

    def _weight_gradients(self, previous_states, saved_values, projection_gradients):
        return _product_over_time(previous_states, projection_gradients)


class LSTMLayer(RNNLayer):
    """Long short-term memory; the state is `[cell state, hidden state]` along the last axis.

    c~ = act(lin_c); i = sig(lin_i); f = sig(lin_f + shift); o = sig(lin_o)
    c_t = i * c~ + f * c_{t-1};  h_t = o * act(c_t)
    """

    gate_names = ('c', 'i', 'f', 'o')

    @property
    def state_size(self):
        return 2 * self.num_hidden_units

    def _run(self, inputs, initial_states):
        units = self.num_hidden_units
        shift = tf.constant([0.0] * 2 * units + [self.optional_bias_shift] * units + [0.0] * units)
        return self._scan(inputs, initial_states, self.gate_names, self._stacked(self.gate_names)[0], shift)

    def _gates(self, pre_activations):
        units = self.num_hidden_units
        candidate = self.activation(pre_activations[:, :units])
        i, f, o = tf.split(tf.sigmoid(pre_activations[:, units:]), 3, axis=1)
        return candidate, i, f, o

    def _step(self, state, projection, recurrent_weights):
        c, h = tf.split(state, 2, axis=1)
        pre_activations = _recurrent_product(h, recurrent_weights) + projection
        candidate, i, f, o = self._gates(pre_activations)
        c = i * candidate + f * c
        return tf.concat([c, o * self.activation(c)], axis=1), pre_activations

    def _step_gradient(self, state_gradient, previous_state, pre_activations, recurrent_weights):
        units = self.num_hidden_units
        c_previous, h_previous = tf.split(previous_state, 2, axis=1)
        c_gradient, h_gradient = tf.split(state_gradient, 2, axis=1)
        candidate, i, f, o = self._gates(pre_activations)
        c = i * candidate + f * c_previous
        c_gradient += _activation_gradient(self.activation, c, h_gradient * o)
        pre_activation_gradient = tf.concat([
            _activation_gradient(self.activation, pre_activations[:, :units], c_gradient * i),
            c_gradient * candidate * i * (1.0 - i),
            c_gradient * c_previous * f * (1.0 - f),
            h_gradient * self.activation(c) * o * (1.0 - o)], axis=1)
        h_previous_gradient = _recurrent_product(pre_activation_gradient, tf.transpose(recurrent_weights))
        return tf.concat([c_gradient * f, h_previous_gradient], axis=1), pre_activation_gradient

    def _weight_gradients(self, previous_states, saved_values, projection_gradients):
        return _product_over_time(previous_states[:, :, self.num_hidden_units:], projection_gradients)


class GRULayer(RNNLayer):
    """Gated recurrent unit, with the reset gate applied before the recurrent product.

    r = sig(lin_r(h_{t-1}, x_t)); h~ = act(lin_h(r * h_{t-1}, x_t))
    z = sig(lin_z(h_{t-1}, x_t) + shift); h_t = z * h_{t-1} + (1 - z) * h~
    """

    gate_names = ('r', 'h', 'z')
    _projection_order = ('r', 'z', 'h')  # The gates that read h_{t-1} first, in one product.

    def _run(self, inputs, initial_states):
        units = self.num_hidden_units
        shift = tf.constant([0.0] * units + [self.optional_bias_shift] * units + [0.0] * units)
        return self._scan(inputs, initial_states, self._projection_order,
                          self._stacked(self._projection_order)[0], shift)

    def _step(self, h, projection, recurrent_weights):
        units = self.num_hidden_units
        gate_pre_activations = _recurrent_product(h, recurrent_weights[:, :2 * units]) + projection[:, :2 * units]
        r = tf.sigmoid(gate_pre_activations[:, :units])
        z = tf.sigmoid(gate_pre_activations[:, units:])
        candidate_pre_activations = (_recurrent_product(r * h, recurrent_weights[:, 2 * units:])
                                     + projection[:, 2 * units:])
        h = z * h + (1.0 - z) * self.activation(candidate_pre_activations)
        return h, tf.concat([gate_pre_activations, candidate_pre_activations], axis=1)

    def _step_gradient(self, h_gradient, h_previous, pre_activations, recurrent_weights):
        units = self.num_hidden_units
        r, z = tf.split(tf.sigmoid(pre_activations[:, :2 * units]), 2, axis=1)
        candidate_pre_activations = pre_activations[:, 2 * units:]
        candidate_gradient = _activation_gradient(self.activation, candidate_pre_activations, h_gradient * (1.0 - z))
        reset_h_gradient = _recurrent_product(candidate_gradient, tf.transpose(recurrent_weights[:, 2 * units:]))
        gate_gradient = tf.concat([
            reset_h_gradient * h_previous * r * (1.0 - r),
            h_gradient * (h_previous - self.activation(candidate_pre_activations)) * z * (1.0 - z)], axis=1)
        h_previous_gradient = (h_gradient * z + reset_h_gradient * r
                               + _recurrent_product(gate_gradient, tf.transpose(recurrent_weights[:, :2 * units])))
        return h_previous_gradient, tf.concat([gate_gradient, candidate_gradient], axis=1)

    def _weight_gradients(self, previous_states, saved_values, projection_gradients):
        units = self.num_hidden_units
        r = tf.sigmoid(saved_values[:, :, :units])
        return tf.concat([_product_over_time(previous_states, projection_gradients[:, :, :2 * units]),
                          _product_over_time(r * previous_states, projection_gradients[:, :, 2 * units:])], axis=1)


class MISTLayer(RNNLayer):
    """Mixed history RNN: a NARX RNN that mixes the states of fixed delays (DiPietro et al., 2017).

    a = softmax over the delays of lin_coefs(h_{t-1}, x_t)
    m = sum_i a_i * h_{t - d_i};  r = sig(lin_r(h_{t-1}, x_t))
    h_t = act(lin_mist(r * m, x_t))

    The states of the last max(delays) steps live in a ring buffer, so a step costs the same
    whatever the largest delay. The gradient is written by hand (see `_mist_recurrence`): plain
    autodiff would carry the dense gradient of the whole ring buffer through every backward step.
    """

    gate_names = ('coefs', 'r', 'mist')
    split_batch_across_cores = True

    def __init__(self, num_hidden_units, activation=tf.nn.tanh,
                 pre_act_mixture_delays=(1, 2, 4, 8, 16, 32, 64, 128), **kwargs):
        super().__init__(num_hidden_units, activation, **kwargs)
        delays = list(pre_act_mixture_delays)
        if not delays:
            raise ValueError('pre_act_mixture_delays must hold at least one delay; got an empty list.')
        for delay in delays:
            if isinstance(delay, bool) or not isinstance(delay, (int, np.integer)) or delay < 1:
                raise ValueError(f'pre_act_mixture_delays must be positive integers; got {delays}.')
        if len(set(delays)) != len(delays):
            raise ValueError(f'pre_act_mixture_delays must be unique; got {delays}.')
        self.pre_act_mixture_delays = [int(delay) for delay in delays]

    @property
    def num_initial_states(self):
        return max(self.pre_act_mixture_delays)

    def _gate_output_size(self, gate_name):
        return len(self.pre_act_mixture_delays) if gate_name == 'coefs' else self.num_hidden_units

    def _run(self, inputs, initial_states):
        gate_recurrent_weights, _, _ = self._stacked(['coefs', 'r'])
        mist_recurrent_weights = self.gates['mist'][0]
        gate_projections = self._time_major_input_projections(inputs, ['coefs', 'r'])
        mist_projections = self._time_major_input_projections(inputs, ['mist'])
        outputs = _mist_recurrence(gate_projections, mist_projections, tf.transpose(initial_states, [1, 0, 2]),
                                   gate_recurrent_weights, mist_recurrent_weights,
                                   tuple(self.pre_act_mixture_delays), self.activation,
                                   self._batch_part_sizes(inputs.shape[0]))
        outputs = tf.transpose(outputs, [1, 0, 2])
        final_states = tf.concat([initial_states, outputs], axis=1)[:, -self.num_initial_states:]
        return outputs, final_states


def _mist_recurrence(gate_projections, mist_projections, initial_history, gate_recurrent_weights,
                     mist_recurrent_weights, delays, activation, part_sizes):
    """The MIST loop with its hand-written gradient.

    gate_projections: `[length, batch_size, num_delays + num_hidden_units]`, x W_x + b of coefs and r.
    mist_projections: `[length, batch_size, num_hidden_units]`, x W_x + b of mist.
    initial_history: `[max_delay, batch_size, num_hidden_units]`, the states before step 0, oldest first.
    gate_recurrent_weights: `[num_hidden_units, num_delays + num_hidden_units]`; mist_recurrent_weights:
    `[num_hidden_units, num_hidden_units]`. Each loop step advances the parts of the batch of sizes
    `part_sizes` side by side. Returns outputs `[length, batch_size, num_hidden_units]`.
    """
    num_delays, max_delay, delays_list = len(delays), max(delays), delays
    delays = tf.constant(delays, tf.int32)
    units = mist_recurrent_weights.shape[0]

    @tf.custom_gradient
    def recurrence(gate_projections, mist_projections, initial_history, gate_recurrent_weights,
                   mist_recurrent_weights):
        length = tf.shape(gate_projections)[0]
        float_array = lambda: tf.TensorArray(tf.float32, size=length, element_shape=[None, None])
        split = lambda tensor: _split_batch(tensor, part_sizes, axis=1)
        initial_history_parts = split(initial_history)

        def forward_step(t, ring, h_previous, outputs, gate_values, reset_mixtures, pre_activations,
                         gate_projections, mist_projections):
            """One step of one part of the batch. State h_t lives in slot t mod max_delay of the ring."""
            gates = _recurrent_product(h_previous, gate_recurrent_weights) + gate_projections[t]
            coefficients = tf.nn.softmax(gates[:, :num_delays])
            resets = tf.sigmoid(gates[:, num_delays:])
            delayed = tf.gather(ring, tf.math.floormod(t - delays, max_delay))
            reset_mixture = resets * tf.reduce_sum(tf.transpose(coefficients)[:, :, None] * delayed, axis=0)
            pre_activation = _recurrent_product(reset_mixture, mist_recurrent_weights) + mist_projections[t]
            h = activation(pre_activation)
            ring = tf.tensor_scatter_nd_update(ring, [[tf.math.floormod(t, max_delay)]], h[None])
            return (ring, h, outputs.write(t, h), gate_values.write(t, tf.concat([coefficients, resets], axis=1)),
                    reset_mixtures.write(t, reset_mixture), pre_activations.write(t, pre_activation))

        forward_constants = list(zip(split(gate_projections), split(mist_projections)))
        _, parts = tf.while_loop(
            lambda t, _: t < length,
            lambda t, parts: (t + 1, [forward_step(t, *part, *constants)
                                       for part, constants in zip(parts, forward_constants)]),
            (tf.constant(0), [(history, history[-1], float_array(), float_array(), float_array(), float_array())
                              for history in initial_history_parts]),
            maximum_iterations=length)
        # Per part: history[t + max_delay] is h_t for t from -max_delay to length - 1; the gate values are
        # the coefficients and resets `[length, part_size, num_delays + num_hidden_units]`.
        histories, gate_values_parts, reset_mixtures_parts, pre_activations_parts = [], [], [], []
        for history, (_, _, outputs, gate_values, reset_mixtures, pre_activations) in zip(
                initial_history_parts, parts):
            histories.append(tf.concat([history, outputs.stack()], axis=0))
            gate_values_parts.append(gate_values.stack())
            reset_mixtures_parts.append(reset_mixtures.stack())
            pre_activations_parts.append(pre_activations.stack())

        def gradient(output_gradients):
            def backward_step(t, gate_state_gradient, mixture_gradient_ring, gate_gradients, mist_gradients,
                              output_gradients, later_coefficients, gate_values, reset_mixtures, pre_activations,
                              history):
                """One step back for one part of the batch. h_t was read by step t + 1 through the gates and
                by steps t + d_i through the mixture. The ring holds the mixture gradients of the last
                max_delay steps done (s = t + 1 .. t + max_delay, slot s mod max_delay; zeros past the
                end): each step pulls what it needs and writes one slot. Adding into the slots of earlier
                steps instead would make XLA copy the whole ring at every step."""
                later_mixture_gradients = tf.gather(mixture_gradient_ring, tf.math.floormod(t + delays, max_delay))
                h_gradient = (output_gradients[t] + gate_state_gradient
                              + tf.reduce_sum(later_coefficients[t][:, :, None] * later_mixture_gradients, axis=0))
                coefficients, resets = gate_values[t][:, :num_delays], gate_values[t][:, num_delays:]
                pre_activation_gradient = _activation_gradient(activation, pre_activations[t], h_gradient)
                reset_mixture_gradient = _recurrent_product(pre_activation_gradient,
                                                            tf.transpose(mist_recurrent_weights))
                mixture_gradient = reset_mixture_gradient * resets
                # The sum over hidden units as a product with a vector of ones: XLA compiles the plain
                # reduction into a program about 10x slower on the CPU.
                delayed = tf.gather(history, t + max_delay - delays)
                coefficient_gradients = tf.transpose(tf.reshape(
                    tf.matmul(tf.reshape(mixture_gradient[None] * delayed, [-1, units]), tf.ones([units, 1])),
                    [num_delays, -1]))
                logit_gradients = coefficients * (
                    coefficient_gradients - tf.reduce_sum(coefficients * coefficient_gradients, 1, keepdims=True))
                reset_gradients = reset_mixture_gradient * reset_mixtures[t] * (1.0 - resets)
                gate_gradient = tf.concat([logit_gradients, reset_gradients], axis=1)
                gate_state_gradient = _recurrent_product(gate_gradient, tf.transpose(gate_recurrent_weights))
                mixture_gradient_ring = tf.tensor_scatter_nd_update(
                    mixture_gradient_ring, [[tf.math.floormod(t, max_delay)]], mixture_gradient[None])
                return (gate_state_gradient, mixture_gradient_ring, gate_gradients.write(t, gate_gradient),
                        mist_gradients.write(t, pre_activation_gradient))

            def later_coefficients(gate_values):
                """[t, i] = a_{t + d_i, i}, the weight with which step t + d_i read h_t; zero past the end."""
                padded = tf.pad(gate_values[:, :, :num_delays], [[0, max_delay], [0, 0], [0, 0]])
                return tf.stack([padded[delay:delay + length, :, index] for index, delay in enumerate(delays_list)],
                                axis=1)

            backward_constants = list(zip(
                split(output_gradients), [later_coefficients(gate_values) for gate_values in gate_values_parts],
                gate_values_parts, reset_mixtures_parts, pre_activations_parts, histories))
            _, parts = tf.while_loop(
                lambda t, _: t >= 0,
                lambda t, parts: (t - 1, [backward_step(t, *part, *constants)
                                           for part, constants in zip(parts, backward_constants)]),
                (length - 1, [(tf.zeros_like(history[0]), tf.zeros_like(history[:max_delay]), float_array(),
                               float_array()) for history in histories]),
                maximum_iterations=length)

            initial_gradients_parts, gate_gradients_parts, mist_gradients_parts = [], [], []
            gate_weight_gradient = mist_weight_gradient = 0.0
            for (gate_state_gradient, mixture_gradient_ring, gate_gradients, mist_gradients), gate_values, \
                    reset_mixtures, history in zip(parts, gate_values_parts, reset_mixtures_parts, histories):
                # The initial states h_{-max_delay} .. h_{-1}: h_{-1} fed step 0's gates, and h_{s - d_i} fed
                # step s's mixture for the first steps s < d_i, whose mixture gradients the ring holds now.
                initial_gradients = tf.tensor_scatter_nd_add(
                    tf.zeros_like(history[:max_delay]), [[max_delay - 1]], gate_state_gradient[None])
                for index, delay in enumerate(delays_list):
                    num_steps = tf.minimum(delay, length)
                    contribution = gate_values[:num_steps, :, index:index + 1] * mixture_gradient_ring[:num_steps]
                    initial_gradients += tf.pad(contribution, [[max_delay - delay, delay - num_steps], [0, 0], [0, 0]])
                initial_gradients_parts.append(initial_gradients)
                gate_gradients, mist_gradients = gate_gradients.stack(), mist_gradients.stack()
                gate_gradients_parts.append(gate_gradients)
                mist_gradients_parts.append(mist_gradients)
                # The recurrent weight gradients as large products instead of one small one per step.
                gate_weight_gradient += _product_over_time(history[max_delay - 1:-1], gate_gradients)
                mist_weight_gradient += _product_over_time(reset_mixtures, mist_gradients)
            return (tf.concat(gate_gradients_parts, axis=1), tf.concat(mist_gradients_parts, axis=1),
                    tf.concat(initial_gradients_parts, axis=1), gate_weight_gradient, mist_weight_gradient)

        return tf.concat([history[max_delay:] for history in histories], axis=1), gradient

    return recurrence(gate_projections, mist_projections, initial_history, gate_recurrent_weights,
                      mist_recurrent_weights)
