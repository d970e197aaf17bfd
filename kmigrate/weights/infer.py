"""A weights-only file's layer classes: from Keras 1 default names, the stored arrays, --class answers, or the
migrated model given as data (--template); nothing of the user's code is imported or run."""

from __future__ import annotations

import json
import re
import zipfile
from typing import Any

from kmigrate.weights import families
from kmigrate.weights.entries import Entry
from kmigrate.weights.h5io import BadInput, K1File, K1Layer
from kmigrate.weights.keras2 import keras1_class, keras1_config, keras1_rule, reset_after_refused
from kmigrate.weights.layer import Settings
from kmigrate.weights.naming import class_from_name

TEMPLATE_BYTES = 64 << 20  # a model config larger than this is not a model config
WRAPPERS = ("Bidirectional", "TimeDistributed")
MODELS = ("Sequential", "Functional", "Model")


def _class_of(family_name: str) -> str:
    """The Keras 1 class a family's first rule names first (`conv` -> Convolution2D)."""
    from kmigrate.spec.loader import default_ruleset

    rule = next(r for r in default_ruleset().of_kind("layer") if r.weights == family_name)
    return next(iter(rule.names))


def _stem(name: str) -> str:
    return re.sub(r":\d+$", "", name)


def _split(stems: list[str], suffixes: tuple[str, ...]) -> str | None:
    """The common prefix when the stems are `{prefix}_{suffix}` for the suffixes in order, else None."""
    if len(stems) != len(suffixes):
        return None
    prefixes = {s[: -len(x) - 1] for s, x in zip(stems, suffixes) if s.endswith("_" + x)}
    if len(prefixes) != 1 or sum(s.endswith("_" + x) for s, x in zip(stems, suffixes)) != len(stems):
        return None
    return prefixes.pop()


def classify(layer: str, stems: list[str], shapes: list[tuple[int, ...]]) -> tuple[str, str, str]:
    """(Keras 1 class, the stored names' common prefix, why) from the stored names and shapes; a
    BadInput names the option to pass when the arrays fit two classes that convert differently."""
    reg = families.REGISTRY
    for fam in ("lstm", "gru"):  # Keras 1's per-gate triples (consume_less 'cpu'/'mem')
        prefix = _split(stems, reg[fam].per_gate)
        if prefix is not None:
            if fam == "lstm" and len(shapes[0]) == 4:
                return _class_of("conv_lstm2d"), prefix, "12 per-gate arrays with 4-D kernels"
            return _class_of(fam), prefix, f"{len(stems)} per-gate arrays"
    for fam in ("batchnorm", "separable", "prelu"):  # suffixes only one family stored
        f = reg[fam]
        for n in range(f.required, len(f.stored) + 1):
            prefix = _split(stems, f.stored[:n])
            if prefix is not None:
                return _class_of(fam), prefix, "_" + ", _".join(f.stored[:n])
    prefix = _split(stems, ("W", "U", "b"))
    if prefix is not None:  # one triple: SimpleRNN, or LSTM / GRU with consume_less='gpu' (gates joined)
        u = shapes[1]
        gates = u[1] // u[0] if len(u) == 2 and u[0] else 0
        fam = {1: "simple_rnn", 3: "gru", 4: "lstm"}.get(gates) if u[1] == gates * u[0] else None
        if fam is None:
            raise BadInput(f"arrays _W, _U, _b with U {u} fit no recurrent layer", layer)
        return _class_of(fam), prefix, f"_W, _U, _b with {gates} gate(s) of {u[0]} units"
    for suffixes in (("W", "b"), ("W",)):
        prefix = _split(stems, suffixes)
        if prefix is None:
            continue
        w, b = shapes[0], (shapes[1] if len(shapes) > 1 else None)
        if len(w) == 2:
            if b is not None:
                return _class_of("dense"), prefix, "2-D _W and _b"
            raise BadInput(f"a single 2-D array _W {w} is a Dense without bias or an Embedding: pass "
                           f"--class {layer}=Dense or --class {layer}=Embedding (or --template NEW_MODEL.keras)",
                           layer)
        if len(w) == 4 and w[1] == 1 and (b is None or b[0] == w[3]):
            return _class_of("conv1d"), prefix, ("4-D _W in Keras 1.1+'s Convolution1D layout (length, 1, in, out); "
                                                 f"for a Convolution2D with a (n, 1) kernel pass --class {layer}="
                                                 "Convolution2D")
        if len(w) == 4:
            return _class_of("conv"), prefix, (f"4-D _W: a convolution (a Deconvolution2D stores the same shapes: "
                                               f"then pass --class {layer}=Deconvolution2D)")
        if len(w) == 5:
            return "Convolution3D", prefix, "5-D _W"
        raise BadInput(f"a {len(w)}-D array _W {w} fits no layer kmigrate converts (LocallyConnected layers "
                       "are not converted)", layer)
    raise BadInput(f"stored names {stems} are not the ones any Keras 1 layer wrote; pass --class {layer}=CLASS "
                   "or --template NEW_MODEL.keras", layer)


