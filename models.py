"""An RNN layer followed by a linear output projection, with NaN-masked losses.

    model = RNNClassificationModel('MISTLayer', input_size, target_size, num_hidden_units, 'tanh')
    predictions, final_states = model(inputs)          # [batch_size, length, target_size]
    losses = model.losses(predictions, targets)        # targets [batch_size, length, target_size]

A step whose target holds a NaN has no target: it counts for no loss and no error. The losses
are computed with masks rather than `tf.boolean_mask`, so that shapes stay static under XLA.
"""

import numpy as np
import tensorflow as tf

import layers

LAYER_TYPES = ('SimpleLayer', 'LSTMLayer', 'GRULayer', 'MISTLayer')


def activation_from_name(activation_type):
    """The function `tf.nn.<activation_type>`, e.g. 'tanh' or 'relu'."""
    activation = getattr(tf.nn, activation_type, None) if isinstance(activation_type, str) else None
    if not callable(activation) or activation_type.startswith('_'):
        choices = sorted(name for name in dir(tf.nn) if not name.startswith('_') and callable(getattr(tf.nn, name)))
        raise ValueError(f'Unknown activation_type {activation_type!r}: expected the name of a function in tf.nn, '
                         f'such as tanh, relu, elu or sigmoid. Choices: {", ".join(choices)}.')
    return activation


class RNNModel(tf.Module):
    """The common base: `layer_type` names a class in `layers`, `activation_type` a function in tf.nn."""

    def __init__(self, layer_type, input_size, target_size, num_hidden_units, activation_type='tanh',
                 name=None, **layer_kwargs):
        super().__init__(name=name)
        if layer_type not in LAYER_TYPES:
            raise ValueError(f'Unknown layer_type {layer_type!r}; choose one of {", ".join(LAYER_TYPES)}.')
        for size_name, size in (('input_size', input_size), ('target_size', target_size)):
            if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
                raise ValueError(f'{size_name} must be a positive integer; got {size!r}.')
        self.layer_type, self.activation_type = layer_type, activation_type
        self.input_size, self.target_size = int(input_size), int(target_size)
        self.layer = getattr(layers, layer_type)(num_hidden_units, activation_from_name(activation_type),
                                                 **layer_kwargs)
        self.layer.build(self.input_size)
        with self.name_scope:
            self.output_weights = tf.Variable(
                self.layer.non_square_initializer([num_hidden_units, self.target_size], dtype=tf.float32),
                name='output_weights')
            self.output_biases = tf.Variable(self.layer.bias_initializer([self.target_size], dtype=tf.float32),
                                             name='output_biases')

    def get_initial_states(self, batch_size):
        return self.layer.get_initial_states(batch_size)

    def __call__(self, inputs, initial_states=None):
        """inputs `[batch_size, length, input_size]` -> predictions `[batch_size, length, target_size]`
        (logits for the classification models) and the layer's final states."""
        inputs = tf.convert_to_tensor(inputs, tf.float32)
        if inputs.shape.rank != 3 or inputs.shape[-1] != self.input_size:
            raise ValueError(f'inputs must have shape [batch_size, length, {self.input_size}]; '
                             f'got shape {inputs.shape}.')
        outputs, final_states = self.layer(inputs, initial_states)
        predictions = tf.tensordot(outputs, self.output_weights, axes=1) + self.output_biases
        return predictions, final_states

    def step_losses(self, predictions, targets):
        """The loss of each step, `[batch_size, length]`; targets hold no NaN here."""
        raise NotImplementedError

    def losses(self, predictions, targets):
        """A dict of losses; see the module docstring and the README for their definitions."""
        targets = tf.convert_to_tensor(targets, tf.float32)
        if targets.shape.rank != 3 or targets.shape[-1] != self.target_size:
            raise ValueError(f'targets must have shape [batch_size, length, {self.target_size}]; '
                             f'got shape {targets.shape}.')
        has_target = tf.logical_not(tf.reduce_any(tf.math.is_nan(targets), axis=-1))
        mask = tf.cast(has_target, tf.float32)
        clean_targets = tf.where(has_target[..., None], targets, tf.zeros_like(targets))
        step_losses = self.step_losses(predictions, clean_targets) * mask

        num_valid_steps_per_seq = tf.reduce_sum(mask, axis=1)
        num_valid_steps = tf.reduce_sum(num_valid_steps_per_seq)
        num_valid_seqs = tf.reduce_sum(tf.cast(num_valid_steps_per_seq > 0, tf.float32))
        seq_losses = tf.reduce_sum(step_losses, axis=1) / tf.maximum(num_valid_steps_per_seq, 1.0)
        stepwise_loss = tf.reduce_sum(step_losses) / tf.maximum(num_valid_steps, 1.0)
        seqwise_loss = tf.reduce_sum(seq_losses) / tf.maximum(num_valid_seqs, 1.0)
        out = {
            'stepwise_loss': stepwise_loss,
            'seqwise_loss': seqwise_loss,
            'stepwise_loss_for_opt': stepwise_loss * num_valid_seqs,
            'seqwise_loss_for_opt': seqwise_loss * num_valid_seqs,
            'seq_losses': seq_losses,
            'num_valid_seqs': num_valid_seqs,
            'num_valid_steps': num_valid_steps,
        }
        out.update(self.extra_losses(predictions, clean_targets, mask, num_valid_steps))
        return out

    def extra_losses(self, predictions, targets, mask, num_valid_steps):
        return {}


class RNNClassificationModel(RNNModel):
    """Softmax cross-entropy against one-hot targets; also reports `error_rate`."""

    def step_losses(self, predictions, targets):
        return tf.nn.softmax_cross_entropy_with_logits(labels=targets, logits=predictions)

    def extra_losses(self, predictions, targets, mask, num_valid_steps):
        errors = tf.cast(tf.not_equal(tf.argmax(predictions, -1), tf.argmax(targets, -1)), tf.float32)
        return {'error_rate': tf.reduce_sum(errors * mask) / tf.maximum(num_valid_steps, 1.0)}


class RNNRegressionModel(RNNModel):
    """Squared error summed over the target dimensions."""

    def step_losses(self, predictions, targets):
        return tf.reduce_sum(tf.square(predictions - targets), axis=-1)


class RNNMultiLabelClassificationModel(RNNModel):
    """Sigmoid cross-entropy summed over the labels."""

    def step_losses(self, predictions, targets):
        return tf.reduce_sum(tf.nn.sigmoid_cross_entropy_with_logits(labels=targets, logits=predictions), axis=-1)
