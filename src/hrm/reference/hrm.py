"""`hrm check-reference FIXTURE.json`: compare our model with a fixture recorded from the original code.

A fixture is a JSON sidecar (config, seeds, procedure, tolerances, record index) and a safetensors file
of the same stem holding the records: `param.*` weights, `batch{N}.*`, and the outputs of the original
model under the procedures below. We replay each procedure with our model and compare every record:

  init             a fresh model under the recorded seed draws the same numbers (perturbed tensors aside):
                   bit-identical, or within INIT_MAX_ULP float32 ulps where this CPU's libm rounds erfinv
                   differently from the recording machine's
  eval             the evaluate-style loop on batch 1 until every row halts
  train_noexplore  training-mode calls with exploration off (no RNG involved), plus call-2 gradients
  grad             gradients after the backward of train call 1
  train            training-mode calls with the recorded exploration draws injected
  train (torch RNG) the same calls drawing from torch's CPU RNG, seeded as recorded
  variant_*        eval with learned positions, and with a 2-position puzzle embedding
A TRM fixture holds more groups (sign-SGD, optimiser steps, EMA, mlp_t and puzzle-length variants); its
procedures are hrm.reference.trm's, on top of these.

Floats must agree within the sidecar's atol/rtol; booleans, step counts and integer metrics exactly.

A fixture may hold only some of these groups: we replay the ones whose records it holds, report a line for
each one it does not, and pass if what it holds passes. A fixture that cannot be read (sidecar not JSON or
missing a key, records missing, truncated, or not fitting the index or the config) is a one-line error,
exit status 2, as is a fixture of an architecture this hrm has no replay for.
"""
from __future__ import annotations

import dataclasses
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from hrm.models import architecture as registered_architecture
from hrm.models import build_model
from hrm.models.checkpoint import CheckpointError, load_state_into, read_safetensors


# NOTE: the init is the original's float32 ops in the original's RNG order, but torch's float32 erfinv goes
# through the C library, whose last bit differs between CPUs (on an Intel Xeon with AVX-512, 1,577 of the
# 263,808 fixture elements differ from the recording by 1 or 2 ulps; an AMD EPYC matched bit for bit).
# A wrong draw order moves values by far more than a few ulps, and a wrong constant moves most of them, so
# the two bounds below still catch either.
INIT_MAX_ULP = 4
INIT_MAX_DIFFERING = 0.05           # the fraction of elements allowed to differ at all


@dataclass
class Comparison:
    name: str
    max_abs: float
    max_rel: float
    ok: bool
    exact: bool
    max_ulp: int | None = None          # init records only: float32 units in the last place,
    differing: int = 0                  # the elements that are not bit-identical,
    elements: int = 0                   # out of this many


@dataclass
class GroupReport:
    name: str
    comparisons: list[Comparison] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.comparisons)


class FixtureError(ValueError):
    """A fixture that cannot be checked; the message names the file and the key."""


# The sidecar's config keys that fix the architecture: the recorded model is only rebuilt faithfully if
# none of them falls back to one of the config class's defaults (TRM's extra fields default to the official
# class defaults).
REQUIRED_CONFIG = ("batch_size", "seq_len", "vocab_size", "num_puzzle_identifiers", "H_cycles", "L_cycles",
                   "H_layers", "L_layers", "hidden_size", "expansion", "num_heads", "pos_encodings",
                   "puzzle_emb_ndim", "rms_norm_eps", "rope_theta", "halt_max_steps", "halt_exploration_prob")
SUPPORTED_ARCHITECTURES = ("hrm_act_v1", "trm")
# The original files every recording lists besides its model file.
_SHARED_FILES = {"common.py", "layers.py", "losses.py", "sparse_embedding.py", "ema.py"}
EXPLORATION_DRAWS = ("explore_rand", "explore_randint")


def fixture_architecture(meta: dict) -> tuple[str, str]:
    """(architecture, where the fixture says so). An explicit config name wins; the recordings so far
    name none, so the model file among original_files_sha256 decides (models/hrm/hrm_act_v1.py,
    models/recursive_reasoning/trm.py); with neither, the format's first architecture, hrm_act_v1."""
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    for key in ("name", "arch", "architecture"):
        if isinstance(config.get(key), str):
            # "recursive_reasoning.trm@TinyRecursiveReasoningModel_ACTV1" -> "trm"
            return config[key].split("@")[0].split(".")[-1], f"config.{key} = {config[key]!r}"
    files = meta.get("original_files_sha256")
    if isinstance(files, dict):
        models = [f for f in files if f.startswith("models/") and f.endswith(".py")
                  and f.rsplit("/", 1)[-1] not in _SHARED_FILES]
        if len(models) == 1:
            return Path(models[0]).stem, f"its model file {models[0]}; the config names none"
    return "hrm_act_v1", "assumed: the fixture names no architecture"