def infer_layer(layer: K1Layer) -> tuple[str, dict[str, Any], str]:
    """(Keras 1 class, config view, why) of a weighted layer whose name is not a Keras 1 default."""
    stems = [_stem(w.name) for w in layer.weights]
    shapes = [w.shape for w in layer.weights]
    half = len(stems) // 2
    if stems and len(stems) % 2 == 0 and all(s.startswith("forward_") for s in stems[:half]) \
            and all(s.startswith("backward_") for s in stems[half:]):
        inner = [s.removeprefix("forward_") for s in stems[:half]]
        cls, _, why = classify(layer.name, inner, shapes[:half])
        return "Bidirectional", {"layer": {"class_name": cls, "config": None}}, f"forward_/backward_ {why}"
    cls, prefix, why = classify(layer.name, stems, shapes)
    if prefix != layer.name:  # Keras 1 named a wrapped layer's arrays after the inner layer
        return "TimeDistributed", {"layer": {"class_name": cls, "config": None}}, \
            f"arrays named after another layer ({prefix}): a wrapped {cls}"
    return cls, {}, why


def inferred_entries(k1: K1File, settings: Settings) -> tuple[list[Entry], list[str]]:
    """Entries of a weights-only Keras 1 file without a config: --class answers, default names, then the
    stored arrays (a note says what was inferred and why)."""
    _check_classes(k1, settings.classes)
    out, inferred = [], []
    for name in k1.layer_names:
        layer = k1.layers[name]
        cls, config = settings.classes.get(name), {}
        if cls is None:
            cls = class_from_name(name)
        if cls is None and layer.weights:
            cls, config, why = infer_layer(layer)
            inferred.append(f"{name} = {cls} ({why})")
        out.append(Entry(name, cls or "", config, None))
    notes = ["no model config: layer classes come from Keras 1 default names" +
             (", --class" if settings.classes else "") +
             (" and the stored arrays' names and shapes" if inferred else "") +
             ", so strides, padding and input sizes are unknown (verification uses stride 1, 'valid', small inputs)"]
    notes += [f"inferred {i}" for i in inferred]
    return out, notes


def _check_classes(k1: K1File, classes: dict[str, str]) -> None:
    for name, cls in classes.items():
        if name not in k1.layers:
            raise BadInput(f"--class {name}={cls}: the file has no layer {name!r}")
        if families.for_class(cls) is None:
            raise BadInput(f"--class {name}={cls}: not a Keras 1 layer class whose weights kmigrate converts")


# ---------------------------------------------------------------------- --template

def read_template(path: str) -> list[dict[str, Any]]:
    """The weighted layers, in order, of a Keras 3 model given as data: a `.keras` archive (its config.json)
    or `model.to_json()` text. The archive's code and weights are never loaded."""
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                info = z.getinfo("config.json")
                if info.file_size > TEMPLATE_BYTES:
                    raise BadInput("config.json is too large for a model config", path=path)
                text = z.read(info).decode("utf8")
        else:
            with open(path, "rb") as fh:
                raw = fh.read(TEMPLATE_BYTES + 1)
            if len(raw) > TEMPLATE_BYTES:
                raise BadInput("too large for a model JSON", path=path)
            text = raw.decode("utf8")
        config = json.loads(text)
    except KeyError:
        raise BadInput("--template: a .keras archive without config.json", path=path) from None
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise BadInput(f"--template: not a .keras archive or model JSON ({str(e).splitlines()[0][:120]})",
                       path=path) from None
    if not isinstance(config, dict) or config.get("class_name") not in MODELS:
        raise BadInput("--template: not a Keras model config (class_name is not Sequential or Functional)",
                       path=path)
    out: list[dict[str, Any]] = []
    _weighted(config, out, path)
    return out


def _weighted(model: dict[str, Any], out: list[dict[str, Any]], path: str) -> None:
    layers = (model.get("config") or {}).get("layers")
    if not isinstance(layers, list):
        raise BadInput("--template: the model config has no layer list", path=path)
    for item in layers:
        if not isinstance(item, dict) or not isinstance(item.get("class_name"), str):
            raise BadInput("--template: a layer entry without class_name", path=path)
        cls = item["class_name"]
        if cls in MODELS:
            _weighted(item, out, path)
        elif _has_weights(cls, item.get("config") or {}):
            out.append(item)


def _has_weights(cls: str, cfg: dict[str, Any]) -> bool:
    if cls in WRAPPERS:
        inner = cfg.get("layer") or {}
        return isinstance(inner, dict) and _has_weights(inner.get("class_name", ""), inner.get("config") or {})
    rule = keras1_rule(cls)
    return rule is not None and rule.weights is not None


def template_entries(k1: K1File, template: list[dict[str, Any]], keep_layout: bool) -> tuple[list[Entry], list[str]]:
    """Entries of a weights-only file matched, weighted layer by weighted layer, to the migrated model's.
    With --to the template's data_format is the target's, so the Keras 1 layout is left to the shapes."""
    weighted = [layer.name for layer in k1.weighted]
    if len(weighted) != len(template):
        raise BadInput(f"--template has {len(template)} layers with weights, the file {len(weighted)}: "
                       "not the same model")
    by_name = dict(zip(weighted, template))
    out = []
    for name in k1.layer_names:
        t = by_name.get(name)
        if t is None:
            out.append(Entry(name, class_from_name(name) or "", {}, None))
            continue
        cls, cfg = t["class_name"], dict(t.get("config") or {})
        reset_after_refused(cls, cfg, "the template's", name)
        view = keras1_config(cls, cfg)
        if not keep_layout:
            view.pop("dim_ordering", None)
        shape = ((t.get("build_config") or {}).get("input_shape"))
        if keep_layout and isinstance(shape, list) and len(shape) > 1 and cls not in WRAPPERS:
            view["batch_input_shape"] = shape
        out.append(Entry(name, keras1_class(cls), view, None, keras2=(cls, cfg)))
    return out, [f"layer classes and configs from --template, matched by the order of the layers with weights "
                 f"({len(template)})"]
