"""The PyTorch model as an ACT step function, and the modules that the exporters trace.

    TorchStep            head.model.inner as an `hrm.act_driver.StepFunction` (NumPy in, NumPy out)
    OneStep              one ACT step as a plain tensor function: the graph that ONNX and MLIR export
    WholePuzzle          the whole eval loop in one graph, with `torch.while_loop`
    export_program       torch.export with a dynamic batch dimension, shared by the ONNX and MLIR routes

The carry is whatever the inner model declares (`carry_init()`: HRM's z_H, z_L), in that order. It is
reset on the host: a fresh row's carry is each initial state broadcast (`initial_carry`), which is what
the model's `reset_carry` does. NOTE: the exported step has no reset input because evaluation
and inference never reset a row mid-way (semantics §11.1); the graph stays the pure segment function.
"""
from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn

from hrm.act_driver import StepOutputs
from hrm.halting import says_halt
from hrm.models.layers import trunc_normal_init_

INITS = ("learned", "random")    # the initial latent state of a trajectory: the model's H_init/L_init, or drawn


def export_copy(inner: nn.Module) -> nn.Module:
    """A float32, eval-mode copy of the inner model fit for tracing.

    NOTE: the sparse embedding's training buffers (`local_weights`, `local_ids`) are dropped, since eval
    never reads them, and the remaining non-persistent buffers (the RoPE tables) are made persistent:
    torch-mlir's importer looks lifted buffers up in the state dict, where non-persistent ones are absent.
    """
    inner = copy.deepcopy(inner).to(torch.float32).eval()
    inner.forward_dtype = torch.float32
    for module in inner.modules():
        if hasattr(module, "cast_to"):
            module.cast_to = torch.float32
    puzzle_emb = getattr(inner, "puzzle_emb", None)
    if puzzle_emb is not None:
        del puzzle_emb.local_weights, puzzle_emb.local_ids
    for module in inner.modules():
        module._non_persistent_buffers_set.clear()
    for p in inner.parameters():
        p.requires_grad_(False)
    return inner


def fresh_carry(inner: nn.Module, batch_size: int, T: int) -> list[torch.Tensor]:
    """Each declared carry tensor of fresh rows, (B, T, D), in the declared order."""
    return [init.expand(batch_size, T, -1).clone() for init in inner.carry_init().values()]


class OneStep(nn.Module):
    """(*carry, inputs, puzzle_identifiers) -> (*new_carry, logits, q_halt, q_continue), float32.

    Graph names: the carry's own names (z_H, z_L for HRM), "new_" + them for the outputs.
    """

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = export_copy(inner)
        self.carry_names = list(self.inner.carry_init())
        self.input_names = self.carry_names + ["inputs", "puzzle_identifiers"]
        self.output_names = [f"new_{n}" for n in self.carry_names] + ["logits", "q_halt", "q_continue"]

    def forward(self, *tensors):
        *carry, inputs, puzzle_identifiers = tensors
        # NOTE: int64 ids for the puzzle table: indexing with int32 exports as an ONNX GatherND with int32
        # indices, which ONNX does not allow.
        batch = {"inputs": inputs, "puzzle_identifiers": puzzle_identifiers.to(torch.int64)}
        new_carry, logits, (q_halt, q_continue) = self.inner(dict(zip(self.carry_names, carry)), batch)
        return (*(new_carry[n] for n in self.carry_names), logits, q_halt, q_continue)

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        cfg = self.inner.config
        inputs = torch.randint(0, cfg.vocab_size, (batch_size, cfg.seq_len), dtype=torch.int32)
        ids = torch.zeros(batch_size, dtype=torch.int32)
        return (*fresh_carry(self.inner, batch_size, self.inner.carry_positions), inputs, ids)

    def dynamic_shapes(self, batch: torch.export.Dim, args) -> dict:
        return {"tensors": tuple({0: batch} for _ in args)}


