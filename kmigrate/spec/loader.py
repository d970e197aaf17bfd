"""Load the TOML rule files in rules/, validate them and build the RuleSet both consumers share."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from kmigrate.spec.model import LAYER_KWARGS, TARGET_LAYER_KWARGS, Rule, ValueMap
from kmigrate.spec import special as special_mod

COMMON_FILE = "_common.toml"
RULE_KEYS = {
    "id", "kind", "summary", "names", "dual", "modules", "signature", "keywords", "defaults", "layer_kwargs",
    "target_params", "positional", "kernel_dims", "value_maps", "pack", "rename", "drop", "refuse",
    "explicit", "special", "include", "weights",
}
GROUP_KEYS = {"rename", "drop", "refuse", "value_maps", "special", "explicit", "target_params"}
MAP_KEYS = {"map", "drop", "keep", "refuse", "warn", "others", "nonliteral", "calls", "option"}
KINDS = {"layer", "method", "function", "module", "json", "removed", "names"}
# What the rewrite prefilter looks for besides keras.json keys (RuleSet.markers): "keras", substrings of
# every Keras-1-only layer spelling and backend function, and the commonest Keras 1 keywords.
MARKERS = (b"keras", b"onvolution", b"AtrousConv", b"Deconv2D", b"ThresholdedReLU", b"dim_ordering",
           b"border_mode", b"output_dim", b"nb_filter", b"nb_epoch")
KERAS3_NAMES = "keras3_names.txt"  # Keras 3's public modules and names (tests/rewrite/keras3_names.py)


class RuleError(ValueError):
    """A rule file is malformed; the message names the file and the rule."""


def rules_dir() -> Path:
    """The rule folder: inside the installed package, else the repository's top-level rules/."""
    here = Path(__file__).resolve().parent.parent
    for candidate in (here / "rules", here.parent / "rules"):
        if (candidate / COMMON_FILE).is_file():
            return candidate
    raise RuleError(f"no rule folder found next to {here}")


