"""The training configuration: typed dataclasses, YAML presets and `key=value` overrides.

    TrainConfig             the run: the original's `PretrainConfig` keys, flat and with its names
      .arch                 the architecture: the config class that `arch.name` names in hrm.models'
                            registry (HRMConfig by default), with .arch.loss the LossConfig
      .data  DataConfig     how the test split is read for evaluation
      .logging LoggingConfig  progress bar, metrics files, TensorBoard / W&B

A config is built in three layers: the dataclass defaults (the original's `cfg_pretrain.yaml` and
`arch/hrm_v1.yaml`), then a YAML file (a preset in `configs/` or any path), then `key=value` overrides:

    hrm train --config sudoku_extreme_1k data_path=data/sudoku-extreme-1k-aug-1000 arch.L_cycles=8

Values are converted to the field's type (so `lr=7e-5` is a float, which plain YAML would read as a
string); an unknown key is an error that names the nearest valid key. The original's `all_config.yaml`
files load as they are (its `arch.name` and `arch.loss.name` class paths are accepted).
Presets compose: `arch: NAME` (in a file, or `arch=NAME` on the command line) applies the architecture block
`configs/arch/NAME.yaml` (or a YAML path). The last such block, then `arch.name`, are applied before every
other key, wherever they appear, so that `arch.*` keys are checked against the architecture they name. `logger=...` is a shortcut for `logging.logger=...`; the original's
`arch.forward_dtype=...` sets the run's `dtype`.
"""
from __future__ import annotations

import dataclasses
import difflib
import math
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from hrm.config_values import NONE_WORDS, ConfigError, coerce, yaml_problem
from hrm.device import AUTOCAST, DTYPES
from hrm.files import atomic_write_text
from hrm.models import HRMConfig, architecture, canonical_name

# The original's loss class path; the only value `arch.loss.name` may take.
ORIGINAL_LOSS_NAMES = {"losses@ACTLossHead", "ACTLossHead"}
# NOTE: the dtype is a run setting (stored with the checkpoints), not an architecture field as in the
# original; its key still works.
SHORTCUTS = {"logger": "logging.logger", "arch.forward_dtype": "dtype"}
# numpy's global generator, which the trainer seeds with seed + rank, takes seeds in [0, 2**32).
MAX_SEED = 2**32 - 1
# The presets ship inside the package (configs/ at the repository root links here), so wheels have them.
PRESETS = Path(__file__).resolve().parents[1] / "configs"


@dataclass
class DataConfig:
    # NOTE: the original evaluates the whole test split with the training batch size. These let a CPU run
    # evaluate a prefix of it (Sudoku's test split has 422,786 puzzles) with a batch that fits memory.
    eval_batch_size: int | None = None       # None: global_batch_size, as the original
    eval_max_examples: int | None = None     # None: the whole test split


@dataclass
class LoggingConfig:
    logger: str = "none"                     # none | tensorboard | wandb (metrics.jsonl is always written)
    progress: bool = True                    # the tqdm bar on rank 0
    log_interval: int = 10                   # steps between train records in metrics.jsonl
    wandb_mode: str = "offline"              # offline | online: offline needs no account or network