class WholePuzzle(nn.Module):
    """The eval ACT loop as one graph: (inputs, puzzle_identifiers, halt_early) -> final and per-step outputs.

    Outputs: logits (B, S, V) of each row's last step, q_halt, q_continue (B,), steps (B,) int32,
    step_predictions (B, K, S) int64, step_q_halt and step_q_continue (B, K), K = halt_max_steps.
    `halt_early` (a bool scalar): False runs every row K steps (the eval protocol); True stops a row at
    the first step where the Q head says halt (the model's halt rule), and the loop once every row has stopped. Per-step entries
    after a row stopped hold NaN (floats) and -1 (predictions), as `hrm.act_driver.run_act` returns.
    """

    input_names = ["inputs", "puzzle_identifiers", "halt_early"]
    output_names = ["logits", "q_halt", "q_continue", "steps", "step_predictions", "step_q_halt", "step_q_continue"]

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.step = OneStep(inner)
        self.halt_max_steps = inner.config.halt_max_steps
        self.halt_rule = inner.config.halting_policy.rule

    def forward(self, inputs, puzzle_identifiers, halt_early):
        inner, K, n = self.step.inner, self.halt_max_steps, len(self.step.carry_names)
        B, S = inputs.shape
        T, V = inner.carry_positions, inner.config.vocab_size
        nan = torch.tensor(float("nan"))
        # The loop state, flat: k (steps taken so far), the carry of fresh rows, then the per-row results.
        state = (
            torch.zeros((), dtype=torch.int64),
            *fresh_carry(inner, B, T),
            torch.zeros(B, dtype=torch.bool),                         # halted
            torch.zeros(B, dtype=torch.int32),                        # steps per row
            torch.zeros(B, S, V),                                     # logits at each row's last step
            torch.zeros(B), torch.zeros(B),                           # q_halt, q_continue there
            torch.full((B, K, S), -1, dtype=torch.int64),             # per-step predictions
            nan.expand(B, K).clone(), nan.expand(B, K).clone(),       # per-step q_halt, q_continue
        )

        def keep_going(k, *rest):
            halted = rest[n]
            return (k < K) & ~halted.all()

        def body(k, *rest):
            carry, (halted, steps, logits, q_halt, q_continue, preds, step_qh, step_qc) = rest[:n], rest[n:]
            *new_carry, new_logits, qh, qc = self.step(*carry, inputs, puzzle_identifiers)
            run = ~halted                                             # rows that take this step
            at = (torch.arange(K) == k).unsqueeze(0) & run.unsqueeze(1)   # (B, K): this step, running rows
            preds = torch.where(at.unsqueeze(-1), new_logits.argmax(-1).unsqueeze(1), preds)
            halted = halted | (k + 1 >= K) | (halt_early & says_halt(self.halt_rule, qh, qc))
            return (k + 1,
                    *(torch.where(run[:, None, None], new, old) for new, old in zip(new_carry, carry)),
                    halted, steps + run.to(torch.int32),
                    torch.where(run[:, None, None], new_logits, logits),
                    torch.where(run, qh, q_halt), torch.where(run, qc, q_continue),
                    preds, torch.where(at, qh.unsqueeze(1), step_qh), torch.where(at, qc.unsqueeze(1), step_qc))

        _, *rest = torch.while_loop(keep_going, body, state)
        _, steps, logits, q_halt, q_continue, preds, step_qh, step_qc = rest[n:]
        return logits, q_halt, q_continue, steps, preds, step_qh, step_qc

    def example_inputs(self, batch_size: int = 2) -> tuple[torch.Tensor, ...]:
        *_, inputs, ids = self.step.example_inputs(batch_size)
        return inputs, ids, torch.tensor(False)

    def dynamic_shapes(self, batch: torch.export.Dim, args) -> dict:
        return {name: ({0: batch} if arg.ndim else None) for name, arg in zip(self.input_names, args)}


def export_program(module: OneStep | WholePuzzle, batch_size: int = 2) -> torch.export.ExportedProgram:
    """torch.export with a dynamic batch dimension on every batched input."""
    batch = torch.export.Dim("batch", min=1)
    args = module.example_inputs(batch_size)
    dynamic = module.dynamic_shapes(batch, args)
    with torch.no_grad():
        return torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)


