"""Run configuration of ``core.train``: the recipe schema, its defaults, YAML recipes and CLI overrides.

A run's configuration is one nested dict built in three layers, later layers winning:

1. :data:`SCHEMA`: every key the trainer reads, with its default and a one-line meaning (the only place
   defaults live);
2. a recipe YAML: a protocol a method ships (``--config zero_shot``) or a file path (``--config my.yaml``);
   with neither ``--config`` nor data arguments, the method's ``synthetic`` recipe (the embedded default);
3. command-line overrides: ``key=value`` or ``--key value`` with dotted keys (``optim.lr=1e-4``,
   ``--train.micro_batch_size 4``), plus a few convenience flags (:data:`FLAG_KEYS`).

Unknown keys are errors that name the key and the valid ones, wherever they come from. ``method_options``
is free-form here and checked against the method's ``_build`` signature by :func:`validate`.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "FLAG_KEYS",
    "RUNTIME_KEYS",
    "SCHEMA",
    "ConfigError",
    "apply_overrides",
    "config_digest",
    "defaults",
    "dump_yaml",
    "load_recipe",
    "merge",
    "parse_override_tokens",
    "resolve_config",
    "set_key",
    "validate",
]


class ConfigError(ValueError):
    """A configuration value or key that the trainer cannot use; the message names it and the fix."""


@dataclass(frozen=True)
class Key:
    default: Any
    help: str


# Sentinel of ``clip.pretrained``: pretrain the (tiny) CLIP contrastively on the synthetic captions first.
SYNTHETIC_PRETRAINED = "synthetic"

# Nested dicts whose sub-keys are a fixed set other than the schema's leaves.
AUGMENT_KEYS = {"crop", "flip", "color_jitter", "grayscale", "random_erasing", "num_fixed_crops"}
MIXUP_KEYS = {"mixup_alpha", "cutmix_alpha", "switch_prob", "label_smoothing", "prob", "partner"}
MIXUP_DEFAULTS = {"mixup_alpha": 0.8, "cutmix_alpha": 1.0, "switch_prob": 0.5, "label_smoothing": 0.1}

SCHEMA: dict[str, Key] = {
    "method": Key(None, "method name (core.list_methods()); also --method"),
    "clip.model": Key("ViT-B-16", "CLIP architecture: open_clip name (ViT-B-16, ...) or preset (tiny, test); "
                                  "null: inferred from clip.pretrained"),
    "clip.pretrained": Key(None, "CLIP weights: a file (OpenAI ViT-B-16.pt, open_clip checkpoint) or an open_clip tag "
                                 "of clip.model (openai, via the HF hub cache); 'synthetic': "
                                 "pretrain the preset on the synthetic captions first (cached); null: random init"),
    "method_options": Key({}, "keyword arguments of the method's build() (see its recipes)"),
    "data.train_shards": Key(None, "training shards (dir, brace pattern, list); null: the synthetic dataset"),
    "data.val_shards": Key(None, "validation shards; null: none (synthetic: its val split)"),
    "data.class_names": Key(None, "training classes: a file (CSV id,name / one name per line / JSON) or a catalog "
                                  "dataset (kinetics400, ucf101:base, ...); null: the shards' manifest"),
    "data.val_class_names": Key(None, "validation classes (same forms); null: data.class_names"),
    "data.descriptions": Key(None, "class descriptions for methods that use them: T2L CSV, JSON name -> text, or "
                                   "a catalog reference (ucf101:t2l)"),
    "data.num_frames": Key(8, "frames per clip T"),
    "data.input_size": Key(224, "frame side S in pixels"),
    "data.train_sampling": Key("segment", "training frame sampler (core.data.sampling)"),
    "data.test_sampling": Key("segment_center", "evaluation frame sampler"),
    "data.test_views": Key([1, 1], "evaluation views [temporal clips, spatial crops (1 or 3)]"),
    "data.augment": Key({"crop": "multiscale", "flip": 0.5, "color_jitter": 0.8, "grayscale": 0.2,
                         "random_erasing": 0.0}, f"training augmentation, keys {sorted(AUGMENT_KEYS)}"),
    "data.mixup": Key(None, f"null or batch Mixup/CutMix {{{', '.join(sorted(MIXUP_KEYS))}}}"),
    "data.label_smoothing": Key(0.0, "label smoothing of hard labels (when data.mixup is null)"),
    "data.num_workers": Key(4, "data-loader worker processes per rank"),
    "data.shuffle_buffer": Key(64, "training sample-shuffle buffer (encoded samples per worker)"),
    "data.decode_timeout": Key(30.0, "seconds allowed to decode one sample"),
    "data.decoder": Key("decord", "video decoder: decord (falls back to pyav when it cannot be imported), pyav or "
                                  "torchcodec (core.data.decoders)"),
    "data.train_size": Key(None, "training samples per epoch; null: from the shards' manifest"),
    "optim.lr": Key(8.0e-6, "base learning rate (methods scale some groups, e.g. 10x for new modules)"),
    "optim.weight_decay": Key(0.001, "AdamW weight decay (groups the method exempts get 0)"),
    "optim.betas": Key([0.9, 0.98], "AdamW betas"),
    "optim.eps": Key(1.0e-8, "AdamW epsilon"),
    "optim.grad_clip": Key(1.0, "global gradient-norm clip; 0 or null: none"),
    "schedule.epochs": Key(30, "training epochs"),
    "schedule.warmup_epochs": Key(5, "linear warm-up epochs"),
    "schedule.warmup_start_factor": Key(0.0, "LR at step 0 as a fraction of each group's LR (timm 0, mmengine 0.05)"),
    "schedule.min_lr_ratio": Key(0.01, "cosine floor as a fraction of optim.lr, shared by all groups (timm lr_min)"),
    "schedule.cosine_from": Key("start", "'start': cosine of the absolute step, LR drops at the end of warm-up "
                                         "(timm warmup_prefix=False: TC-CLIP, ILA); 'warmup_end': cosine restarts "
                                         "from the peak after warm-up (T2L, STAN)"),
    "train.batch_size": Key(256, "global batch (clips per optimizer step, over all ranks and accumulation)"),
    "train.micro_batch_size": Key(8, "clips per forward on one rank"),
    "train.precision": Key("auto", "auto (bf16 on a GPU with bf16 or a CPU with AMX/AVX512-BF16, else fp32) | bf16 | fp16 | fp32"),
    "train.compile": Key(False, "torch.compile the training forward (opt-in); the first micro-batch, which "
                                "compiles, is logged apart (metrics.jsonl event 'compile') and left out of clips_per_s"),
    "train.zero_stage": Key(1, "DeepSpeed ZeRO stage 0, 1 or 2 (bf16 needs >= 1 for fp32 gradient accumulation)"),
    "train.seed": Key(1024, "base seed (model init, data order, augmentation)"),
    "train.max_steps": Key(None, "stop after this many optimizer steps (the schedule still spans all epochs)"),
    "train.max_nonfinite": Key(10, "abort after this many non-finite losses in a row (each one is skipped)"),
    "train.data_wait_warn": Key(0.3, "warn when waiting for data takes more than this share of a logging window's "
                                     "step time (0-1; null: never)"),
    "eval.batch_size": Key(16, "evaluation clips per forward on one rank"),
    "eval.every_epochs": Key(0, "validate every N epochs during training (0: only at the end)"),
    "checkpoint.every_steps": Key(500, "DeepSpeed checkpoint every N optimizer steps (and at the end)"),
    "checkpoint.keep_last": Key(2, "checkpoints kept (older ones are deleted once a newer one is complete)"),
    "log.every_steps": Key(10, "metrics.jsonl / TensorBoard row every N optimizer steps"),
    "log.tensorboard": Key(False, "also write TensorBoard event files (needs the tensorboard package)"),
    "log.sample_keys": Key(False, "write every rank's training sample keys to <run>/sample_keys/rank<R>.txt"),
    "output_dir": Key(None, "run directory; null: runs/<method>-<timestamp>"),
}

# Keys a resumed run may change (they steer the run, not what is learnt).
RUNTIME_KEYS = {"output_dir", "train.max_steps", "train.compile", "data.num_workers", "data.decode_timeout", "data.decoder",
                "train.data_wait_warn", "eval.batch_size",
                "eval.every_epochs", "checkpoint.every_steps", "checkpoint.keep_last", "log.every_steps",
                "log.tensorboard", "log.sample_keys"}

# Convenience flags -> dotted keys.
FLAG_KEYS = {"--model": "clip.model", "--pretrained": "clip.pretrained", "--train-shards": "data.train_shards",
             "--val-shards": "data.val_shards", "--class-names": "data.class_names", "--output-dir": "output_dir",
             "--method": "method"}

_FREE_DICTS = {"method_options"}
_FIXED_DICTS = {"data.augment": AUGMENT_KEYS, "data.mixup": MIXUP_KEYS}


# ------------------------------------------------------------------------------------------------------------
# Nested-dict helpers


def _split(key: str) -> list[str]:
    return key.split(".")


def get_key(config: Mapping[str, Any], key: str) -> Any:
    node: Any = config
    for part in _split(key):
        node = node[part]
    return node


def set_key(config: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted ``key`` in the nested ``config`` (intermediate dicts are created)."""
    parts = _split(key)
    node = config
    for part in parts[:-1]:
        if node.get(part) is None:
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def defaults() -> dict[str, Any]:
    """A fresh nested dict of every schema default."""
    out: dict[str, Any] = {}
    for key, spec in SCHEMA.items():
        set_key(out, key, copy.deepcopy(spec.default))
    return out


