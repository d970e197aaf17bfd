"""Real Keras 2.0.8 (Theano) files: what a user who saved with Keras 2.0.x holds.

Run inside Keras 2.0.8 (Theano): `opy k2 tests/weights/keras2_real/generate.py tests/weights/keras2_real`.
Every case is a small model whose weights are all set to different random values, saved with
save_weights and save, with a fixed input and Keras 2.0.8's own prediction; facts.json lists each
layer's stored weight names and shapes.
"""
import json, os, sys
import numpy as np
from keras.models import Sequential
from keras.layers import (Dense, Conv1D, Conv2D, Conv2DTranspose, MaxPooling2D, Flatten, BatchNormalization,
                          Embedding, GlobalMaxPooling1D, LSTM, GRU, SimpleRNN, Bidirectional, TimeDistributed)
OUT = sys.argv[1]
only = sys.argv[2:]
rng = np.random.RandomState(0)


def conv_dense(fmt):
    shp = (2, 8, 8) if fmt == "channels_first" else (8, 8, 2)
    axis = 1 if fmt == "channels_first" else -1
    return Sequential([
        Conv2D(3, (3, 3), data_format=fmt, input_shape=shp, activation="relu"),
        BatchNormalization(axis=axis),
        MaxPooling2D((2, 2), data_format=fmt),
        Conv2D(4, (2, 3), padding="same", data_format=fmt, use_bias=False),
        Flatten(),
        Dense(5, activation="tanh"),
        Dense(3),
    ]), ("f", shp)


def cases():
    yield "conv_dense_th", lambda: conv_dense("channels_first")
    yield "conv_dense_tf", lambda: conv_dense("channels_last")
    yield "conv1d", lambda: (Sequential([Embedding(10, 4, input_length=9), Conv1D(3, 3, activation="relu"),
                                         GlobalMaxPooling1D(), Dense(2)]), ("int", (9,), 10))
    yield "deconv_th", lambda: (Sequential([Conv2DTranspose(2, (3, 3), strides=(2, 2), data_format="channels_first",
                                                            input_shape=(3, 4, 4)), Flatten(), Dense(2)]),
                                ("f", (3, 4, 4)))
    yield "deconv_tf", lambda: (Sequential([Conv2DTranspose(2, (3, 3), data_format="channels_last",
                                                            input_shape=(4, 4, 3))]), ("f", (4, 4, 3)))
    yield "recurrent", lambda: (Sequential([LSTM(3, return_sequences=True, input_shape=(5, 4)),
                                            GRU(3, return_sequences=True), SimpleRNN(2)]), ("f", (5, 4)))
    yield "wrappers", lambda: (Sequential([TimeDistributed(Dense(3), input_shape=(5, 4)),
                                           Bidirectional(LSTM(2, return_sequences=True)),
                                           Bidirectional(GRU(2), merge_mode="sum")]), ("f", (5, 4)))


facts = {}
for name, build in cases():
    if only and name not in only:
        continue
    model, spec = build()
    ws = model.get_weights()
    new = [rng.uniform(-1, 1, w.shape).astype("float32") for w in ws]
    for i, l in enumerate(model.layers):
        if isinstance(l, BatchNormalization):  # moving_variance must stay positive
            k = sum(len(q.get_weights()) for q in model.layers[:i]) + 3
            new[k] = np.abs(new[k]) + 0.1
    model.set_weights(new)
    if spec[0] == "int":
        x = rng.randint(0, spec[2], (2,) + spec[1]).astype("int32")
    else:
        x = rng.uniform(-2, 2, (2,) + spec[1]).astype("float32")
    y = model.predict(x)
    model.save_weights(os.path.join(OUT, name + "_weights.h5"))
    model.compile("sgd", "mse")
    model.save(os.path.join(OUT, name + "_model.h5"))
    np.save(os.path.join(OUT, name + "_input.npy"), x)
    np.save(os.path.join(OUT, name + "_pred.npy"), y)
    layers = [{"class": l.__class__.__name__, "name": l.name,
               "weights": [(w.name, list(map(int, w.get_value().shape))) for w in l.weights]} for l in model.layers]
    facts[name] = layers
    print(name, json.dumps(layers), flush=True)
json.dump(facts, open(os.path.join(OUT, "facts.json"), "w"), indent=1, sort_keys=True)
