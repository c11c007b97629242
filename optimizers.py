"""Gradient descent and momentum with global-norm gradient rescaling ("clipping").

When the global norm of all gradients exceeds `max_global_norm`, every gradient is scaled by
`max_global_norm / global_norm` (Pascanu et al., 2013); otherwise they are left untouched.
Momentum follows TensorFlow 1's MomentumOptimizer: v = momentum * v + g; theta -= learning_rate * v.
"""

import tensorflow as tf


def clip(grads_and_vars, max_global_norm):
    """Rescales the gradients of `[(gradient, variable), ...]` to a global norm of at most
    `max_global_norm`. Pairs whose gradient is None are dropped."""
    grads_and_vars = [(gradient, variable) for gradient, variable in grads_and_vars if gradient is not None]
    gradients = [tf.convert_to_tensor(gradient) for gradient, _ in grads_and_vars]
    global_norm = tf.linalg.global_norm(gradients)
    scale = tf.where(global_norm > max_global_norm, max_global_norm / global_norm, 1.0)
    return [(gradient * scale, variable) for gradient, (_, variable) in zip(gradients, grads_and_vars)]


class ClippingGradientDescentOptimizer(tf.Module):
    """theta -= learning_rate * rescaled gradient."""

    def __init__(self, learning_rate, max_global_norm=1.0, name=None):
        super().__init__(name=name)
        if not learning_rate > 0 or not max_global_norm > 0:
            raise ValueError(f'learning_rate and max_global_norm must be positive; '
                             f'got {learning_rate!r} and {max_global_norm!r}.')
        self.learning_rate = float(learning_rate)
        self.max_global_norm = float(max_global_norm)

    def build(self, variables):
        """Creates the optimizer's state for `variables`; called by the first apply_gradients."""

    def apply_gradients(self, grads_and_vars):
        grads_and_vars = clip(grads_and_vars, self.max_global_norm)
        self.build([variable for _, variable in grads_and_vars])
        for gradient, variable in grads_and_vars:
            self._update(gradient, variable)

    def _update(self, gradient, variable):
        variable.assign_sub(self.learning_rate * gradient)


class ClippingMomentumOptimizer(ClippingGradientDescentOptimizer):
    """v = momentum * v + rescaled gradient; theta -= learning_rate * v.

    The velocities are checkpointed in the order of the variables given to `build`; build with
    the model's `trainable_variables` before restoring a checkpoint.
    """

    def __init__(self, learning_rate, momentum=0.9, max_global_norm=1.0, name=None):
        super().__init__(learning_rate, max_global_norm, name=name)
        self.momentum = float(momentum)
        self.velocities = []
        self._velocity_index = {}

    def build(self, variables):
        for variable in variables:
            if variable.ref() not in self._velocity_index:
                self._velocity_index[variable.ref()] = len(self.velocities)
                with tf.init_scope():
                    self.velocities.append(tf.Variable(tf.zeros_like(variable), trainable=False,
                                                       name=variable.name.split(':')[0] + '_velocity'))

    def _update(self, gradient, variable):
        velocity = self.velocities[self._velocity_index[variable.ref()]]
        velocity.assign(self.momentum * velocity + gradient)
        variable.assign_sub(self.learning_rate * velocity)
