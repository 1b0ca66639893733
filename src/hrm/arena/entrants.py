"""The arena's entrants: each one a training preset, an architecture block, and the same arena settings.

    hrm           the demo (configs/demo.yaml) with its HRM, configs/arch/hrm_demo.yaml
    trm           the demo's recipe with TRM, attention (configs/arch/trm_demo.yaml)
    trm_mlp       the same with TRM-MLP, a SwiGLU across positions instead of attention (trm_demo_mlp.yaml)
    transformer   the plain transformer baseline at hrm_demo's parameter count (transformer_demo.yaml)
    NAME          any other block of configs/arch (the demo's recipe with it), or a run preset (configs/NAME.yaml)
    PATH.yaml     an architecture block (it has a top-level `name:`) or a run preset

The demo's recipe is the same for every built-in entrant (batch 64, lr 2e-3 with 100 warm-up steps and a
cosine fitted to the budget, weight decay 1.0, AdamATan2, compiled; float32, see DEMO_RECIPE_SETTINGS): only the
architecture differs.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from hrm.training.config import PRESETS, ConfigError, preset_path, read_yaml

DEMO_PRESET = "demo"
BUILT_IN = {"hrm": "hrm_demo", "trm": "trm_demo", "trm_mlp": "trm_demo_mlp", "transformer": "transformer_demo"}
DEFAULT_ENTRANTS = list(BUILT_IN)

# NOTE: the arena trains on the CPU and evaluates on its own (outside the budget, see hrm.arena.run), so every
# entrant gets these, before the user's overrides: no trainer evaluation inside the budget, no progress bar
# (the arena prints its own lines), one checkpoint kept.
ARENA_SETTINGS = ["device=cpu", "data.eval_max_examples=0", "logging.progress=false", "keep_checkpoints=1"]
# NOTE: the entrants on the demo's preset train in float32, where the demo itself takes bf16 on CPUs with bf16
# matrix instructions: bf16 was measured to learn as well for the demo's HRM only, and the arena's tables
# compare architectures in float32. `hrm arena dtype=auto` follows the demo; a preset of one's own keeps its dtype.
DEMO_RECIPE_SETTINGS = ["dtype=float32"]


@dataclass(frozen=True)
class Entrant:
    label: str                    # the name in the table and in file names
    preset: Path                  # the run preset's file
    arch: str | None              # the architecture block (name or path), None: the preset's own

    def describe(self) -> str:
        where = self.preset.name if self.preset.parent == PRESETS else str(self.preset)
        return where + (f" + arch={self.arch}" if self.arch else "")

    def overrides(self, data_path: Path, run_dir: Path, seed: int, extra: list[str]) -> list[str]:
        recipe = DEMO_RECIPE_SETTINGS if self.preset == preset_path(DEMO_PRESET) else []
        return ([f"arch={self.arch}"] if self.arch else []) + ARENA_SETTINGS + recipe + [
            f"data_path={data_path}", f"checkpoint_path={run_dir}", f"seed={seed}"] + list(extra)

    def config(self, data_path: Path, run_dir: Path, seed: int, extra: list[str]):
        from hrm.training.config import load_config
        return load_config(self.preset, self.overrides(data_path, run_dir, seed, extra))


def _label(text: str) -> str:
    stem = Path(text).stem if text.endswith((".yaml", ".yml")) else text
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", stem)


def _is_arch_block(path: Path) -> bool:
    """An architecture block names its architecture at the top level; a run preset has no `name:` key."""
    return "name" in read_yaml(path)


def resolve(name: str) -> Entrant:
    """One entrant from its name or path; ConfigError (one line) when there is no such thing."""
    demo = preset_path(DEMO_PRESET)
    if name in BUILT_IN:
        return Entrant(name, demo, BUILT_IN[name])
    if name.endswith((".yaml", ".yml")):
        path = Path(name)
        if not path.is_file():
            raise ConfigError(f"entrant {name}: no such file")
        return Entrant(_label(name), demo, str(path)) if _is_arch_block(path) else Entrant(_label(name), path, None)
    if (PRESETS / "arch" / f"{name}.yaml").is_file():
        return Entrant(name, demo, name)
    if (PRESETS / f"{name}.yaml").is_file():
        return Entrant(name, PRESETS / f"{name}.yaml", None)
    known = list(BUILT_IN) + sorted(p.stem for p in (PRESETS / "arch").glob("*.yaml")) \
        + sorted(p.stem for p in PRESETS.glob("*.yaml"))
    close = difflib.get_close_matches(name, known, n=1)
    raise ConfigError(f"unknown entrant {name!r}" + (f"; did you mean '{close[0]}'?" if close else "")
                      + f" (built in: {', '.join(BUILT_IN)}; or a block of configs/arch, a preset, a .yaml path)")


def resolve_all(names: list[str]) -> list[Entrant]:
    entrants = [resolve(n) for n in names]
    labels = [e.label for e in entrants]
    twice = sorted({label for label in labels if labels.count(label) > 1})
    if twice:
        raise ConfigError(f"entrants named twice: {', '.join(twice)}")
    return entrants


# The hyper-parameters a table lists for each entrant (the whole resolved config is in each entry's JSON).
TRAINING_KEYS = ("global_batch_size", "lr", "lr_warmup_steps", "lr_min_ratio", "weight_decay", "beta1", "beta2",
                 "puzzle_emb_lr", "puzzle_emb_weight_decay", "ema", "dtype", "compile")
ARCH_SKIPPED = ("seq_len", "vocab_size", "num_puzzle_identifiers", "batch_size", "loss", "forward_dtype")


def hyper_parameters(config: dict) -> dict:
    """The arch block's keys and the training keys of a resolved config (config_to_dict form)."""
    arch = {"name": config["arch"]["name"]}
    arch.update((k, v) for k, v in config["arch"].items() if k not in ARCH_SKIPPED)
    if isinstance(config["arch"].get("loss"), dict):
        arch["loss"] = config["arch"]["loss"].get("loss_type")
    return {**arch, **{k: config[k] for k in TRAINING_KEYS if k in config}}
