"""`torch.compile` with one fallback: compile a module, and on the first failure warn once and run eagerly.

    forward = Compiled(module)       # a callable; forward(...) runs the compiled module, or the eager one
    forward.compiled                 # True while the compiled version is in use

Used wherever `compile=true` applies: the trainer's forward, the evaluation step (hrm eval, the trainer's
evaluation, hrm solve). A compiler error surfaces at the first call (tracing happens then), before the call
has changed any state, so running the same call eagerly is equivalent. Out-of-memory is not a compiler
failure and is raised.
"""
from __future__ import annotations

import torch

from hrm.device import warn_compile_failed


class Compiled:
    def __init__(self, module: torch.nn.Module, where: str = ""):
        import torch._inductor.config as inductor_config
        # NOTE: compiled code draws random numbers (ACT exploration) from torch's generator, like eager code,
        # so a compiled run is reproducible and resumes exactly.
        inductor_config.fallback_random = True
        self.module = module
        self.where = where
        self._compiled = torch.compile(module, dynamic=False)

    @property
    def compiled(self) -> bool:
        return self._compiled is not None

    def __call__(self, *args, **kwargs):
        if self._compiled is not None:
            try:
                return self._compiled(*args, **kwargs)
            except torch.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - any compiler failure; the eager module still works
                warn_compile_failed(e, self.where)
                self._compiled = None
        return self.module(*args, **kwargs)

    def train(self, mode: bool = True):
        self.module.train(mode)
        return self

    def eval(self):
        return self.train(False)


def maybe_compiled(module: torch.nn.Module, enabled: bool, where: str = ""):
    """`Compiled(module)` when enabled, else the module itself."""
    return Compiled(module, where) if enabled else module