@dataclass
class TrainConfig:
    # Any registered architecture's config (hrm.models.ARCHITECTURES); `arch.name` chooses the class.
    arch: HRMConfig = field(default_factory=HRMConfig)

    # The original's PretrainConfig, same names and defaults (semantics §2.2).
    data_path: str = "data/arc-aug-1000"
    global_batch_size: int = 768
    epochs: int = 100000
    eval_interval: int = 10000
    checkpoint_every_eval: bool = True
    lr: float = 1e-4
    lr_min_ratio: float = 1.0
    lr_warmup_steps: int = 2000
    beta1: float = 0.9
    beta2: float = 0.95
    weight_decay: float = 0.1
    puzzle_emb_weight_decay: float = 0.1
    puzzle_emb_lr: float = 1e-2
    seed: int = 0
    eval_save_outputs: list[str] = field(default_factory=list)
    # TRM's PretrainConfig adds these (every official TRM run sets ema=true): weight averaging (semantics §15.4).
    ema: bool = False
    ema_rate: float = 0.999
    load_checkpoint: str | None = None       # initial weights from a checkpoint (hrm's or an original one; semantics §15.6)
    freeze_weights: bool = False             # train the puzzle-embedding table only (the network is never updated)
    min_eval_interval: int = 0               # evaluate only from this iteration index on (units of eval_interval epochs)
    project_name: str | None = None          # None: "<Dataset> ACT-torch"
    run_name: str | None = None              # None: "<arch>-<date>-<time>"
    checkpoint_path: str | None = None       # the run directory; None: checkpoints/<project>/<run>

    # hrm's additions.
    device: str = "auto"                     # auto | cpu | cuda | cuda:1 | mps (see hrm.device)
    dtype: str = "auto"                      # auto | float32 | bfloat16 | float16: the forward dtype (hrm.device)
    compile: bool | None = None              # None (auto): torch.compile on CUDA only
    autocast: str = "none"                   # none | auto | bfloat16 | float16: matmuls in a half type, state in float32
    lr_schedule_steps: int = 0               # steps the warm-up + cosine span (0: the run's total steps)
    checkpoint_interval: int = 0             # also checkpoint every N steps (0: only at evaluations)
    keep_checkpoints: int = 3                # keep the last K training checkpoints (0: keep all)
    resume: str | None = None                # a run directory to continue
    data: DataConfig = field(default_factory=DataConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)

    def validate(self) -> "TrainConfig":
        """Check values that no single field's type can; re-runs HRMConfig's own checks."""
        try:
            self.arch = dataclasses.replace(self.arch)
        except ValueError as e:
            raise ConfigError(f"invalid config: arch: {e}") from e
        problems = []
        if self.global_batch_size < 1:
            problems.append(f"global_batch_size must be >= 1, got {self.global_batch_size}")
        if self.epochs < 1 or self.eval_interval < 1:
            problems.append(f"epochs and eval_interval must be >= 1, got {self.epochs} and {self.eval_interval}")
        elif self.epochs % self.eval_interval:
            problems.append(f"eval_interval={self.eval_interval} must divide epochs={self.epochs} "
                            "(one iteration = eval_interval epochs, then an evaluation)")
        for name in ("lr_schedule_steps", "lr_warmup_steps"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.lr_min_ratio <= 1:
            problems.append(f"lr_min_ratio must be in [0, 1], got {self.lr_min_ratio}")
        for name in ("lr", "puzzle_emb_lr", "weight_decay", "puzzle_emb_weight_decay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                problems.append(f"{name} must be a finite number >= 0, got {value}")
        if not (0 <= self.beta1 < 1 and 0 <= self.beta2 < 1):
            problems.append(f"beta1 and beta2 must be in [0, 1), got {self.beta1} and {self.beta2}")
        if not 0 <= self.seed <= MAX_SEED:
            problems.append(f"seed must be in [0, 2**32 - 1] (numpy's generators take no other), got {self.seed}")
        if not 0 <= self.ema_rate <= 1:
            problems.append(f"ema_rate must be in [0, 1], got {self.ema_rate}")
        if self.min_eval_interval < 0:
            problems.append(f"min_eval_interval must be >= 0 (an iteration index), got {self.min_eval_interval}")
        if self.freeze_weights and self.arch.puzzle_emb_ndim == 0:
            problems.append("freeze_weights=true trains the puzzle table only, and this architecture has none "
                            "(arch.puzzle_emb_ndim=0): nothing would train")
        if self.checkpoint_interval < 0 or self.keep_checkpoints < 0:
            problems.append("checkpoint_interval and keep_checkpoints must be >= 0")
        if self.data.eval_batch_size is not None and self.data.eval_batch_size < 1:
            problems.append(f"data.eval_batch_size must be >= 1 (or null), got {self.data.eval_batch_size}")
        if self.data.eval_max_examples is not None and self.data.eval_max_examples < 0:
            problems.append(f"data.eval_max_examples must be >= 0 (or null), got {self.data.eval_max_examples}")
        if self.dtype != "auto" and self.dtype not in DTYPES:
            problems.append(f"dtype must be auto or one of {', '.join(DTYPES)}, got {self.dtype!r}")
        if self.autocast not in AUTOCAST:
            problems.append(f"autocast must be one of {', '.join(AUTOCAST)}, got {self.autocast!r}")
        if self.logging.logger not in ("none", "tensorboard", "wandb"):
            problems.append(f"logger must be none, tensorboard or wandb, got {self.logging.logger!r}")
        if self.logging.wandb_mode not in ("offline", "online"):
            problems.append(f"logging.wandb_mode must be offline or online, got {self.logging.wandb_mode!r}")
        if self.logging.log_interval < 1:
            problems.append(f"logging.log_interval must be >= 1, got {self.logging.log_interval}")
        if problems:
            raise ConfigError("invalid config: " + "; ".join(problems))
        return self


# ----------------------------------------------------------------------------------------------------
# Keys and types

def _fields(cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation of a dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def all_keys(cls: type = TrainConfig, prefix: str = "", instance: Any = None) -> list[str]:
    """Every settable dotted key, e.g. 'lr', 'arch.L_cycles', 'arch.loss.loss_type'. With `instance`, the
    sections are those of its values (the architecture its `arch.name` chose), not the annotated classes."""
    keys = []
    for name, tp in _fields(type(instance) if instance is not None else cls).items():
        value = getattr(instance, name, None) if instance is not None else None
        if dataclasses.is_dataclass(value) or dataclasses.is_dataclass(tp):
            keys += all_keys(type(value) if dataclasses.is_dataclass(value) else tp, f"{prefix}{name}.", value)
        else:
            keys.append(prefix + name)
    return keys


def _unknown_key(key: str, where: str, config: TrainConfig) -> ConfigError:
    keys = all_keys(instance=config)
    close = difflib.get_close_matches(key, keys + list(SHORTCUTS), n=1, cutoff=0.6)
    if not close:  # a wrong section but a right leaf name, e.g. `L_cycles` for `arch.L_cycles`
        leaf = key.rsplit(".", 1)[-1]
        close = [k for k in keys if k.rsplit(".", 1)[-1] == leaf][:1]
    hint = f"; did you mean '{close[0]}'?" if close else ""
    arch = f" (the keys of architecture {config.arch.name})" if key.startswith("arch.") else ""
    return ConfigError(f"{where}: unknown config key '{key}'{hint}{arch}")


def set_architecture(config: TrainConfig, name: Any, where: str) -> None:
    """`arch.name=NAME`: the registry's config class for NAME, at its defaults (unless already that class)."""
    try:
        arch = architecture(str(name))
    except ValueError as e:
        raise ConfigError(f"{where}: {e}") from None
    if type(config.arch) is not arch.config:
        config.arch = arch.config(name=arch.name)
    config.arch.name = canonical_name(str(name))


def set_key(config: TrainConfig, key: str, value: Any, where: str) -> None:
    """Set dotted `key` to `value` (converted to the field's type). A mapping sets a whole section."""
    key = SHORTCUTS.get(key, key)
    if key == "arch.name":
        return set_architecture(config, value, where)
    parts = key.split(".")
    target: Any = config
    for depth, part in enumerate(parts):
        if part == "name" and parts[:depth] == ["arch", "loss"]:
            # The original's loss class path: there is one loss head, so only its own name is accepted.
            if value not in ORIGINAL_LOSS_NAMES:
                raise ConfigError(f"{where}: arch.loss.name={value!r} is not supported; the loss head is "
                                  f"ACTLossHead (choose the loss with arch.loss.loss_type)")
            return
        fields = _fields(type(target))
        if part not in fields:
            raise _unknown_key(key, where, config)
        tp = fields[part]
        if depth == len(parts) - 1:
            if dataclasses.is_dataclass(tp):
                if not isinstance(value, dict):
                    raise ConfigError(f"{where}: '{key}' is a section; set its keys, e.g. '{all_keys(tp, key + '.')[0]}=...'")
                items = sorted(value.items(), key=lambda kv: kv[0] != "name")    # arch.name first
                for sub_key, sub_value in items:
                    set_key(config, f"{key}.{sub_key}", sub_value, where)
            else:
                setattr(target, part, coerce(value, tp, f"{where}: {key}"))
            return
        if not dataclasses.is_dataclass(tp):
            raise _unknown_key(key, where, config)
        target = getattr(target, part)


# ----------------------------------------------------------------------------------------------------
# YAML files, with line numbers for errors

def _flatten_with_lines(node: yaml.Node, path: str, source: str, out: dict[str, tuple[Any, str]]) -> None:
    """Leaves of a composed YAML mapping as {dotted key: (python value, "file:line")}."""
    for key_node, value_node in node.value:
        where = f"{source}:{key_node.start_mark.line + 1}"
        if not isinstance(key_node, yaml.ScalarNode):
            raise ConfigError(f"{where}: a config key must be a name, not a {key_node.id}")
        key = f"{path}{key_node.value}"
        if key in out or any(k.startswith(key + ".") for k in out):
            raise ConfigError(f"{where}: duplicate config key '{key}' (it is set earlier in the file)")
        if isinstance(value_node, yaml.MappingNode):
            _flatten_with_lines(value_node, key + ".", source, out)
        else:
            try:
                out[key] = (yaml.SafeLoader("").construct_object(value_node, deep=True), where)
            except yaml.YAMLError as e:
                raise ConfigError(f"{where}: {key}: {getattr(e, 'problem', None) or e}") from None


def read_yaml(path: str | Path) -> dict[str, tuple[Any, str]]:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ConfigError(f"{path}: cannot read config file: {e.strerror}") from e
    except UnicodeDecodeError as e:
        line = text_line(path, e.start)
        raise ConfigError(f"{path}:{line}: not a UTF-8 text file (byte {e.start}: {e.object[e.start:e.start + 1]!r}); "
                          "a config file is YAML text") from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        raise ConfigError(yaml_problem(path, e)) from e
    if node is None:
        return {}
    if not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}: a config file must be a mapping of keys to values")
    out: dict[str, tuple[Any, str]] = {}
    _flatten_with_lines(node, "", str(path), out)
    return out


def text_line(path: Path, offset: int) -> int:
    """The 1-based line of byte `offset` in file `path`."""
    try:
        return path.read_bytes()[:offset].count(b"\n") + 1
    except OSError:
        return 1


def preset_path(name_or_path: str) -> Path:
    """A preset name (`sudoku_extreme_1k`) or a YAML path, resolved to an existing file."""
    candidates = [Path(name_or_path)]
    if not name_or_path.endswith((".yaml", ".yml")):
        candidates += [Path("configs") / f"{name_or_path}.yaml", PRESETS / f"{name_or_path}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = sorted(p.stem for p in PRESETS.glob("*.yaml")) if PRESETS.is_dir() else []
    close = difflib.get_close_matches(name_or_path, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"no config file or preset named '{name_or_path}'{hint} (presets: {', '.join(names) or 'none found'})")


def parse_overrides(argv: list[str]) -> list[tuple[str, str]]:
    """['lr=7e-5', 'arch.L_cycles=8'] -> [('lr', '7e-5'), ...]; Hydra's '+' prefix is accepted."""
    pairs = []
    for arg in argv:
        key, sep, value = arg.partition("=")
        key = key.strip().lstrip("+")
        if not sep or not key:
            raise ConfigError(f"command line: '{arg}' is not a key=value override (e.g. lr=1e-4 or arch.L_cycles=8)")
        pairs.append((key, value))
    return pairs


def _override_value(text: str) -> Any:
    """A command-line value: YAML for lists and null, the raw string otherwise (coerce() types it)."""
    stripped = text.strip()
    if stripped.startswith("[") or stripped.lower() in NONE_WORDS:
        try:
            return yaml.safe_load(stripped)
        except yaml.YAMLError:
            pass
    return text


def arch_preset_path(name: str) -> Path:
    """An architecture block: `configs/arch/NAME.yaml` (packaged) or a YAML path."""
    candidates = [Path(name)] if name.endswith((".yaml", ".yml")) else [PRESETS / "arch" / f"{name}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    names = sorted(p.stem for p in (PRESETS / "arch").glob("*.yaml"))
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    raise ConfigError(f"no architecture block named '{name}'{hint} (configs/arch: {', '.join(names) or 'none found'})")


def apply_arch_preset(config: TrainConfig, name: Any, where: str) -> None:
    if not isinstance(name, str):
        raise ConfigError(f"{where}: 'arch' is a section; set its keys (arch.L_cycles=...) or name a block in "
                          "configs/arch (arch=hrm_demo)")
    try:
        path = arch_preset_path(name)
    except ConfigError as e:
        raise ConfigError(f"{where}: {e}") from None
    # A block describes the whole architecture: it starts from the defaults of the class it names.
    config.arch = TrainConfig().arch
    apply_settings(config, [(f"arch.{k}", v, w) for k, (v, w) in read_yaml(path).items()])


def apply_settings(config: TrainConfig, settings: list[tuple[str, Any, str]]) -> TrainConfig:
    """Set (key, value, where) in order, except that the last architecture block (`arch: NAME`), then the last
    `arch.name`, are applied first: they choose the architecture's config class, against which every
    `arch.*` key is then checked."""
    settings = [(k.lstrip("+"), v, w) for k, v, w in settings]
    blocks = [(v, w) for k, v, w in settings if k == "arch" and not isinstance(v, dict)]
    if blocks:
        apply_arch_preset(config, *blocks[-1])
    names = [(v, w) for k, v, w in settings if k == "arch.name"]
    if names:
        set_architecture(config, *names[-1])
    for key, value, where in settings:
        if key != "arch.name" and not (key == "arch" and not isinstance(value, dict)):
            set_key(config, key, value, where)
    return config


def apply_overrides(config: TrainConfig, overrides: list[tuple[str, str]]) -> TrainConfig:
    return apply_settings(config, [(k, _override_value(v), f"command line '{k}={v}'") for k, v in overrides])


def load_config(path: str | Path | None = None, overrides: list[str] | None = None,
                base: TrainConfig | None = None) -> TrainConfig:
    """Defaults (or `base`), then the YAML file at `path` (ours or the original's all_config.yaml), then overrides."""
    config = base if base is not None else TrainConfig()
    settings = [(k, v, where) for k, (v, where) in read_yaml(path).items()] if path is not None else []
    settings += [(k, _override_value(v), f"command line '{k}={v}'") for k, v in parse_overrides(overrides or [])]
    return apply_settings(config, settings).validate()


def config_to_dict(config: TrainConfig) -> dict[str, Any]:
    return dataclasses.asdict(config)


def save_config(config: TrainConfig, path: str | Path) -> None:
    """Write the resolved config as YAML (atomically). It loads back with load_config(path)."""
    atomic_write_text(path, yaml.safe_dump(config_to_dict(config), sort_keys=False))
