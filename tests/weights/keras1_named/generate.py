"""Real Keras 1.2.2 weights-only files whose layers the user named (not Keras 1 default names).

Run inside Keras 1.2.2 (Theano): `opy k1 tests/weights/keras1_named/generate.py tests/weights/keras1_named`.
Each case is a small model with every weight set to a different random value, saved with save_weights
(the only file such a user may hold), a fixed input and Keras 1.2.2's own prediction; facts.json lists
each layer's stored weight names and shapes.
"""
import json, os, sys
import numpy as np
from keras.models import Sequential
from keras.layers import (Dense, Embedding, SimpleRNN, GRU, LSTM, BatchNormalization, Convolution1D,
                          Convolution2D, MaxPooling2D, Flatten, TimeDistributed, Bidirectional)
from keras.layers.advanced_activations import PReLU
OUT = sys.argv[1]
only = sys.argv[2:]
rng = np.random.RandomState(1)


def cnn(do, conv_b_bias):
    shp = (2, 8, 8) if do == "th" else (8, 8, 2)
    return Sequential([
        Convolution2D(4, 3, 3, dim_ordering=do, name="conv_a", input_shape=shp),
        BatchNormalization(axis=1 if do == "th" else -1, name="bn_a"),
        MaxPooling2D(dim_ordering=do, name="pool"),
        Convolution2D(3, 2, 2, dim_ordering=do, name="conv_b", bias=conv_b_bias),
        Flatten(name="flat"),
        Dense(5, name="fc1"),
        PReLU(name="act"),
        Dense(3, name="logits"),
    ]), ("f", shp)


def cases():
    yield "cnn_th", lambda: cnn("th", False)
    yield "cnn_tf", lambda: cnn("tf", True)
    yield "rnn", lambda: (Sequential([Embedding(10, 4, input_length=5, name="emb"),
                                      LSTM(3, name="enc", return_sequences=True),
                                      GRU(3, name="dec", return_sequences=True, consume_less="gpu"),
                                      SimpleRNN(2, name="head")]), ("int", (5,), 10))
    yield "wrappers", lambda: (Sequential([TimeDistributed(Dense(3, name="proj"), name="td", input_shape=(5, 4)),
                                           Bidirectional(LSTM(2, name="enc", return_sequences=True), name="bi"),
                                           Bidirectional(GRU(2), name="bi_gru")]), ("f", (5, 4)))
    yield "bn_mode2", lambda: (Sequential([Convolution2D(3, 3, 3, dim_ordering="th", name="c", input_shape=(2, 6, 6)),
                                           BatchNormalization(mode=2, axis=1, name="norm"),
                                           Flatten(name="flat"), Dense(2, name="out")]), ("f", (2, 6, 6)))
    yield "conv1d", lambda: (Sequential([Convolution1D(3, 3, name="c1", input_shape=(9, 4)), Flatten(name="f"),
                                         Dense(2, name="out")]), ("f", (9, 4)))


facts = {}
for name, build in cases():
    if only and name not in only:
        continue
    model, spec = build()
    new = []
    for l in model.layers:
        for w in l.weights:
            a = rng.uniform(-1, 1, w.get_value().shape).astype("float32")
            if w.name.endswith("_running_std"):  # it holds a variance: keep it positive
                a = np.abs(a) + 0.1
            new.append(a)
    model.set_weights(new)
    if spec[0] == "int":
        x = rng.randint(0, spec[2], (4,) + spec[1]).astype("int32")
    else:
        x = rng.uniform(-2, 2, (4,) + spec[1]).astype("float32")
    y = model.predict(x)
    model.save_weights(os.path.join(OUT, name + "_weights.h5"))
    np.save(os.path.join(OUT, name + "_input.npy"), x)
    np.save(os.path.join(OUT, name + "_pred.npy"), y)
    layers = [{"class": l.__class__.__name__, "name": l.name,
               "weights": [(w.name, list(map(int, w.get_value().shape))) for w in l.weights]} for l in model.layers]
    facts[name] = layers
    print(name, json.dumps(layers), flush=True)
json.dump(facts, open(os.path.join(OUT, "facts.json"), "w"), indent=1, sort_keys=True)
