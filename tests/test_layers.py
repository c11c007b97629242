"""Layers against NumPy re-implementations of the SPEC equations and against Keras' own layers."""

import numpy as np
import pytest
import tensorflow as tf

import layers

LAYER_TYPES = ['SimpleLayer', 'LSTMLayer', 'GRULayer', 'MISTLayer']
UNITS, INPUT_SIZE = 5, 3


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def numpy_layer(layer, inputs, initial_states):
    """The SPEC equations in NumPy, step by step, with the weights read from layer.gates."""
    gates = {name: [variable.numpy().astype(np.float64) for variable in variables]
             for name, variables in layer.gates.items()}
    lin = lambda name, h, x: h @ gates[name][0] + x @ gates[name][1] + gates[name][2]
    shift, units = layer.optional_bias_shift, layer.num_hidden_units
    history = [state for state in np.transpose(initial_states.astype(np.float64), [1, 0, 2])]
    outputs = []
    for x in np.transpose(inputs.astype(np.float64), [1, 0, 2]):
        previous = history[-1]
        if isinstance(layer, layers.SimpleLayer):
            state = h = np.tanh(lin('simple_rnn', previous, x))
        elif isinstance(layer, layers.LSTMLayer):
            c, h = previous[:, :units], previous[:, units:]
            candidate = np.tanh(lin('c', h, x))
            i, f, o = sigmoid(lin('i', h, x)), sigmoid(lin('f', h, x) + shift), sigmoid(lin('o', h, x))
            c = i * candidate + f * c
            h = o * np.tanh(c)
            state = np.concatenate([c, h], axis=1)
        elif isinstance(layer, layers.GRULayer):
            r = sigmoid(lin('r', previous, x))
            candidate = np.tanh(lin('h', r * previous, x))
            z = sigmoid(lin('z', previous, x) + shift)
            state = h = z * previous + (1 - z) * candidate
        else:
            logits = lin('coefs', previous, x)
            a = np.exp(logits - logits.max(1, keepdims=True))
            a /= a.sum(1, keepdims=True)
            m = sum(a[:, [i]] * history[-d] for i, d in enumerate(layer.pre_act_mixture_delays))
            r = sigmoid(lin('r', previous, x))
            state = h = np.tanh(lin('mist', r * m, x))
        history.append(state)
        outputs.append(h)
    final = np.stack(history[-layer.num_initial_states:], axis=1)
    return np.stack(outputs, axis=1), final


def make_layer(layer_type, **kwargs):
    layer = getattr(layers, layer_type)(UNITS, **kwargs)
    layer.build(INPUT_SIZE)
    # Non-zero biases, so that a wrong bias or shift shows.
    for variables in layer.gates.values():
        variables[2].assign(tf.random.normal(variables[2].shape, seed=1) * 0.5)
    return layer


@pytest.mark.parametrize('layer_type, kwargs, length', [
    ('SimpleLayer', {}, 7), ('LSTMLayer', {}, 7), ('GRULayer', {}, 7), ('LSTMLayer', {'optional_bias_shift': 2.5}, 4),
    ('MISTLayer', {}, 9), ('MISTLayer', {'pre_act_mixture_delays': [1, 3, 7]}, 12),
    ('MISTLayer', {'pre_act_mixture_delays': [1, 3, 7]}, 2), ('MISTLayer', {'pre_act_mixture_delays': [5, 2]}, 6)])
def test_layer_matches_numpy_equations(layer_type, kwargs, length):
    tf.random.set_seed(0)
    layer = make_layer(layer_type, **kwargs)
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal([2, length, INPUT_SIZE]).astype(np.float32)
    initial_states = rng.standard_normal([2, layer.num_initial_states, layer.state_size]).astype(np.float32)
    outputs, final_states = layer(inputs, initial_states)
    expected_outputs, expected_final = numpy_layer(layer, inputs, initial_states)
    np.testing.assert_allclose(outputs, expected_outputs, atol=1e-5)
    np.testing.assert_allclose(final_states, expected_final, atol=1e-5)
    # Default initial states are zeros.
    outputs, _ = layer(inputs)
    np.testing.assert_allclose(outputs, numpy_layer(layer, inputs, np.zeros_like(initial_states))[0], atol=1e-5)


