"""MLIR exports of the fixture model (via `hrm export mlir`), compiled by IREE for this CPU and run."""
from __future__ import annotations

import numpy as np
import pytest
from reference_helpers import load_fixture, rel_error, require_module, save_fixture_weights

require_module("torch_mlir", reason="torch-mlir is not installed (pip install 'hrm[ports]')")
require_module("iree.compiler", reason="iree-base-compiler is not installed (pip install 'hrm[ports]')")
require_module("iree.runtime", reason="iree-base-runtime is not installed (pip install 'hrm[ports]')")

from hrm.act_driver import run_act  # noqa: E402
from hrm.export.mlir_export import IreeStep  # noqa: E402

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture():
    return load_fixture()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory, fixture):
    return save_fixture_weights(tmp_path_factory.mktemp("ckpt"))


def export_and_check(fixture, checkpoint, out, *flags):
    from hrm.cli import main
    assert main(["export", "mlir", str(checkpoint), "--out", str(out), *flags]) == 0
    vmfb = out.with_suffix(".vmfb")
    assert vmfb.is_file()
    step = IreeStep(vmfb)
    batch = fixture.batch(1)
    result = run_act(step, batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy(), step.halt_max_steps)
    for k in range(4):
        p = f"eval.step{k + 1}"
        assert rel_error(result.step_q_halt[:, k], fixture.records[f"{p}.q_halt_logits"]) < TOLERANCE
    assert rel_error(result.logits, fixture.records["eval.step4.logits"]) < TOLERANCE
    return step


def test_linalg_on_tensors_compiles_with_iree_and_matches(fixture, checkpoint, tmp_path):
    step = export_and_check(fixture, checkpoint, tmp_path / "step.mlir")
    text = (tmp_path / "step.mlir").read_text()
    assert "func.func @step" in text and "linalg." in text and "!torch." not in text   # no torch-dialect types left
    # Dynamic batch: 1 row and 20 rows through the same module, early halting on.
    from hrm.export.torch_step import TorchStep
    from hrm.reference.hrm import ReferenceRun
    torch_step = TorchStep(ReferenceRun(fixture).model().model.inner)
    inputs = np.concatenate([fixture.batch(n)["inputs"].numpy() for n in range(1, 6)])
    ids = np.concatenate([fixture.batch(n)["puzzle_identifiers"].numpy() for n in range(1, 6)])
    for rows in (1, 20):
        ours = run_act(step, inputs[:rows], ids[:rows], 4, halt_early=True)
        ref = run_act(torch_step, inputs[:rows], ids[:rows], 4, halt_early=True)
        assert np.array_equal(ours.steps, ref.steps)
        assert rel_error(ours.logits, ref.logits) < TOLERANCE


@pytest.mark.slow
def test_torch_dialect_compiles_with_iree_and_matches(fixture, checkpoint, tmp_path):
    export_and_check(fixture, checkpoint, tmp_path / "step.mlirbc", "--dialect", "torch", "--bytecode")