class Fixture:
    def __init__(self, json_path: str | Path):
        self.json_path = Path(json_path)
        self.meta = self._read_sidecar()
        records_path = self.json_path.with_suffix(".safetensors")
        if not records_path.is_file():
            raise FixtureError(f"{records_path}: no such file (the records of {self.json_path.name})")
        try:
            self.records = read_safetensors(records_path)
        except CheckpointError as e:
            raise FixtureError(str(e).splitlines()[0]) from e
        self._check_records(records_path)
        tolerances = self.meta.get("suggested_tolerances")
        tol = tolerances.get("float_outputs", "") if isinstance(tolerances, dict) else ""
        self.atol = _parse_tolerance(tol if isinstance(tol, str) else "", "atol")
        self.rtol = _parse_tolerance(tol if isinstance(tol, str) else "", "rtol")
        self.batch_size = self.meta["config"]["batch_size"]

    def _error(self, message: str) -> FixtureError:
        return FixtureError(f"{self.json_path}: {message}")

    def _read_sidecar(self) -> dict:
        try:
            meta = json.loads(self.json_path.read_text())
        except (OSError, UnicodeDecodeError) as e:
            raise self._error(f"cannot read the sidecar ({e})") from e
        except json.JSONDecodeError as e:
            raise self._error(f"the sidecar is not JSON ({e})") from e
        if not isinstance(meta, dict):
            raise self._error(f"the sidecar is a JSON {type(meta).__name__}, not an object")
        architecture, where = fixture_architecture(meta)
        if architecture not in SUPPORTED_ARCHITECTURES:
            raise self._error(f"architecture {architecture!r} ({where}) is not available yet; "
                              f"hrm checks {', '.join(SUPPORTED_ARCHITECTURES)} fixtures")
        self.architecture = architecture
        for key in ("config", "records", "seeds"):
            if key not in meta:
                raise self._error(f"the sidecar has no {key!r} key")
        if not isinstance(meta["config"], dict):
            raise self._error("the sidecar's 'config' is not an object")
        for key in REQUIRED_CONFIG:
            if key not in meta["config"]:
                raise self._error(f"the sidecar has no 'config.{key}' key")
        if not isinstance(meta["seeds"], dict) or "model_init" not in meta["seeds"]:
            raise self._error("the sidecar has no 'seeds.model_init' key")
        if not isinstance(meta["records"], list):
            raise self._error("the sidecar's 'records' (the record index) is not a list")
        for i, entry in enumerate(meta["records"]):
            for key in ("name", "shape", "dtype"):
                if not isinstance(entry, dict) or key not in entry:
                    raise self._error(f"the record index entry records[{i}] has no {key!r} key")
        self.meta = meta
        try:
            self.config()
        except (TypeError, ValueError) as e:
            raise self._error(f"the sidecar's 'config' does not make a model ({e})") from e
        return meta

    def _check_records(self, records_path: Path) -> None:
        """The safetensors must hold exactly the indexed records, as indexed, and the inputs we feed the
        model must fit the config: otherwise the replay would fail somewhere deep inside the model."""
        index = {entry["name"]: entry for entry in self.meta["records"]}
        for name, entry in index.items():
            if name not in self.records:
                raise FixtureError(f"{records_path}: record {name!r} is in the sidecar's record index "
                                   "but not in the file")
            tensor = self.records[name]
            if list(tensor.shape) != entry["shape"]:
                raise FixtureError(f"{records_path}: record {name!r} has shape {list(tensor.shape)}, "
                                   f"the sidecar's record index says {entry['shape']}")
            if str(tensor.dtype).removeprefix("torch.") != entry["dtype"]:
                raise FixtureError(f"{records_path}: record {name!r} is {str(tensor.dtype).removeprefix('torch.')}, "
                                   f"the sidecar's record index says {entry['dtype']}")
        for name in self.records:
            if name not in index:
                raise FixtureError(f"{records_path}: record {name!r} is not in the sidecar's record index")
        if not self.params():
            raise FixtureError(f"{records_path}: no param.* records (the weights every procedure loads)")
        config = self.meta["config"]
        B, S = config["batch_size"], config["seq_len"]
        needed = {"inputs": [B, S], "labels": [B, S], "puzzle_identifiers": [B]}
        batches = {1} if self.has_prefix(("eval.", "variant_")) else set()
        batches |= set(range(1, max(self.calls("train"), self.calls("train_noexplore")) + 1))
        if self.has_prefix("grad."):
            batches.add(1)
        for n in sorted(batches):
            for key, shape in needed.items():
                name = f"batch{n}.{key}"
                if name not in self.records:
                    raise FixtureError(f"{records_path}: no record {name!r} (the procedures replayed need batch{n})")
                if list(self.records[name].shape) != shape:
                    raise FixtureError(f"{records_path}: record {name!r} has shape {list(self.records[name].shape)}; "
                                       f"config batch_size {B}, seq_len {S} need {shape}")
        for name, tensor in self.records.items():
            if name.endswith(EXPLORATION_DRAWS) and list(tensor.shape) != [B]:
                raise FixtureError(f"{records_path}: record {name!r} has shape {list(tensor.shape)}; "
                                   f"config batch_size {B} needs [{B}] (one draw per row)")

    def config(self, **changes):
        cls = registered_architecture(self.architecture).config
        fields = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in self.meta["config"].items() if k in fields}
        return cls(**{**values, **changes})

    def params(self, prefix: str = "param.") -> dict[str, torch.Tensor]:
        return {k.removeprefix(prefix): v for k, v in self.records.items() if k.startswith(prefix)}

    def batch(self, n: int) -> dict[str, torch.Tensor]:
        return {k: self.records[f"batch{n}.{k}"] for k in ("inputs", "labels", "puzzle_identifiers")}

    def has(self, name: str) -> bool:
        return name in self.records

    def has_prefix(self, prefix: str | tuple[str, ...]) -> bool:
        return any(name.startswith(prefix) for name in self.records)

    def calls(self, prefix: str, unit: str = "call") -> int:
        """The number of training calls recorded under `prefix` (its largest callN; stepN with unit="step")."""
        pattern = re.compile(rf"{re.escape(prefix)}\.{unit}(\d+)\.")
        numbers = [int(m.group(1)) for name in self.records if (m := pattern.match(name))]
        return max(numbers, default=0)

    def train_outputs(self) -> bool:
        """Whether the fixture holds exploring training-call outputs (not just their inputs)."""
        return any(name.startswith("train.call") and not name.endswith(EXPLORATION_DRAWS + ("signsgd_weights_after",))
                   for name in self.records)

    def missing_draws(self) -> list[int]:
        """The exploring training calls whose recorded exploration draws are not in the fixture."""
        return [n for n in range(1, self.calls("train") + 1)
                if not all(self.has(f"train.call{n}.{draw}") for draw in EXPLORATION_DRAWS)]