def test_shapes_and_gates():
    layer = make_layer('MISTLayer', pre_act_mixture_delays=[1, 2, 4])
    assert layer.get_initial_states(3).shape == (3, 4, UNITS)
    assert {name: [tuple(v.shape) for v in variables] for name, variables in layer.gates.items()} == {
        'coefs': [(UNITS, 3), (INPUT_SIZE, 3), (3,)], 'r': [(UNITS, UNITS), (INPUT_SIZE, UNITS), (UNITS,)],
        'mist': [(UNITS, UNITS), (INPUT_SIZE, UNITS), (UNITS,)]}
    lstm = make_layer('LSTMLayer')
    assert lstm.get_initial_states(2).shape == (2, 1, 2 * UNITS)
    assert sorted(lstm.gates) == ['c', 'f', 'i', 'o']
    assert sorted(make_layer('GRULayer').gates) == ['h', 'r', 'z']
    outputs, final_states = layer(tf.zeros([3, 6, INPUT_SIZE]))
    assert outputs.shape == (3, 6, UNITS) and final_states.shape == (3, 4, UNITS)
    # Batch size and length may change between calls.
    assert layer(tf.zeros([5, 2, INPUT_SIZE]))[0].shape == (5, 2, UNITS)


def test_default_initialisers():
    layer = layers.LSTMLayer(400)
    layer.build(300)
    weights = layer.gates['c'][0].numpy()
    assert abs(weights.std() - np.sqrt(1 / 400)) < 0.002 and abs(weights.mean()) < 0.002
    assert abs(layer.gates['i'][1].numpy().std() - np.sqrt(1 / 400)) < 0.002
    assert not layer.gates['f'][2].numpy().any()


def keras_pair(layer_type):
    """Our layer and the Keras layer with the same weights, mapped gate by gate."""
    tf.random.set_seed(2)
    ours = make_layer(layer_type, optional_bias_shift=0.7)
    gates = {name: [variable.numpy() for variable in variables] for name, variables in ours.gates.items()}
    if layer_type == 'SimpleLayer':
        keras_layer = tf.keras.layers.SimpleRNN(UNITS, return_sequences=True)
        weights = gates['simple_rnn'][1], gates['simple_rnn'][0], gates['simple_rnn'][2]
    elif layer_type == 'LSTMLayer':
        keras_layer = tf.keras.layers.LSTM(UNITS, return_sequences=True)
        order = ['i', 'f', 'c', 'o']  # Keras' gate order.
        shift = {'f': 0.7}
        weights = (np.concatenate([gates[g][1] for g in order], 1), np.concatenate([gates[g][0] for g in order], 1),
                   np.concatenate([gates[g][2] + shift.get(g, 0.0) for g in order]))
    else:
        keras_layer = tf.keras.layers.GRU(UNITS, return_sequences=True, reset_after=False)
        order = ['z', 'r', 'h']
        shift = {'z': 0.7}
        weights = (np.concatenate([gates[g][1] for g in order], 1), np.concatenate([gates[g][0] for g in order], 1),
                   np.concatenate([gates[g][2] + shift.get(g, 0.0) for g in order]))
    keras_layer.build((None, None, INPUT_SIZE))
    keras_layer.set_weights(list(weights))
    return ours, keras_layer


@pytest.mark.parametrize('layer_type', ['SimpleLayer', 'LSTMLayer', 'GRULayer'])
def test_layer_matches_keras(layer_type):
    ours, keras_layer = keras_pair(layer_type)
    inputs = np.random.default_rng(3).standard_normal([4, 9, INPUT_SIZE]).astype(np.float32)
    np.testing.assert_allclose(ours(inputs)[0], keras_layer(inputs), atol=1e-5)


@pytest.mark.parametrize('layer_type, delays', [
    ('SimpleLayer', None), ('LSTMLayer', None), ('GRULayer', None), ('MISTLayer', [1, 2, 4, 8]),
    ('MISTLayer', [1, 3, 7])])
def test_chunks_with_final_states_equal_whole_sequence(layer_type, delays):
    tf.random.set_seed(4)
    layer = make_layer(layer_type, **({'pre_act_mixture_delays': delays} if delays else {}))
    inputs = np.random.default_rng(4).standard_normal([3, 17, INPUT_SIZE]).astype(np.float32)
    whole, whole_final = layer(inputs)
    for chunk_lengths in ([5, 5, 7], [1, 2, 3, 11], [16, 1]):
        states, outputs, start = None, [], 0
        for length in chunk_lengths:
            chunk_outputs, states = layer(inputs[:, start:start + length], states)
            outputs.append(chunk_outputs)
            start += length
        np.testing.assert_allclose(np.concatenate(outputs, axis=1), whole, atol=1e-5)
        np.testing.assert_allclose(states, whole_final, atol=1e-5)