def _sections() -> set[str]:
    return {key.split(".")[0] for key in SCHEMA if "." in key}


def _valid_keys_under(prefix: str) -> list[str]:
    return sorted(k for k in SCHEMA if k.startswith(prefix + ".")) if prefix else sorted(SCHEMA)


def _unknown(key: str, valid: Iterable[str], where: str) -> ConfigError:
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return ConfigError(f"unknown config key {key!r}{where}.{hint} Valid keys: {', '.join(valid)}")


def merge(base: dict[str, Any], update: Mapping[str, Any], *, where: str = "", prefix: str = "") -> dict[str, Any]:
    """Merge ``update`` into ``base`` (in place), rejecting keys the schema does not know.

    Args:
        base: the config being built (nested).
        update: a nested dict (a recipe YAML).
        where: where ``update`` comes from, for error messages (e.g. ``" in recipe zero_shot"``).
        prefix: dotted position of ``update`` inside the whole config.
    """
    for name, value in update.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if key in _FREE_DICTS:
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"{key} must be a mapping, got {value!r}{where}")
            base[name] = dict(value or {})
        elif key in _FIXED_DICTS:
            base[name] = _merge_fixed(key, base.get(name), value, where)
        elif key in SCHEMA:
            base[name] = copy.deepcopy(value)
        elif key in _sections():
            if not isinstance(value, Mapping):
                raise ConfigError(f"{key} is a section (keys {', '.join(_valid_keys_under(key))}), got {value!r}{where}")
            merge(base.setdefault(name, {}), value, where=where, prefix=key)
        else:
            raise _unknown(key, _valid_keys_under(prefix) if prefix else list(SCHEMA) + sorted(_sections()), where)
    return base