def _parse_tolerance(text: str, key: str, default: float = 1e-4) -> float:
    match = re.search(rf"{key}\s*=?\s*([0-9.]+(?:e-?[0-9]+)?)", text)
    return float(match.group(1)) if match else default


def compare(name: str, ours: torch.Tensor, ref: torch.Tensor, atol: float, rtol: float) -> Comparison:
    ours = torch.as_tensor(ours).detach().cpu()
    if ours.shape != ref.shape:
        return Comparison(name, float("inf"), float("inf"), False, False)
    exact = not ref.dtype.is_floating_point
    if exact:
        ok = torch.equal(ours.to(ref.dtype), ref)
        err = float((ours.double() - ref.double()).abs().max()) if ref.numel() else 0.0
        return Comparison(name, err, err, ok, True)
    diff = (ours.double() - ref.double()).abs()
    max_abs = float(diff.max()) if diff.numel() else 0.0
    max_rel = max_abs / max(float(ref.double().abs().max()), 1e-30) if diff.numel() else 0.0
    ok = bool(torch.allclose(ours.double(), ref.double(), atol=atol, rtol=rtol))
    return Comparison(name, max_abs, max_rel, ok, False)


def ulp_distances(ours: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Element-wise distance between two float32 tensors in units in the last place."""
    def ordered(t: torch.Tensor) -> torch.Tensor:      # float32 bits as integers that sort like the floats
        bits = t.detach().cpu().to(torch.float32).contiguous().view(torch.int32).to(torch.int64)
        return torch.where(bits < 0, -(bits & 0x7FFFFFFF), bits)

    return (ordered(ours) - ordered(ref)).abs()


class ReferenceRun:
    """Replays the fixture's procedures with our model and collects comparisons by group (HRM's; other
    architectures subclass it, see `runner`)."""

    # The groups a complete fixture holds, and the records of each (what a missing group's line names).
    GROUPS = {
        "init": "param.*",
        "eval": "eval.step*",
        "train_noexplore": "train_noexplore.call*",
        "grad": "grad.* (call-1 gradients)",
        "train": "train.call* (outputs and the exploration draws to inject)",
        "train (torch RNG)": "train.call* (outputs)",
        "variant_learned": "variant_learned.*",
        "variant_pe80": "variant_pe80.*",
    }
    # The outputs of the loss head compared wherever they are recorded.
    RETURN_KEYS = ("logits", "q_halt_logits", "q_continue_logits", "target_q_continue", "preds")

    def __init__(self, fixture: Fixture):
        self.fx = fixture
        self.groups: dict[str, GroupReport] = {}
        self.absent: dict[str, str] = {}

    def check(self, group: str, name: str, ours) -> None:
        if not self.fx.has(name):
            return
        report = self.groups.setdefault(group, GroupReport(group))
        report.comparisons.append(compare(name, ours, self.fx.records[name], self.fx.atol, self.fx.rtol))

    def model(self, params: dict[str, torch.Tensor] | None = None, **changes):
        head = build_model(self.fx.config(**changes), forward_dtype=torch.float32)
        load_state_into(head, params if params is not None else self.fx.params(), str(self.fx.json_path))
        return head

    def init_records(self) -> list[tuple[str, dict]]:
        """(record prefix, config changes): the models whose fresh init the fixture records."""
        return [("param.", {}), ("variant_learned.param.", {"pos_encodings": "learned"})]

    # --- procedures ---------------------------------------------------------------------------------

    def run_init(self) -> None:
        """Every recorded tensor of a fresh model built under the seed, the perturbed ones aside (a variant's
        prefix may hold only the tensors that differ from the main model's, e.g. embed_pos)."""
        seed = self.fx.meta["seeds"]["model_init"]
        perturbed = set(self.fx.meta.get("perturbed_tensors", {}).get("names", []))
        ours = {}
        for prefix, changes in self.init_records():
            if not self.fx.has_prefix(prefix):
                continue
            torch.manual_seed(seed)
            fresh = build_model(self.fx.config(**changes), forward_dtype=torch.float32).state_dict()
            ours.update({f"{prefix}{key}": value for key, value in fresh.items()
                         if key not in perturbed and self.fx.has(f"{prefix}{key}")})
        for name, value in ours.items():
            self.check("init", name, value)
        # Not the float tolerance: the ulp bounds of INIT_MAX_ULP and INIT_MAX_DIFFERING.
        for c in self.groups.get("init", GroupReport("init")).comparisons:
            if not c.ok:                                 # a wrong shape or far off
                continue
            ulps = ulp_distances(ours[c.name], self.fx.records[c.name])
            c.max_ulp, c.differing, c.elements = int(ulps.max()), int((ulps > 0).sum()), ulps.numel()
            c.ok = c.max_ulp <= INIT_MAX_ULP and c.differing <= INIT_MAX_DIFFERING * c.elements

    def run_eval(self, group: str, head, prefix: str) -> None:
        head.eval()
        batch = self.fx.batch(1)
        with torch.inference_mode():
            carry = head.initial_carry(batch)
            step = 0
            while True:
                step += 1
                carry, loss, metrics, outputs, all_halted = head(carry, batch, return_keys=self.RETURN_KEYS)
                p = f"{prefix}.step{step}"
                for k, v in outputs.items():
                    self.check(group, f"{p}.{k}", v)
                self.check(group, f"{p}.halted", carry.halted)
                self.check(group, f"{p}.steps", carry.steps)
                self.check(group, f"{p}.z_H", carry.inner_carry["z_H"])
                self.check(group, f"{p}.z_L", carry.inner_carry["z_L"])
                self.check(group, f"{p}.loss", loss)
                for k, v in metrics.items():
                    self.check(group, f"{p}.metric.{k}", v)
                if all_halted or step > 64:
                    break

    def run_train(self, group: str, prefix: str, inject: bool, grad_group: str | None = None,
                  params: dict[str, torch.Tensor] | None = None, call1_grads: str | None = None, **changes) -> None:
        """The training-mode calls recorded under `prefix`. The call-1 gradients are the records
        `call1_grads.*` (default: `grad.*` when prefix is "train", else `{prefix}.call1.grad.*`), compared
        under `grad_group`, or under `group` when that is None; later calls' are `{prefix}.callN.grad.*`.
        Without injection our exploration draws (torch's CPU RNG) are compared with the recorded ones."""
        head = self.model(params, **changes)
        head.train()
        act = head.model
        call_no = 0
        if inject:
            def recorded_draws(q_halt, steps):
                return (self.fx.records[f"{prefix}.call{call_no}.explore_rand"],
                        self.fx.records[f"{prefix}.call{call_no}.explore_randint"])
            act.exploration_draws = recorded_draws
        else:
            torch_draws = act.exploration_draws

            def compared_draws(q_halt, steps):
                draws = torch_draws(q_halt, steps)
                for name, draw in zip(EXPLORATION_DRAWS, draws):
                    self.check(group, f"{prefix}.call{call_no}.{name}", draw)
                return draws
            act.exploration_draws = compared_draws
        params = dict(head.named_parameters())
        torch.manual_seed(self.fx.meta["seeds"].get("train_rng", 1234))
        carry = head.initial_carry(self.fx.batch(1))
        # As many calls as the fixture recorded; one when it holds only the call-1 gradients.
        n_calls = max(self.fx.calls(prefix), 1)
        for call_no in range(1, n_calls + 1):
            carry, loss, metrics, outputs, _ = head(carry, self.fx.batch(call_no), return_keys=self.RETURN_KEYS)
            ((1 / self.fx.batch_size) * loss).backward()
            p = f"{prefix}.call{call_no}"
            for k, v in outputs.items():
                self.check(group, f"{p}.{k}", v)
            self.check(group, f"{p}.halted", carry.halted)
            self.check(group, f"{p}.steps", carry.steps)
            for k, v in carry.current_data.items():
                self.check(group, f"{p}.current_data.{k}", v)
            self.check(group, f"{p}.loss", loss)
            for k, v in metrics.items():
                self.check(group, f"{p}.metric.{k}", v)
            puzzle_emb = act.puzzle_emb
            if puzzle_emb is not None:
                self.check(group, f"{p}.local_ids", puzzle_emb.local_ids)
            grads = {k: p_.grad for k, p_ in params.items() if p_.grad is not None}
            if puzzle_emb is not None and puzzle_emb.local_weights.grad is not None:
                grads["model.inner.puzzle_emb.local_weights"] = puzzle_emb.local_weights.grad
            call1 = call1_grads or ("grad" if prefix == "train" else None)
            grad_prefix = call1 if (call1 and call_no == 1) else f"{p}.grad"
            for k, g in grads.items():
                self.check(grad_group if grad_prefix == call1 and grad_group else group, f"{grad_prefix}.{k}", g)
            head.zero_grad(set_to_none=True)
            if puzzle_emb is not None:
                puzzle_emb.local_weights.grad = None

    def run_variants(self) -> None:
        shared = self.fx.params()
        if self.fx.has("variant_learned.param.model.inner.embed_pos.embedding_weight"):
            params = {**shared, "model.inner.embed_pos.embedding_weight":
                      self.fx.records["variant_learned.param.model.inner.embed_pos.embedding_weight"]}
            self.run_eval("variant_learned", self.model(params, pos_encodings="learned"), "variant_learned.eval")
        if self.fx.has("variant_pe80.param.model.inner.puzzle_emb.weights"):
            table = self.fx.records["variant_pe80.param.model.inner.puzzle_emb.weights"]
            params = {**shared, "model.inner.puzzle_emb.weights": table}
            self.run_eval("variant_pe80", self.model(params, puzzle_emb_ndim=table.shape[1]), "variant_pe80.eval")

    def run_all(self) -> dict[str, GroupReport]:
        """Replay the procedures whose records the fixture holds; `self.absent` says why each other group
        was not compared."""
        fx = self.fx
        self.run_init()
        if fx.has_prefix("eval."):
            self.run_eval("eval", self.model(), "eval")
        if fx.has_prefix("train_noexplore."):
            self.run_train("train_noexplore", "train_noexplore", inject=False, halt_exploration_prob=0.0)
        injectable = fx.calls("train") > 0 and not fx.missing_draws()
        if injectable and (fx.train_outputs() or fx.has_prefix("grad.")):
            self.run_train("train", "train", inject=True, grad_group="grad")
        if fx.train_outputs() or (fx.has_prefix("grad.") and not injectable):
            # Without injection our draws come from torch's CPU RNG in the original's order, so they match
            # too. Without recorded draws this run is also the one that checks the call-1 gradients, which
            # do not depend on the exploration.
            self.run_train("train (torch RNG)", "train", inject=False, grad_group=None if injectable else "grad")
        self.run_variants()
        self.absent = {group: self._absent_reason(group) for group in self.GROUPS if group not in self.groups}
        return self.groups

    def _absent_reason(self, group: str) -> str:
        if group == "train" and self.fx.train_outputs():
            calls = ", ".join(map(str, self.fx.missing_draws()))
            return (f"the fixture holds no exploration draws (train.callN.explore_rand, explore_randint) "
                    f"for call {calls}; the torch RNG run below compares these calls")
        return f"the fixture holds no records {self.GROUPS[group]}"


GROUPS = ReferenceRun.GROUPS            # HRM's groups


def runner(fixture: Fixture) -> ReferenceRun:
    """The replay of the fixture's architecture."""
    if fixture.architecture == "trm":
        from hrm.reference.trm import TRMReferenceRun      # it builds on this module
        return TRMReferenceRun(fixture)
    return ReferenceRun(fixture)


def format_report(groups: dict[str, GroupReport], absent: dict[str, str] | None = None) -> str:
    lines = [f"{'group':<18} {'records':>7} {'failed':>6} {'max abs err':>12} {'max rel err':>12}  verdict"]
    for g in groups.values():
        floats = [c for c in g.comparisons if not c.exact]
        failed = sum(not c.ok for c in g.comparisons)
        max_abs = max((c.max_abs for c in floats), default=0.0)
        max_rel = max((c.max_rel for c in floats), default=0.0)
        lines.append(f"{g.name:<18} {len(g.comparisons):>7} {failed:>6} {max_abs:>12.3e} {max_rel:>12.3e}  "
                     f"{'PASS' if g.ok else 'FAIL'}")
        ulp_records = [c for c in g.comparisons if c.max_ulp is not None]
        if ulp_records:
            differing, elements = sum(c.differing for c in ulp_records), sum(c.elements for c in ulp_records)
            lines[-1] += (f"  ({differing:,} of {elements:,} elements not bit-identical, "
                          f"at most {max(c.max_ulp for c in ulp_records)} ulp)")
        for c in g.comparisons:
            if not c.ok:
                ulp = (f", {c.max_ulp} ulp, {c.differing} of {c.elements} differ (at most {INIT_MAX_ULP} ulp, "
                       f"{INIT_MAX_DIFFERING:.0%})") if c.max_ulp is not None else ""
                lines.append(f"    FAIL {c.name}: max abs {c.max_abs:.3e}{ulp}{' (must be exact)' if c.exact else ''}")
    for name, reason in (absent or {}).items():
        lines.append(f"absent: {name} — {reason}")
    return "\n".join(lines)


def spec():
    from hrm.cli_args import Command, Option
    return Command("hrm check-reference", "Compare hrm's model with a fixture recorded from the original code.", [
        Option("fixture", Path, positional=True, required=True,
               help="the fixture's JSON sidecar (its .safetensors lies beside it)")])


def main(argv: list[str]) -> int:
    args = spec().parse_or_exit(argv)
    if not args.fixture.is_file():
        print(f"hrm check-reference: {args.fixture}: no such file", file=sys.stderr)
        return 2
    try:
        fixture = Fixture(args.fixture)
        run = runner(fixture)
        groups = run.run_all()
    except (FixtureError, CheckpointError) as e:        # CheckpointError: param.* do not fit the config's model
        print(f"hrm check-reference: {e}", file=sys.stderr)
        return 2
    total = sum(len(g.comparisons) for g in groups.values())
    print(f"fixture {args.fixture} ({total} records compared; floats: atol {fixture.atol:g}, rtol {fixture.rtol:g}; "
          "integers and flags exact)")
    print(format_report(groups, run.absent))
    ok = all(g.ok for g in groups.values()) and total > 0
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1