@pytest.mark.parametrize('layer_type', LAYER_TYPES)
def test_weight_gradients_match_finite_differences(layer_type):
    """For each variable, the derivative along a random direction against a central difference."""
    tf.random.set_seed(5)
    kwargs = {'pre_act_mixture_delays': [1, 2, 5]} if layer_type == 'MISTLayer' else {}
    layer = getattr(layers, layer_type)(3, **kwargs)
    layer.build(2)
    rng = np.random.default_rng(5)
    inputs = tf.constant(rng.standard_normal([2, 7, 2]), tf.float32)
    initial = tf.constant(rng.standard_normal([2, layer.num_initial_states, layer.state_size]), tf.float32)
    projection = tf.constant(np.linspace(-1, 1, 3), tf.float32)

    def loss():
        outputs, final = layer(inputs, initial)
        return tf.reduce_sum(tf.sin(3.0 * outputs) * projection) + tf.reduce_sum(final ** 2)

    with tf.GradientTape() as tape:
        value = loss()
    gradients = tape.gradient(value, layer.trainable_variables)
    epsilon = 5e-3
    for variable, gradient in zip(layer.trainable_variables, gradients):
        direction = rng.standard_normal(variable.shape).astype(np.float32)
        direction /= np.linalg.norm(direction)
        original = variable.numpy()
        variable.assign(original + epsilon * direction)
        plus = float(loss())
        variable.assign(original - epsilon * direction)
        minus = float(loss())
        variable.assign(original)
        np.testing.assert_allclose(np.sum(gradient.numpy() * direction), (plus - minus) / (2 * epsilon),
                                   rtol=1e-2, atol=2e-3, err_msg=variable.name)


@pytest.mark.parametrize('layer_type', LAYER_TYPES)
def test_compute_gradient_agrees(layer_type):
    """tf.test.compute_gradient's numeric Jacobian with respect to the inputs and initial states."""
    tf.random.set_seed(6)
    kwargs = {'pre_act_mixture_delays': [1, 3]} if layer_type == 'MISTLayer' else {}
    layer = getattr(layers, layer_type)(3, **kwargs)
    layer.build(2)
    rng = np.random.default_rng(6)
    inputs = tf.constant(rng.standard_normal([2, 5, 2]), tf.float32)
    initial = tf.constant(rng.standard_normal([2, layer.num_initial_states, layer.state_size]), tf.float32)
    theoretical, numerical = tf.test.compute_gradient(lambda x, s: layer(x, s)[0], [inputs, initial], delta=1e-2)
    for analytic, numeric in zip(theoretical, numerical):
        np.testing.assert_allclose(analytic, numeric, atol=5e-3)


def straightforward_mist(layer, inputs, initial_states):
    """MIST as a plain Python loop over a list of past states, differentiated by TensorFlow itself."""
    lin = lambda name, h, x: h @ layer.gates[name][0] + x @ layer.gates[name][1] + layer.gates[name][2]
    history = [initial_states[:, i] for i in range(layer.num_initial_states)]
    outputs = []
    for t in range(inputs.shape[1]):
        x = inputs[:, t]
        a = tf.nn.softmax(lin('coefs', history[-1], x))
        m = sum(a[:, i:i + 1] * history[-d] for i, d in enumerate(layer.pre_act_mixture_delays))
        r = tf.sigmoid(lin('r', history[-1], x))
        history.append(layer.activation(lin('mist', r * m, x)))
        outputs.append(history[-1])
    return tf.stack(outputs, axis=1), tf.stack(history[-layer.num_initial_states:], axis=1)


@pytest.mark.parametrize('activation, delays, length', [
    (tf.nn.tanh, [1, 2, 4, 8, 16], 23), (tf.nn.relu, [1, 3, 7], 5), (tf.nn.elu, [2, 4], 9)])
