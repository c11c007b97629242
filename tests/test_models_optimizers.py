"""Models' losses on hand-built batches, optimizers against closed-form updates, checkpoints, XLA."""

import numpy as np
import pytest
import tensorflow as tf

import models
import optimizers

nan = np.nan


def test_classification_losses_by_hand():
    model = models.RNNClassificationModel('SimpleLayer', 1, 2, 3)
    # Logits chosen so that each step's cross-entropy is easy to write down.
    predictions = np.zeros([3, 2, 2], np.float32)
    predictions[0, 0] = [np.log(3.0), 0.0]  # p = [0.75, 0.25]
    predictions[0, 1] = [0.0, 0.0]          # p = [0.5, 0.5]
    predictions[1, 1] = [0.0, np.log(4.0)]  # p = [0.2, 0.8]
    targets = np.array([[[1, 0], [0, 1]],          # two steps: -log .75, -log .5; argmax right, then tie -> 0
                        [[nan, nan], [1, 0]],      # one step: -log .2, wrong
                        [[nan, nan], [nan, 0]]],   # no target at all
                       np.float32)
    out = model.losses(predictions, targets)
    step_losses = [-np.log(0.75), -np.log(0.5), -np.log(0.2)]
    seq_losses = [(step_losses[0] + step_losses[1]) / 2, step_losses[2], 0.0]
    np.testing.assert_allclose(out['stepwise_loss'], np.mean(step_losses), rtol=1e-6)
    np.testing.assert_allclose(out['seqwise_loss'], (seq_losses[0] + seq_losses[1]) / 2, rtol=1e-6)
    np.testing.assert_allclose(out['stepwise_loss_for_opt'], 2 * np.mean(step_losses), rtol=1e-6)
    np.testing.assert_allclose(out['seqwise_loss_for_opt'], seq_losses[0] + seq_losses[1], rtol=1e-6)
    np.testing.assert_allclose(out['seq_losses'], seq_losses, rtol=1e-6)
    assert float(out['num_valid_seqs']) == 2.0
    # Errors: step (0,0) right, (0,1) argmax 0 vs target 1 wrong, (1,1) wrong -> 2 of 3.
    np.testing.assert_allclose(out['error_rate'], 2 / 3, rtol=1e-6)


def test_regression_and_multilabel_losses_by_hand():
    regression = models.RNNRegressionModel('SimpleLayer', 1, 2, 3)
    predictions = np.array([[[1, 2], [0, 0]], [[3, 3], [1, 1]]], np.float32)
    targets = np.array([[[0, 0], [nan, nan]], [[1, 1], [1, 3]]], np.float32)
    out = regression.losses(predictions, targets)
    step_losses = [1 + 4, 4 + 4, 0 + 4]  # Summed over the two target dimensions.
    np.testing.assert_allclose(out['stepwise_loss'], np.mean(step_losses), rtol=1e-6)
    np.testing.assert_allclose(out['seqwise_loss'], (5 + 6) / 2, rtol=1e-6)
    assert 'error_rate' not in out

    multilabel = models.RNNMultiLabelClassificationModel('SimpleLayer', 1, 2, 3)
    predictions = np.array([[[0, np.log(3.0)]]], np.float32)
    targets = np.array([[[1, 0]]], np.float32)
    # -log sigmoid(0) - log(1 - sigmoid(log 3)) = log 2 + log 4
    np.testing.assert_allclose(multilabel.losses(predictions, targets)['stepwise_loss'], np.log(2) + np.log(4),
                               rtol=1e-6)


def test_model_errors_name_the_problem():
    with pytest.raises(ValueError, match="Unknown layer_type 'LSTM'.*MISTLayer"):
        models.RNNClassificationModel('LSTM', 1, 2, 3)
    with pytest.raises(ValueError, match="Unknown activation_type 'tanhh'.*tanh"):
        models.RNNClassificationModel('MISTLayer', 1, 2, 3, 'tanhh')
    model = models.RNNClassificationModel('GRULayer', 2, 3, 4)
    with pytest.raises(ValueError, match=r'\[batch_size, length, 2\]'):
        model(np.zeros([1, 5, 3], np.float32))
    with pytest.raises(ValueError, match='targets'):
        model.losses(np.zeros([1, 5, 3], np.float32), np.zeros([1, 5, 2], np.float32))