def _merge_fixed(key: str, current: Any, value: Any, where: str) -> Any:
    if value is None:
        if key == "data.augment":
            raise ConfigError(f"data.augment cannot be null{where}; use crop: center and probabilities 0 for none")
        return None
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key} must be a mapping with keys {sorted(_FIXED_DICTS[key])}, got {value!r}{where}")
    unknown = set(value) - _FIXED_DICTS[key]
    if unknown:
        raise _unknown(f"{key}.{sorted(unknown)[0]}", [f"{key}.{k}" for k in _FIXED_DICTS[key]], where)
    base = dict(current) if isinstance(current, Mapping) else (dict(MIXUP_DEFAULTS) if key == "data.mixup" else {})
    base.update(value)
    return base


# ------------------------------------------------------------------------------------------------------------
# Recipes and overrides


def load_recipe(method_name: str, config: str) -> tuple[dict[str, Any], str]:
    """The recipe dict named by ``--config``: a YAML path, or a protocol shipped by the method.

    Returns:
        (recipe, description of its source for messages and the saved config).
    """
    path = Path(config)
    if config.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise FileNotFoundError(f"config file {config!r} not found; pass a YAML path or one of the protocols "
                                    f"the method ships ({_shipped(method_name)})")
        recipe = yaml.safe_load(path.read_text())
        source = str(path)
    else:
        from core.method import load_method

        method = load_method(method_name)
        if config not in method.configs():
            raise ConfigError(f"method {method_name!r} ships no recipe {config!r}; shipped: "
                              f"{', '.join(sorted(method.configs())) or 'none'} (or pass a YAML file path)")
        recipe = method.load_config(config)
        source = f"{method_name}:{config}"
    if not isinstance(recipe, Mapping):
        raise ConfigError(f"recipe {source} must be a YAML mapping, got {type(recipe).__name__}")
    return dict(recipe), source


def _shipped(method_name: str) -> str:
    try:
        from core.method import load_method

        return ", ".join(sorted(load_method(method_name).configs())) or "none"
    except Exception:  # only decorates an error message
        return "?"