def test_fast_mist_gradient_equals_autodiff_of_straightforward_loop(activation, delays, length):
    tf.random.set_seed(7)
    layer = layers.MISTLayer(6, activation=activation, pre_act_mixture_delays=delays)
    layer.build(3)
    rng = np.random.default_rng(7)
    inputs = tf.constant(rng.standard_normal([4, length, 3]), tf.float32)
    initial = tf.constant(rng.standard_normal([4, max(delays), 6]), tf.float32)
    weights = tf.constant(rng.standard_normal([length, 6]), tf.float32)
    results = []
    for implementation in (layer, lambda x, s: straightforward_mist(layer, x, s)):
        with tf.GradientTape() as tape:
            tape.watch([inputs, initial])
            outputs, final = implementation(inputs, initial)
            loss = tf.reduce_sum(outputs * weights) + tf.reduce_sum(tf.square(final))
        results.append([outputs, final] + tape.gradient(loss, [inputs, initial] + list(layer.trainable_variables)))
    for fast, reference in zip(*results):
        np.testing.assert_allclose(fast, reference, atol=2e-5, rtol=1e-4)


def test_recurrent_product_pads_columns_without_changing_the_product():
    rng = np.random.default_rng(8)
    for rows, inner, columns in [(3, 139, 556), (3, 47, 47), (3, 5, 7)]:  # Padded to 576, to 48, not padded.
        inputs = rng.standard_normal([rows, inner]).astype(np.float32)
        weights = rng.standard_normal([inner, columns]).astype(np.float32)
        product = layers._recurrent_product(tf.constant(inputs), tf.constant(weights))
        assert product.shape == (rows, columns)
        np.testing.assert_allclose(product, inputs @ weights, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize('layer_type', LAYER_TYPES)
def test_batch_cut_into_parts_equals_equations_and_whole_batch(layer_type, monkeypatch):
    """Loop steps that advance 3 parts of the batch side by side (as on a 3-core CPU) give the NumPy
    equations' outputs and the whole batch's outputs and gradients; 47 hidden units take padded products."""
    monkeypatch.setattr(layers, '_num_cores', lambda: 3)
    tf.random.set_seed(9)
    kwargs = {'pre_act_mixture_delays': [1, 2, 4, 8]} if layer_type == 'MISTLayer' else {}
    layer = getattr(layers, layer_type)(47, **kwargs)
    layer.build(INPUT_SIZE)
    rng = np.random.default_rng(9)
    inputs = tf.constant(rng.standard_normal([50, 11, INPUT_SIZE]), tf.float32)
    initial = tf.constant(rng.standard_normal([50, layer.num_initial_states, layer.state_size]), tf.float32)
    weights = tf.constant(rng.standard_normal([50, 11, 47]), tf.float32)
    results = {}
    for split in (True, False):
        layer.split_batch_across_cores = split
        assert layer._batch_part_sizes(50) == ([17, 17, 16] if split else [50])
        assert layer._batch_part_sizes(1000) == [1000]
        with tf.GradientTape() as tape:
            tape.watch([inputs, initial])
            outputs, final = layer(inputs, initial)
            loss = tf.reduce_sum(outputs * weights) + tf.reduce_sum(tf.square(final))
        results[split] = [outputs, final] + tape.gradient(loss, [inputs, initial] + list(layer.trainable_variables))
    expected_outputs, expected_final = numpy_layer(layer, inputs.numpy(), initial.numpy())
    np.testing.assert_allclose(results[True][0], expected_outputs, atol=1e-5)
    np.testing.assert_allclose(results[True][1], expected_final, atol=1e-5)
    for cut, whole in zip(results[True], results[False]):
        np.testing.assert_allclose(cut, whole, atol=1e-4, rtol=1e-4)


def test_bad_input_raises_clear_errors():
    with pytest.raises(ValueError, match='at least one delay'):
        layers.MISTLayer(4, pre_act_mixture_delays=[])
    with pytest.raises(ValueError, match='unique'):
        layers.MISTLayer(4, pre_act_mixture_delays=[1, 2, 2])
    with pytest.raises(ValueError, match='positive integers'):
        layers.MISTLayer(4, pre_act_mixture_delays=[0, 1])
    with pytest.raises(ValueError, match='positive integers'):
        layers.MISTLayer(4, pre_act_mixture_delays=[1.5])
    with pytest.raises(ValueError, match='num_hidden_units'):
        layers.LSTMLayer(0)
    with pytest.raises(ValueError, match='activation'):
        layers.GRULayer(4, activation='tanh')
    layer = make_layer('LSTMLayer')
    with pytest.raises(ValueError, match=r'\[batch_size, length, input_size\]'):
        layer(tf.zeros([2, 3]))
    with pytest.raises(ValueError, match='input_size 3'):
        layer(tf.zeros([2, 3, 4]))
    with pytest.raises(ValueError, match='initial_states'):
        layer(tf.zeros([2, 3, INPUT_SIZE]), tf.zeros([2, 1, UNITS]))