def test_clip_rescales_only_above_threshold():
    variables = [tf.Variable([0.0, 0.0]), tf.Variable([0.0])]
    gradients = [tf.constant([3.0, 0.0]), tf.constant([4.0])]  # Global norm 5.
    clipped = optimizers.clip(zip(gradients, variables), 1.0)
    np.testing.assert_allclose(clipped[0][0], [0.6, 0.0], rtol=1e-6)
    np.testing.assert_allclose(clipped[1][0], [0.8], rtol=1e-6)
    untouched = optimizers.clip(zip(gradients, variables), 10.0)
    np.testing.assert_allclose(untouched[0][0], [3.0, 0.0])
    np.testing.assert_allclose(untouched[1][0], [4.0])


def test_two_steps_equal_closed_form():
    g1, g2 = np.array([0.3, -0.4]), np.array([6.0, 8.0])  # Norms 0.5 (kept) and 10 (rescaled to 1).
    g2_clipped = g2 / 10.0
    theta0 = np.array([1.0, 2.0])
    sgd_variable, momentum_variable = tf.Variable(theta0), tf.Variable(theta0)
    sgd = optimizers.ClippingGradientDescentOptimizer(0.1)
    momentum = optimizers.ClippingMomentumOptimizer(0.1, momentum=0.9)
    for gradient in (g1, g2):
        sgd.apply_gradients([(tf.constant(gradient), sgd_variable)])
        momentum.apply_gradients([(tf.constant(gradient), momentum_variable)])
    np.testing.assert_allclose(sgd_variable, theta0 - 0.1 * g1 - 0.1 * g2_clipped)
    v1 = g1
    v2 = 0.9 * v1 + g2_clipped
    np.testing.assert_allclose(momentum_variable, theta0 - 0.1 * v1 - 0.1 * v2)


MODEL_CLASSES = [models.RNNClassificationModel, models.RNNRegressionModel, models.RNNMultiLabelClassificationModel]


def make_train_step(model, optimizer, loss='stepwise_loss_for_opt'):
    variables = model.trainable_variables

    @tf.function(jit_compile=True)
    def train_step(inputs, targets):
        with tf.GradientTape() as tape:
            predictions, _ = model(inputs)
            losses = model.losses(predictions, targets)
        optimizer.apply_gradients(zip(tape.gradient(losses[loss], variables), variables))
        return losses['stepwise_loss']
    return train_step


def batch(target_size, rng, length=6):
    inputs = rng.standard_normal([4, length, 2]).astype(np.float32)
    targets = (rng.random([4, length, target_size]) > 0.5).astype(np.float32)
    targets[:, :2] = np.nan  # No targets at the first steps.
    return inputs, targets


@pytest.mark.parametrize('layer_type', models.LAYER_TYPES)
@pytest.mark.parametrize('model_class', MODEL_CLASSES)
def test_train_step_compiles_with_xla_and_learns(layer_type, model_class):
    tf.random.set_seed(0)
    kwargs = {'pre_act_mixture_delays': [1, 2, 4]} if layer_type == 'MISTLayer' else {}
    model = model_class(layer_type, 2, 3, 8, 'tanh', **kwargs)
    optimizer = optimizers.ClippingMomentumOptimizer(0.05)
    optimizer.build(model.trainable_variables)
    train_step = make_train_step(model, optimizer)
    inputs, targets = batch(3, np.random.default_rng(0))
    losses = [float(train_step(inputs, targets)) for _ in range(15)]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert train_step.experimental_get_tracing_count() == 1


def test_checkpoint_round_trip_gives_same_predictions_and_next_update(tmp_path):
    rng = np.random.default_rng(1)
    inputs, targets = batch(3, rng)

    def build():
        model = models.RNNClassificationModel('MISTLayer', 2, 3, 8, pre_act_mixture_delays=[1, 2, 4])
        optimizer = optimizers.ClippingMomentumOptimizer(0.1)
        optimizer.build(model.trainable_variables)
        return model, optimizer

    tf.random.set_seed(1)
    model, optimizer = build()
    train_step = make_train_step(model, optimizer)
    for _ in range(3):
        train_step(inputs, targets)
    path = tf.train.Checkpoint(model=model, optimizer=optimizer).save(str(tmp_path / 'checkpoint'))
    tf.random.set_seed(99)
    restored_model, restored_optimizer = build()
    tf.train.Checkpoint(model=restored_model, optimizer=restored_optimizer).restore(path).assert_consumed()
    np.testing.assert_array_equal(model(inputs)[0], restored_model(inputs)[0])
    train_step(inputs, targets)
    make_train_step(restored_model, restored_optimizer)(inputs, targets)
    for original, restored in zip(list(model.trainable_variables) + list(optimizer.velocities),
                                  list(restored_model.trainable_variables) + list(restored_optimizer.velocities)):
        np.testing.assert_allclose(original, restored, rtol=1e-6, atol=1e-7)