@dataclass
class RuleSet:
    rules: list[Rule]
    value_maps: dict[str, ValueMap]
    keras3: frozenset[str] = frozenset()  # Keras 3's public names; modules end in "/"
    by_id: dict[str, Rule] = field(init=False)
    by_name: dict[str, Rule] = field(init=False)
    _memo: dict = field(init=False, default_factory=dict, repr=False, compare=False)  # derived tables

    def __post_init__(self) -> None:
        self.by_id = {r.id: r for r in self.rules}
        self.by_name = {}
        for r in self.rules:
            if r.kind == "layer":
                for n in r.names:
                    self.by_name[n] = r

    def layer_rule(self, class_name: str) -> Rule | None:
        return self.by_name.get(class_name)

    def rule_for(self, module: str, name: str) -> Rule | None:
        """The rule for `name` imported from `module`, if that is where the rule's names live."""
        rule = self.by_name.get(name)
        if rule is None:
            return None
        return rule if module in (rule.modules or self.layer_modules()) else None

    def method_rules(self) -> dict[str, Rule]:
        """Keras 1 model/optimizer method names -> their rule (`fit_generator`, `predict_classes`)."""
        return {n: r for r in self.of_kind("method") for n in r.names}

    def keras1_only(self, spelling: str) -> Rule | None:
        """The rule of a Keras 1 spelling that Keras 3 does not share (`Convolution2D`, `image_dim_ordering`)."""
        rule = self.by_name.get(spelling)
        if rule is not None:
            return None if spelling in rule.dual or rule.names[spelling] == spelling else rule
        for fn in self.of_kind("function"):
            if any(q.rsplit(".", 1)[1] == spelling for q in fn.names):
                return fn
        return None

    def markers(self) -> tuple[bytes, ...]:
        """Byte strings at least one of which every file that needs a rewrite or a report contains:
        code names a Keras module to import anything from it, or uses a Keras 1 name it got elsewhere
        (a vendored copy of Keras: every Keras-1-only layer spelling and backend function contains one
        of MARKERS, which a test holds to); keras.json names its own keys. A few substring tests keep
        the prefilter near the speed of reading the file."""
        found = self._memo.get("markers")
        if found is None:
            every = MARKERS + tuple(k.encode() for r in self.of_kind("json") for k in r.names)
            # a marker that contains another adds nothing (`image_dim_ordering`, `dim_ordering`)
            found = self._memo["markers"] = tuple(dict.fromkeys(
                m for m in every if not any(o != m and o in m for o in every)))
        return found

    def keras1_spellings(self) -> set[str]:
        """Keras 1 layer classes and backend functions that Keras 3 does not share."""
        layers = {n for r in self.rules if r.kind == "layer" and not r.modules
                  and "merge-mode" not in r.special for n in r.names if n[0].isupper() and self.keras1_only(n)}
        return layers | {q.rsplit(".", 1)[1] for r in self.of_kind("function") for q in r.names}

    def moved(self, qualified: str) -> str:
        """`keras.utils.np_utils.x` -> `keras.utils.x`: a qualified name once its module path moves."""
        moved = self.module_map()
        parts = qualified.split(".")
        for i in range(len(parts), 0, -1):
            module = ".".join(parts[:i])
            if module in moved:
                return ".".join([moved[module]] + parts[i:])
        return qualified

    def keras3_lacks(self, qualified: str) -> str | None:
        """Whether Keras 3 lacks a `keras.` name as a Keras 1 file spells it; the Keras 3 spelling it was
        looked up under (after module paths move), or None when Keras 3 has it (or no list is known)."""
        if not self.keras3 or qualified.split(".")[0] != "keras":
            return None
        moved = self.module_map()
        parts = qualified.split(".")
        for i in range(len(parts), 0, -1):  # the longest prefix that is a (Keras 1 or 3) module
            module = ".".join(parts[:i])
            if module in moved or module + "/" in self.keras3:
                module = moved.get(module, module)
                if i == len(parts):
                    return None if module + "/" in self.keras3 else module
                name = f"{module}.{parts[i]}"
                return None if name in self.keras3 or name + "/" in self.keras3 else name
        return qualified

    # The tables below are derived from the rules once and shared: callers only read them.
    def of_kind(self, kind: str) -> list[Rule]:
        found = self._memo.get(("kind", kind))
        if found is None:
            found = self._memo[("kind", kind)] = [r for r in self.rules if r.kind == kind]
        return found

    def module_map(self) -> dict[str, str]:
        found = self._memo.get("module_map")
        if found is None:
            found = self._memo["module_map"] = {}
            for r in self.of_kind("module"):
                found.update(r.names)
        return found

    def layer_modules(self) -> set[str]:
        """Modules a Keras 1 layer class can be imported from."""
        found = self._memo.get("layer_modules")
        if found is None:
            found = self._memo["layer_modules"] = set(self.module_map()) | set(self.module_map().values())
        return found


def _err(file: str, rid: str | None, msg: str) -> RuleError:
    where = f"{file}: rule '{rid}'" if rid else file
    return RuleError(f"{where}: {msg}")


def _tuple(v: Any) -> Any:
    """TOML arrays are lists; Keras literals compare as tuples."""
    if isinstance(v, list):
        return tuple(_tuple(x) for x in v)
    return v


def _load_value_maps(file: str, raw: dict[str, Any]) -> dict[str, ValueMap]:
    maps = {}
    for name, spec in raw.items():
        extra = set(spec) - MAP_KEYS
        if extra:
            raise _err(file, None, f"value map '{name}': unknown keys {sorted(extra)}")
        nonlit = spec.get("nonliteral", "refuse")
        if nonlit not in ("refuse", "pass"):
            raise _err(file, None, f"value map '{name}': nonliteral must be 'refuse' or 'pass'")
        maps[name] = ValueMap(
            name=name,
            mapping=dict(spec.get("map", {})),
            drop=tuple(spec.get("drop", ())),
            keep=tuple(spec.get("keep", ())),
            refuse=dict(spec.get("refuse", {})),
            warn=dict(spec.get("warn", {})),
            others=spec.get("others", "refuse"),
            nonliteral=nonlit,
            calls=tuple(spec.get("calls", ())),
            option=spec.get("option"),
        )
    return maps


