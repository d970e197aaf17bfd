"""Real Keras 1.2.2 files for the recurrent, embedding, PReLU and wrapper weight families.

Run inside Keras 1.2.2 (Theano): `opy k1 tests/weights/keras1_real/generate.py tests/weights/keras1_real`.
Every case is a small model whose weights are all set to different random values (so a swapped gate or
a wrong slice cannot pass), saved with save_weights and save, with a fixed input and Keras 1.2.2's own
prediction; facts.json lists each layer's stored weight names and shapes.
"""
import json, os, sys
import numpy as np
from keras.models import Sequential
from keras.layers import (Dense, Embedding, SimpleRNN, GRU, LSTM, ConvLSTM2D, BatchNormalization,
                          TimeDistributed, Bidirectional, Convolution2D)
from keras.layers.advanced_activations import PReLU
OUT = sys.argv[1]
only = sys.argv[2:]
rng = np.random.RandomState(0)

def cases():
    yield "embedding", lambda: Sequential([Embedding(10, 4, input_length=5)]), ("int", (5,), 10)
    yield "simple_rnn", lambda: Sequential([SimpleRNN(3, input_dim=4, input_length=5, return_sequences=True)]), ("f", (5, 4))
    for cl in ("cpu", "mem", "gpu"):
        yield "gru_" + cl, lambda cl=cl: Sequential([GRU(3, input_dim=4, input_length=5, consume_less=cl, return_sequences=True)]), ("f", (5, 4))
        yield "lstm_" + cl, lambda cl=cl: Sequential([LSTM(3, input_dim=4, input_length=5, consume_less=cl, return_sequences=True)]), ("f", (5, 4))
    yield "lstm_sigmoid", lambda: Sequential([LSTM(3, input_dim=4, input_length=5, inner_activation='sigmoid')]), ("f", (5, 4))
    yield "gru_sigmoid", lambda: Sequential([GRU(3, input_dim=4, input_length=5, inner_activation='sigmoid')]), ("f", (5, 4))
    yield "simple_rnn_gpu", lambda: Sequential([SimpleRNN(3, input_dim=4, input_length=5, consume_less='gpu')]), ("f", (5, 4))
    for do in ("th", "tf"):
        shp = (3, 2, 6, 6) if do == "th" else (3, 6, 6, 2)
        yield "convlstm_" + do, lambda do=do, shp=shp: Sequential([ConvLSTM2D(4, 3, 3, dim_ordering=do, border_mode='same', return_sequences=True, input_shape=shp)]), ("f", shp)
        yield "convlstm_valid_" + do, lambda do=do, shp=shp: Sequential([ConvLSTM2D(2, 3, 2, dim_ordering=do, border_mode='valid', input_shape=shp)]), ("f", shp)
    yield "bn_mode2", lambda: Sequential([BatchNormalization(mode=2, input_shape=(5,))]), ("f", (5,))
    yield "prelu_dense", lambda: Sequential([Dense(4, input_dim=3), PReLU()]), ("f", (3,))
    yield "prelu_th", lambda: Sequential([Convolution2D(3, 3, 3, dim_ordering='th', input_shape=(2, 5, 5)), PReLU()]), ("f", (2, 5, 5))
    yield "prelu_tf", lambda: Sequential([Convolution2D(3, 3, 3, dim_ordering='tf', input_shape=(5, 5, 2)), PReLU()]), ("f", (5, 5, 2))
    yield "prelu_shared", lambda: Sequential([Dense(4, input_dim=3), PReLU()]), ("f", (3,))
    yield "td_dense", lambda: Sequential([TimeDistributed(Dense(3), input_shape=(5, 4))]), ("f", (5, 4))
    yield "td_conv", lambda: Sequential([TimeDistributed(Convolution2D(2, 3, 3, dim_ordering='th'), input_shape=(3, 2, 5, 5))]), ("f", (3, 2, 5, 5))
    for mm in ("concat", "sum", "ave", "mul"):
        yield "bidi_lstm_" + mm, lambda mm=mm: Sequential([Bidirectional(LSTM(3, return_sequences=True), merge_mode=mm, input_shape=(5, 4))]), ("f", (5, 4))
    yield "bidi_gru", lambda: Sequential([Bidirectional(GRU(3), input_shape=(5, 4))]), ("f", (5, 4))
    yield "bidi_srnn", lambda: Sequential([Bidirectional(SimpleRNN(3), input_shape=(5, 4))]), ("f", (5, 4))
    yield "lstm_backwards_relu", lambda: Sequential([LSTM(3, input_dim=4, input_length=5, go_backwards=True, activation='relu', return_sequences=True)]), ("f", (5, 4))
    yield "gru_backwards", lambda: Sequential([GRU(3, input_dim=4, input_length=5, go_backwards=True, return_sequences=True)]), ("f", (5, 4))
    yield "convlstm_valid3_tf", lambda: Sequential([ConvLSTM2D(2, 3, 3, dim_ordering='tf', border_mode='valid', return_sequences=True, input_shape=(3, 6, 6, 2))]), ("f", (3, 6, 6, 2))
    yield "bidi_lstm_last", lambda: Sequential([Bidirectional(LSTM(3), merge_mode='concat', input_shape=(5, 4))]), ("f", (5, 4))
    yield "embedding_lstm", lambda: Sequential([Embedding(10, 4, input_length=5), LSTM(3)]), ("int", (5,), 10)
    yield "td_lstm", lambda: Sequential([TimeDistributed(Dense(2), input_shape=(5, 4)), LSTM(3)]), ("f", (5, 4))

facts = {}
for name, build, spec in cases():
    if only and name not in only:
        continue
    model = build()
    ws = model.get_weights()
    new = [rng.uniform(-1, 1, w.shape).astype('float32') for w in ws]
    if name.startswith("bn_"):  # running_std holds a variance: keep it positive
        new[3] = np.abs(new[3]) + 0.1
    model.set_weights(new)
    if spec[0] == "int":
        x = rng.randint(0, spec[2], (2,) + spec[1]).astype('int32')
    else:
        x = rng.uniform(-2, 2, (2,) + spec[1]).astype('float32')
    y = model.predict(x)
    model.save_weights(os.path.join(OUT, name + "_weights.h5"))
    model.compile('sgd', 'mse')
    model.save(os.path.join(OUT, name + "_model.h5"))
    np.save(os.path.join(OUT, name + "_input.npy"), x)
    np.save(os.path.join(OUT, name + "_pred.npy"), y)
    layers = []
    for l in model.layers:
        layers.append({"class": l.__class__.__name__, "name": l.name,
                       "weights": [(w.name, list(map(int, w.get_value().shape))) for w in l.weights]})
    facts[name] = layers
    print(name, json.dumps(layers), flush=True)
json.dump(facts, open(os.path.join(OUT, "facts.json"), "w"), indent=1, sort_keys=True)