def parse_override_tokens(tokens: Sequence[str]) -> list[tuple[str, str]]:
    """``["optim.lr=1e-4", "--train.seed", "3", "--log.every_steps=5"]`` -> ``[(key, raw value), ...]``.

    Hyphens in keys become underscores (``--train.micro-batch-size`` = ``train.micro_batch_size``).
    """
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        if token.startswith("--"):
            body = token[2:]
            if "=" in body:
                key, raw = body.split("=", 1)
            else:
                if i + 1 >= len(tokens):
                    raise ConfigError(f"{token} needs a value (e.g. {token} 1e-4 or {token}=1e-4)")
                key, raw = body, tokens[i + 1]
                i += 1
        elif "=" in token:
            key, raw = token.split("=", 1)
        else:
            raise ConfigError(f"cannot parse argument {token!r}: use key=value or --key value with dotted config keys "
                              f"(python -m core.train --help lists them)")
        pairs.append((key.replace("-", "_"), raw))
        i += 1
    return pairs


def _coerce(key: str, raw: str, default: Any) -> Any:
    """The typed value of a command-line string for ``key`` (YAML syntax; numbers follow the default's type)."""
    try:
        value = yaml.safe_load(raw) if raw != "" else None
    except yaml.YAMLError as err:
        raise ConfigError(f"cannot parse the value {raw!r} of {key}: {err}") from err
    if isinstance(default, bool):
        return value
    if isinstance(default, float) and isinstance(value, (int, str)) and not isinstance(value, bool):
        # YAML 1.1 reads "1e-4" as a string; accept every float spelling Python accepts.
        try:
            return float(value)
        except ValueError as err:
            raise ConfigError(f"{key} takes a number, got {raw!r}") from err
    if isinstance(default, list) and isinstance(value, str):
        return [yaml.safe_load(v) for v in value.split(",")]
    return value