class TorchStep:
    """The PyTorch inner model as an ACT step function: the reference the other backends are checked against,
    and the step `hrm eval`, the trainer's evaluation and `hrm solve` run.

    By default NumPy in, NumPy out (float32), like every other backend. With `device_carry=True` the carry
    stays a tensor on the model's device in the forward dtype between steps (no host round trip: what the
    evaluation runs); logits and Q logits still come back as float32 NumPy, the driver's currency.
    `forward` replaces the inner model's call (a compiled version of it: hrm.device.compiled).
    """

    name = "torch"

    def __init__(self, inner: nn.Module, device_carry: bool = False, forward=None, noise: float = 0.0,
                 noise_every_step: bool = False, seed: int = 0, init: str = "learned"):
        if init not in INITS:
            raise ValueError(f"init must be one of {', '.join(INITS)}, got {init!r}")
        self.inner = inner.eval()
        self.forward = forward or inner
        self.dtype = inner.forward_dtype
        init_states = inner.carry_init()
        self.device = next(iter(init_states.values())).device
        self.carry_init = {name: value.float().cpu().numpy() for name, value in init_states.items()}
        self.carry_positions = inner.carry_positions
        self.device_carry = device_carry
        # Diversity for breadth (hrm.evaluation.breadth): Gaussian noise of std `noise` on the fresh carry, and
        # with noise_every_step on the carry before every step, from a generator seeded `seed`; with
        # init="random", each row's initial states drawn afresh (see _random_init).
        self.noise, self.noise_every_step, self.init = noise, noise_every_step, init
        self.generator = torch.Generator(self.device).manual_seed(seed) if noise else None
        self.init_rng = torch.Generator().manual_seed(seed).get_state() if init == "random" else None
        self.reserved: dict[str, torch.Tensor] | None = None
        if device_carry or noise or init == "random":
            self.fresh_carry = self._fresh_carry

    def _noisy(self, value: torch.Tensor) -> torch.Tensor:
        draw = torch.randn(value.shape, generator=self.generator, device=value.device, dtype=torch.float32)
        return (value.float() + self.noise * draw).to(value.dtype)

    def _random_init(self, batch_size: int) -> dict[str, torch.Tensor]:
        """Each row's own initial state of every carry tensor, drawn as the models draw H_init and L_init
        (a truncated normal of std 1, one (D,) vector broadcast over the positions: hrm.models.hrm_act_v1).

        NOTE: drawn on the CPU, so that a seed gives the same trajectories on every device. The draw is
        hrm.models.layers.trunc_normal_init_ itself, which uses torch's global generator: it runs on a fork
        of it that holds this step's own state (init_rng), which it advances.
        """
        carry = {}
        for name, init in self.inner.carry_init().items():
            draw = torch.empty(batch_size, init.shape[-1])
            with torch.random.fork_rng(devices=[]):
                torch.set_rng_state(self.init_rng)
                trunc_normal_init_(draw, std=1.0)
                self.init_rng = torch.get_rng_state()
            carry[name] = draw.to(init.device, init.dtype)[:, None, :].expand(-1, self.carry_positions, -1).clone()
        return carry

    def reserve(self, batch_size: int) -> None:
        """Draw the fresh carry of `batch_size` rows now; the next fresh carries are its consecutive rows.

        NOTE: what lets a batch run in chunks (hrm.evaluation.breadth) draw exactly what it draws in one piece:
        the generators draw the whole batch's initial states and noise in one call, as an unchunked run would.
        """
        self.reserved = None
        self.reserved = self._fresh_carry(batch_size)

    def _fresh_carry(self, batch_size: int) -> dict[str, torch.Tensor]:
        if self.reserved is not None:
            carry = {name: value[:batch_size] for name, value in self.reserved.items()}
            rest = {name: value[batch_size:] for name, value in self.reserved.items()}
            if any(len(value) != batch_size for value in carry.values()):
                raise ValueError(f"{batch_size} fresh rows asked for, {len(next(iter(self.reserved.values())))} "
                                 "reserved")
            self.reserved = rest if len(next(iter(rest.values()))) else None
            return carry
        if self.init == "random":
            carry = self._random_init(batch_size)
        else:
            carry = dict(zip(self.inner.carry_init(), fresh_carry(self.inner, batch_size, self.carry_positions)))
        return {name: self._noisy(value) for name, value in carry.items()} if self.noise else carry

    def _tensor(self, a, dtype=None) -> torch.Tensor:
        if isinstance(a, torch.Tensor):
            return a.to(self.device, dtype)
        return torch.from_numpy(np.ascontiguousarray(a)).to(self.device, dtype)

    def __call__(self, carry, inputs, puzzle_identifiers) -> StepOutputs:
        with torch.inference_mode():
            batch = {"inputs": self._tensor(inputs), "puzzle_identifiers": self._tensor(puzzle_identifiers)}
            carry = {name: self._tensor(value, self.dtype) for name, value in carry.items()}
            if self.noise and self.noise_every_step:
                carry = {name: self._noisy(value) for name, value in carry.items()}
            new_carry, logits, (q_halt, q_continue) = self.forward(carry, batch)
            residual = None
            if self.device_carry:
                # NOTE: the answer latent is the first declared carry tensor (z_H: what lm_head reads, in HRM,
                # TRM and the baseline); its change in a step is the convergence criterion of select=residual.
                answer = next(iter(new_carry))
                residual = (new_carry[answer].float() - carry[answer].float()).flatten(1).norm(dim=1).cpu().numpy()

        def array(t):
            return t.float().cpu().numpy()
        if not self.device_carry:
            new_carry = {name: array(value) for name, value in new_carry.items()}
        return StepOutputs(dict(new_carry), array(logits), array(q_halt), array(q_continue), residual)