def _merge(group: dict[str, Any], rule: dict[str, Any], params: set[str]) -> dict[str, Any]:
    """Group entries first, the rule's own win; a group's per-parameter entries apply only to
    parameters the rule has, and a rule's own target_params replace the group's."""
    out = dict(rule)
    for key, gval in group.items():
        rval = out.get(key)
        if key == "target_params":
            out.setdefault(key, gval)
        elif isinstance(gval, dict):
            gval = {k: v for k, v in gval.items() if k in params}
            out[key] = {**gval, **(rval or {})}
        elif isinstance(gval, list):  # a rule that names a group's entry sets its place in the order
            out[key] = [x for x in gval if x not in (rval or [])] + list(rval or [])
        elif rval is None:
            out[key] = gval
    return out


def load_ruleset(directory: Path | None = None) -> RuleSet:
    """Read every rules/*.toml, resolve includes and validate; raises RuleError naming file and rule."""
    directory = directory or rules_dir()
    common_path = directory / COMMON_FILE
    try:
        common = tomllib.loads(common_path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise _err(COMMON_FILE, None, str(exc)) from None
    value_maps = _load_value_maps(COMMON_FILE, common.get("value_maps", {}))
    groups = common.get("groups", {})
    for gname, g in groups.items():
        extra = set(g) - GROUP_KEYS
        if extra:
            raise _err(COMMON_FILE, None, f"group '{gname}': unknown keys {sorted(extra)}")

    rules: list[Rule] = []
    for path in sorted(directory.glob("*.toml")):
        if path.name == COMMON_FILE:
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise _err(path.name, None, f"not valid TOML: {exc}") from None
        extra = set(data) - {"rule"}
        if extra:
            raise _err(path.name, None, f"unknown top-level keys {sorted(extra)} (expected [[rule]] tables)")
        for raw in data.get("rule", []):
            rules.append(_build_rule(path.name, raw, groups, value_maps))
    _check_set(rules)
    names_path = directory / KERAS3_NAMES
    keras3 = frozenset(line for line in names_path.read_text(encoding="utf-8").splitlines()
                       if line and not line.startswith("#")) if names_path.is_file() else frozenset()
    return RuleSet(rules=rules, value_maps=value_maps, keras3=keras3)


def _build_rule(file: str, raw: dict[str, Any], groups: dict, value_maps: dict[str, ValueMap]) -> Rule:
    rid = raw.get("id")
    if not isinstance(rid, str) or not rid:
        raise _err(file, None, "a [[rule]] has no string 'id'")
    extra = set(raw) - RULE_KEYS
    if extra:
        raise _err(file, rid, f"unknown keys {sorted(extra)}")
    kind = raw.get("kind", "layer")
    if kind not in KINDS:
        raise _err(file, rid, f"kind must be one of {sorted(KINDS)}, not {kind!r}")
    for key in ("summary", "names"):
        if key not in raw:
            raise _err(file, rid, f"missing '{key}'")
    merged = dict(raw)
    params = set(raw.get("signature", ())) | set(raw.get("keywords", ()))
    if raw.get("layer_kwargs", kind == "layer"):
        params.update(LAYER_KWARGS)
    if kind != "layer":
        params.update(raw.get("value_maps", {}))
    includes = list(raw.get("include", []))
    if kind == "layer" and raw.get("layer_kwargs", True):  # a method rule is a call rule without them
        includes.insert(0, "layer")
    for g in reversed(includes):
        if g not in groups:
            raise _err(file, rid, f"includes unknown group '{g}'")
        merged = _merge(groups[g], merged, params)

    # A named function that consumes a parameter replaces what a group said about it.
    for name in merged.get("special", ()):
        fn = special_mod.REGISTRY.get(name)
        for param in getattr(fn, "consumes", ()):
            for key in ("rename", "drop", "value_maps"):
                if param in merged.get(key, {}) and param not in raw.get(key, {}):
                    merged[key] = {k: v for k, v in merged[key].items() if k != param}

    maps = {}
    for param, mname in merged.get("value_maps", {}).items():
        if mname not in value_maps:
            raise _err(file, rid, f"value map '{mname}' for '{param}' is not defined in {COMMON_FILE}")
        maps[param] = value_maps[mname]
    rule = Rule(
        id=rid,
        file=file,
        kind=kind,
        summary=merged["summary"],
        names=dict(merged["names"]),
        dual=tuple(merged.get("dual", ())),
        modules=tuple(merged.get("modules", ())),
        signature=tuple(merged.get("signature", ())),
        keywords=tuple(merged.get("keywords", ())),
        defaults={k: _tuple(v) for k, v in merged.get("defaults", {}).items()},
        layer_kwargs=bool(merged.get("layer_kwargs", kind == "layer")),
        target_params=tuple(merged.get("target_params", ())),
        positional=int(merged.get("positional", 0)),
        kernel_dims=tuple(merged.get("kernel_dims", ())),
        value_maps=maps,
        pack={k: tuple(v) for k, v in merged.get("pack", {}).items()},
        rename=dict(merged.get("rename", {})),
        drop=dict(merged.get("drop", {})),
        refuse=dict(merged.get("refuse", {})),
        explicit=tuple(merged.get("explicit", ())),
        special=tuple(merged.get("special", ())),
        weights=merged.get("weights"),
    )
    if kind in ("layer", "method"):
        _check_layer_rule(rule)
    return rule


def _check_layer_rule(rule: Rule) -> None:
    f, rid = rule.file, rule.id
    params = set(rule.all_params)
    targets = set(rule.target_params) | set(TARGET_LAYER_KWARGS)
    for d in rule.dual:
        if d not in rule.names:
            raise _err(f, rid, f"dual spelling '{d}' is not one of its names")
    for k in rule.kernel_dims:
        if k not in rule.signature:
            raise _err(f, rid, f"kernel_dims entry '{k}' is not in the signature")
    for what, keys in (("value_maps", rule.value_maps), ("rename", rule.rename), ("drop", rule.drop),
                       ("refuse", rule.refuse)):
        for k in keys:
            if k not in params:
                raise _err(f, rid, f"{what} names '{k}', which is not a Keras 1 parameter of this rule")
    for new, members in rule.pack.items():
        for m in members:
            if m not in params:
                raise _err(f, rid, f"pack '{new}' uses '{m}', which is not a Keras 1 parameter")
        if new not in targets:
            raise _err(f, rid, f"pack emits '{new}', which is not a target parameter")
    for old, new in rule.rename.items():
        if new not in targets:
            raise _err(f, rid, f"rename '{old}' -> '{new}': '{new}' is not a target parameter")
    for e in rule.explicit:
        if e not in targets:
            raise _err(f, rid, f"explicit '{e}' is not a target parameter")
    handled: set[str] = set()
    for name in rule.special:
        fn = special_mod.REGISTRY.get(name)
        if fn is None:
            raise _err(f, rid, f"special '{name}' is not a function in kmigrate.spec.special "
                               f"(known: {', '.join(sorted(special_mod.REGISTRY))})")
        handled.update(fn.consumes)
    # Every Keras 1 parameter has a defined outcome: mapped, packed, dropped, refused, handled by a
    # named function, or passed through under a name the target accepts.
    for p in rule.all_params:
        if p in rule.rename or p in rule.drop or p in rule.refuse or p in handled:
            continue
        if any(p in members for members in rule.pack.values()):
            continue
        if p in targets:
            continue
        raise _err(f, rid, f"Keras 1 parameter '{p}' has no outcome (rename, pack, drop, refuse or special)")


def _check_set(rules: list[Rule]) -> None:
    seen_ids: dict[str, str] = {}
    seen_names: dict[str, str] = {}
    for r in rules:
        if r.id in seen_ids:
            raise _err(r.file, r.id, f"duplicate id (also in {seen_ids[r.id]})")
        seen_ids[r.id] = r.file
        if r.kind != "layer":
            continue
        for n in r.names:
            if n in seen_names:
                raise _err(r.file, r.id, f"spelling '{n}' is already claimed by rule '{seen_names[n]}'")
            seen_names[n] = r.id


@lru_cache(maxsize=1)
def default_ruleset() -> RuleSet:
    return load_ruleset()