def apply_overrides(config: dict[str, Any], pairs: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Apply command-line ``(dotted key, raw string)`` overrides to ``config`` in place."""
    for key, raw in pairs:
        head = next((d for d in (*_FREE_DICTS, *_FIXED_DICTS) if key.startswith(d + ".")), None)
        if head is not None:
            sub = key[len(head) + 1:]
            value = _coerce(key, raw, None)
            if head in _FIXED_DICTS:
                value = _coerce(key, raw, _fixed_default(head, sub))
                merged = _merge_fixed(head, get_key(config, head), {sub: value}, " on the command line")
                set_key(config, head, merged)
            else:
                current = dict(get_key(config, head) or {})
                set_key(current, sub, value)
                set_key(config, head, current)
            continue
        if key not in SCHEMA:
            if key in _sections():
                raise ConfigError(f"{key} is a section; override one of its keys: {', '.join(_valid_keys_under(key))}")
            section = key.split(".")[0]
            raise _unknown(key, _valid_keys_under(section) if section in _sections() else SCHEMA,
                           " on the command line")
        value = _coerce(key, raw, SCHEMA[key].default)
        if key in _FIXED_DICTS:
            value = _merge_fixed(key, None, value, " on the command line") if value is not None else None
        set_key(config, key, value)
    return config


def _fixed_default(head: str, sub: str) -> Any:
    if head == "data.mixup":
        return MIXUP_DEFAULTS.get(sub, 1.0 if sub == "prob" else None)
    return SCHEMA["data.augment"].default.get(sub)


def resolve_config(method: str | None, config: str | None, overrides: Sequence[tuple[str, str]]) -> dict[str, Any]:
    """Defaults, then the recipe, then the overrides: the run's full configuration (not yet validated).

    Args:
        method: ``--method`` (may also come from the recipe or an override).
        config: ``--config`` protocol name or YAML path; None: ``synthetic`` when no data key is overridden.
        overrides: parsed command-line ``(key, raw)`` pairs (convenience flags already mapped to keys).
    """
    override_keys = {k for k, _ in overrides}
    method = method or next((raw for k, raw in overrides if k == "method"), None)
    result = defaults()
    if config is None and not override_keys & {"data.train_shards", "data.val_shards"}:
        config = "synthetic"
    source = "defaults"
    if config is not None:
        if method is None and not (config.endswith((".yaml", ".yml")) or Path(config).is_file()):
            raise ConfigError(f"--config {config!r} names a method's protocol: pass --method too "
                              f"(installed: {', '.join(_installed()) or 'none'})")
        recipe, source = load_recipe(method or "", config)
        if method is not None and recipe.get("method") not in (None, method):
            raise ConfigError(f"recipe {source} is for method {recipe['method']!r}, not {method!r}")
        merge(result, recipe, where=f" in recipe {source}")
    if method is not None:
        result["method"] = method
    apply_overrides(result, [(k, v) for k, v in overrides if k != "method"])
    result.setdefault("_source", source)
    return result


def _installed() -> list[str]:
    from core.method import list_methods

    return sorted(list_methods())


# ------------------------------------------------------------------------------------------------------------
# Validation


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _number(config: Mapping[str, Any], key: str, *, minimum: float | None = None, integer: bool = False,
            allow_none: bool = False, strict: bool = False) -> None:
    value = get_key(config, key)
    if value is None and allow_none:
        return
    kind = "an integer" if integer else "a number"
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    _check(ok and not isinstance(value, bool), f"{key} must be {kind}, got {value!r}")
    if minimum is not None:
        _check(value > minimum if strict else value >= minimum,
               f"{key} must be {'>' if strict else '>='} {minimum}, got {value!r}")


def _probability(config: Mapping[str, Any], key: str) -> None:
    _number(config, key, minimum=0.0)
    _check(get_key(config, key) <= 1.0, f"{key} is a probability in [0, 1], got {get_key(config, key)!r}")


def validate(config: Mapping[str, Any], *, check_method: bool = True) -> None:
    """Check every value of a resolved config; raise :class:`ConfigError` naming the key and the fix.

    Args:
        config: a config from :func:`resolve_config`.
        check_method: also load the method plugin and build its options dataclass from ``method_options``.
    """
    from core.data.sampling import get_sampler

    _check(isinstance(config.get("method"), str), "no method given: pass --method NAME "
           f"(installed: {', '.join(_installed()) or 'none'})")
    _check(config["clip"]["model"] is not None or config["clip"]["pretrained"] not in (None, SYNTHETIC_PRETRAINED),
           "clip.model is null (infer from weights) but clip.pretrained is not a weights file")
    for key in ("data.num_frames", "data.input_size", "train.batch_size", "train.micro_batch_size",
                "eval.batch_size", "checkpoint.every_steps", "checkpoint.keep_last", "log.every_steps",
                "train.max_nonfinite", "schedule.epochs"):
        _number(config, key, minimum=1, integer=True)
    for key in ("data.num_workers", "data.shuffle_buffer", "train.seed", "eval.every_epochs"):
        _number(config, key, minimum=0, integer=True)
    _number(config, "train.max_steps", minimum=1, integer=True, allow_none=True)
    _number(config, "data.train_size", minimum=1, integer=True, allow_none=True)
    _number(config, "data.decode_timeout", minimum=0, strict=True, allow_none=True)
    _number(config, "train.data_wait_warn", minimum=0, allow_none=True)
    _check(config["data"]["decoder"] in ("decord", "pyav", "torchcodec"),
           f"data.decoder must be decord, pyav or torchcodec, got {config['data']['decoder']!r}")
    _number(config, "optim.lr", minimum=0, strict=True)
    _number(config, "optim.weight_decay", minimum=0)
    _number(config, "optim.eps", minimum=0, strict=True)
    _number(config, "optim.grad_clip", minimum=0, allow_none=True)
    _number(config, "schedule.warmup_epochs", minimum=0)
    _probability(config, "schedule.warmup_start_factor")
    _probability(config, "schedule.min_lr_ratio")
    _probability(config, "data.label_smoothing")
    betas = config["optim"]["betas"]
    _check(isinstance(betas, (list, tuple)) and len(betas) == 2 and all(0 <= b < 1 for b in betas),
           f"optim.betas must be two numbers in [0, 1), got {betas!r}")
    _check(config["schedule"]["warmup_epochs"] <= config["schedule"]["epochs"],
           f"schedule.warmup_epochs ({config['schedule']['warmup_epochs']}) exceeds schedule.epochs "
           f"({config['schedule']['epochs']})")
    _check(config["schedule"]["cosine_from"] in ("start", "warmup_end"),
           f"schedule.cosine_from must be 'start' or 'warmup_end', got {config['schedule']['cosine_from']!r}")
    train = config["train"]
    _check(train["precision"] in ("auto", "bf16", "fp16", "fp32"),
           f"train.precision must be auto, bf16, fp16 or fp32, got {train['precision']!r}")
    _check(isinstance(train["compile"], bool), f"train.compile must be true or false, got {train['compile']!r}")
    _check(train["zero_stage"] in (0, 1, 2), f"train.zero_stage must be 0, 1 or 2, got {train['zero_stage']!r}")
    _check(not (train["precision"] == "bf16" and train["zero_stage"] == 0),
           "train.precision=bf16 accumulates gradients in fp32, which DeepSpeed supports from ZeRO stage 1: "
           "set train.zero_stage=1 (or 2)")
    _check(train["batch_size"] % train["micro_batch_size"] == 0,
           f"train.batch_size ({train['batch_size']}) must be a multiple of train.micro_batch_size "
           f"({train['micro_batch_size']}) times the number of ranks")
    data = config["data"]
    for key in ("train_sampling", "test_sampling"):
        try:
            get_sampler(data[key])
        except (ValueError, KeyError) as err:
            raise ConfigError(f"data.{key}: {err}") from err
    views = data["test_views"]
    _check(isinstance(views, (list, tuple)) and len(views) == 2 and int(views[0]) >= 1 and int(views[1]) in (1, 3),
           f"data.test_views must be [temporal clips >= 1, spatial crops 1 or 3], got {views!r}")
    _check(data["augment"].get("crop", "multiscale") in ("multiscale", "random_resized", "center"),
           f"data.augment.crop must be multiscale, random_resized or center, got {data['augment'].get('crop')!r}")
    for name in ("flip", "color_jitter", "grayscale", "random_erasing"):
        if name in data["augment"]:
            _probability(config, f"data.augment.{name}")
    if data["mixup"] is not None:
        for name in ("mixup_alpha", "cutmix_alpha"):
            _number(config, f"data.mixup.{name}", minimum=0)
        for name in ("switch_prob", "label_smoothing", "prob"):
            if name in data["mixup"]:
                _probability(config, f"data.mixup.{name}")
    if check_method:
        check_method_options(config["method"], config.get("method_options") or {})


def check_method_options(method_name: str, options: Mapping[str, Any]) -> None:
    """``options`` build the method's options dataclass (the same check ``Method.build`` makes)."""
    from core.method import load_method
    from core.options import OptionsError

    try:
        load_method(method_name).options(options)
    except OptionsError as err:
        raise ConfigError(str(err)) from err


# ------------------------------------------------------------------------------------------------------------
# Saving and comparing


def public(config: Mapping[str, Any]) -> dict[str, Any]:
    """``config`` without private bookkeeping keys (``_source``)."""
    return {k: copy.deepcopy(v) for k, v in config.items() if not k.startswith("_")}


def dump_yaml(config: Mapping[str, Any]) -> str:
    """The resolved config as YAML, headed by where its recipe came from."""
    header = f"# resolved core.train config (recipe: {config.get('_source', '?')})\n"
    return header + yaml.safe_dump(public(config), sort_keys=False, default_flow_style=None)


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, value in config.items():
        key = f"{prefix}.{name}" if prefix else name
        if isinstance(value, Mapping) and key not in _FREE_DICTS and key not in _FIXED_DICTS:
            out.update(_flatten(value, key))
        else:
            out[key] = value
    return out


def identity(config: Mapping[str, Any]) -> dict[str, Any]:
    """The flattened keys that define what a run learns (every key but :data:`RUNTIME_KEYS`)."""
    return {k: v for k, v in _flatten(public(config)).items() if k not in RUNTIME_KEYS}


def differences(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    """Human-readable ``key: a -> b`` lines where two configs' identities differ."""
    ia, ib = identity(a), identity(b)
    return [f"{k}: {ia.get(k)!r} -> {ib.get(k)!r}" for k in sorted(set(ia) | set(ib)) if ia.get(k) != ib.get(k)]


def config_digest(obj: Any) -> str:
    """A short stable hash of a JSON-able object."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def help_text() -> str:
    """Every key, its default and meaning, for ``--help``."""
    width = max(len(k) for k in SCHEMA)
    lines = []
    for key, spec in SCHEMA.items():
        default = json.dumps(spec.default) if not isinstance(spec.default, str) else spec.default
        lines.append(f"  {key:<{width}}  {spec.help} [default: {default}]")
    return "\n".join(lines)


def expand_path(value: str | os.PathLike | None) -> str | None:
    """``~`` and environment variables expanded; None stays None."""
    return None if value is None else os.path.expandvars(os.path.expanduser(os.fspath(value)))
