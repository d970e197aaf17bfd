"""Keras 1 training code, rewritten, runs on installed Keras 3 and does what Keras 1 did: the epochs
and batches it trains, the classes it predicts, the learning rate it decays to."""

import numpy as np

import keras  # the test environment installs it: this suite never skips

from kmigrate.rewrite.files import rewrite_source

KERAS1_SCRIPT = '''
import numpy as np
from keras.models import Sequential
from keras.layers.core import Dense, Activation
from keras.optimizers import SGD
from keras.utils import np_utils

rng = np.random.RandomState(0)
X = rng.rand(50, 4).astype('float32')
y = rng.randint(0, 3, size=50)
Y = np_utils.to_categorical(y, nb_classes=3)

model = Sequential()
model.add(Dense(output_dim=3, input_dim=4))
model.add(Activation('softmax'))
sgd = SGD(lr=0.1, decay=0.5, momentum=0.0)
model.compile(loss='categorical_crossentropy', optimizer=sgd, metrics=['accuracy'])

calls = []
def batches(batch_size):
    while True:
        for i in range(0, 50, batch_size):
            calls.append(i)
            yield X[i:i + batch_size], Y[i:i + batch_size]

default_history = model.fit(X, Y, batch_size=25, verbose=0)
history = model.fit(X, Y, batch_size=10, nb_epoch=2, verbose=0)
gen = batches(batch_size=10)
gen_history = model.fit_generator(gen, samples_per_epoch=45, nb_epoch=2, verbose=0)
score = model.evaluate_generator(batches(batch_size=10), val_samples=20)
def inputs(batch_size):
    while True:
        for i in range(0, 50, batch_size):
            yield X[i:i + batch_size]  # Keras 1 took batches of inputs alone
predicted = model.predict_generator(inputs(batch_size=10), val_samples=50)
proba = model.predict_proba(X, verbose=0)
classes = model.predict_classes(X, verbose=0)
'''


def _run(source: str) -> dict:
    new, diags = rewrite_source(source, "train.py")
    assert not [d for d in diags if d.severity.value == "error"], [d.render() for d in diags]
    namespace: dict = {"__name__": "train"}
    exec(compile(new, "train.py", "exec"), namespace)  # trusted test data, rewritten
    return namespace


def test_rewritten_training_script_trains_what_keras1_trained():
    ns = _run(KERAS1_SCRIPT)
    assert ns["Y"].shape == (50, 3)
    assert len(ns["default_history"].epoch) == 10  # Keras 1's fit default: nb_epoch=10
    assert len(ns["history"].epoch) == 2
    assert len(ns["gen_history"].epoch) == 2
    # 45 samples from a generator of 10: Keras 1 drew 5 batches an epoch (ceil(45 / 10)), 2 epochs
    assert len(ns["calls"]) >= 10
    assert ns["gen_history"].params["steps"] == 5
    assert ns["proba"].shape == (50, 3)
    np.testing.assert_allclose(ns["predicted"], ns["proba"], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(ns["classes"], ns["proba"].argmax(axis=-1))


def test_predict_classes_of_one_sigmoid_output_thresholds_at_one_half():
    ns = _run('''
import numpy as np
from keras.models import Sequential
from keras.layers.core import Dense
model = Sequential()
model.add(Dense(1, input_dim=2, activation='sigmoid', init='normal'))
X = np.random.RandomState(1).randn(20, 2).astype('float32') * 4
p = model.predict(X)
c = model.predict_classes(X, verbose=0)
''')
    np.testing.assert_array_equal(ns["c"], (ns["p"] > 0.5).astype("int32"))


def test_sgd_decay_follows_keras1s_schedule():
    """Keras 1: lr / (1 + decay * iterations), iterations counted before each update."""
    ns = _run('''
from keras.optimizers import SGD
sgd = SGD(lr=0.1, decay=0.5)
''')
    sgd = ns["sgd"]
    var = keras.Variable(np.ones(3, dtype="float32"))
    for step in range(4):
        before = var.numpy().copy()
        sgd.apply_gradients([(keras.ops.ones(3), var)])
        np.testing.assert_allclose(before - var.numpy(), 0.1 / (1 + 0.5 * step), rtol=1e-6)


def test_generator_steps_count_batches_of_the_generators_size():
    ns = _run('''
import numpy as np
from keras.models import Sequential
from keras.layers.core import Dense
X = np.zeros((64, 2), 'float32'); Y = np.zeros((64, 1), 'float32')
from keras.callbacks import LambdaCallback
trained = []
def flow(batch_size):
    while True:
        for i in range(0, 64, batch_size):
            yield X[i:i + batch_size], Y[i:i + batch_size]
model = Sequential()
model.add(Dense(1, input_dim=2))
model.compile('sgd', 'mse')
model.fit_generator(flow(batch_size=16), samples_per_epoch=64, nb_epoch=2, verbose=0,
                    callbacks=[LambdaCallback(on_batch_end=lambda batch, logs: trained.append(batch))])
''')
    # a Keras 1 epoch of 64 samples drawn 16 at a time: 4 batches, twice
    assert ns["trained"] == [0, 1, 2, 3, 0, 1, 2, 3]
