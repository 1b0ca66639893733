"""The MLX port against the original's recorded outputs: inference, a training step, weight conversion."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from reference_helpers import load_fixture, rel_error, require_module

mx = require_module("mlx.core", reason="MLX is not installed (pip install 'mlx[cpu]' on Linux)")
from mlx.utils import tree_flatten  # noqa: E402

from hrm.act_driver import run_act  # noqa: E402
from hrm.ports.mlx.convert import build, convert, load_mlx_model, mlx_name  # noqa: E402
from hrm.ports.mlx.model import MlxStep  # noqa: E402
from hrm.ports.mlx.train import AdamATan2, initial_carry, sparse_sign_sgd, train_step  # noqa: E402

TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def fixture():
    return load_fixture()


def mlx_model(fixture):
    return build(fixture.meta["config"], {k: v.numpy() for k, v in fixture.params().items()}, "fixture")


def test_eval_loop_matches_the_original(fixture):
    step = MlxStep(mlx_model(fixture))
    batch = fixture.batch(1)
    result = run_act(step, batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy(), 4)
    for k in range(4):
        p = f"eval.step{k + 1}"
        assert rel_error(result.step_q_halt[:, k], fixture.records[f"{p}.q_halt_logits"]) < TOLERANCE
        assert rel_error(result.step_q_continue[:, k], fixture.records[f"{p}.q_continue_logits"]) < TOLERANCE
    assert rel_error(result.logits, fixture.records["eval.step4.logits"]) < TOLERANCE
    assert np.array_equal(result.predictions, fixture.records["eval.step4.logits"].numpy().argmax(-1))


@pytest.mark.parametrize("prefix, inject, p", [("train_noexplore", False, 0.0), ("train", True, 0.1)])
def test_training_calls_match_the_original(fixture, prefix, inject, p):
    """Five training-mode calls without updates: outputs, halting, losses, metrics and gradients."""
    model = mlx_model(fixture)
    batch = lambda n: {k: mx.array(v.numpy()) for k, v in fixture.batch(n).items()}   # noqa: E731
    carry = initial_carry(model, batch(1))
    checked_grads = 0
    for n in range(1, 6):
        rec = lambda k: fixture.records[f"{prefix}.call{n}.{k}"].numpy()                 # noqa: E731
        draws = ((mx.array(rec("explore_rand")), mx.array(rec("explore_randint"))) if inject
                 else (mx.zeros(4), mx.full((4,), 2, mx.int32)))
        carry, loss, outputs, metrics, grads = train_step(model, AdamATan2(), carry, batch(n), global_batch_size=4,
                                                          halt_exploration_prob=p, draws=draws, update=False)
        for k, v in outputs.items():
            assert rel_error(v, rec(k)) < TOLERANCE, (n, k)
        assert rel_error(loss, rec("loss")) < TOLERANCE
        for k, v in metrics.items():
            if fixture.has(f"{prefix}.call{n}.metric.{k}"):
                assert rel_error(v, rec(f"metric.{k}")) < TOLERANCE, (n, k)
        assert np.array_equal(np.array(carry.halted), rec("halted"))
        assert np.array_equal(np.array(carry.steps), rec("steps"))
        grad_prefix = "grad" if (prefix == "train" and n == 1) else f"{prefix}.call{n}.grad"
        flat = dict(tree_flatten(grads))
        for key, ref in fixture.records.items():
            if key.startswith(grad_prefix + "."):
                name = key[len(grad_prefix) + 1:]
                ours = flat["puzzle_rows"] if name.endswith("puzzle_emb.local_weights") else flat[mlx_name(name)]
                assert rel_error(ours, ref) < TOLERANCE, (n, name)
                checked_grads += 1
    assert checked_grads == 21      # every parameter's gradient, and the puzzle rows'


def test_sign_sgd_matches_the_original(fixture):
    grads = mx.array(fixture.records["grad.model.inner.puzzle_emb.local_weights"].numpy())
    ids = fixture.records["train.call1.current_data.puzzle_identifiers"].numpy()
    table = mx.array(fixture.params()["model.inner.puzzle_emb.weights"].numpy())
    after = sparse_sign_sgd(table, ids, grads, lr=1e-2, weight_decay=0.1)
    assert rel_error(after, fixture.records["train.call1.signsgd_weights_after"]) < 1e-6


def test_adam_atan2_matches_the_torch_optimiser():
    from hrm.training.optimizers import AdamATan2 as TorchAdamATan2
    rng = np.random.default_rng(0)
    theta = rng.standard_normal((3, 5)).astype(np.float32)
    grads = [rng.standard_normal((3, 5)).astype(np.float32) for _ in range(4)]
    p = torch.nn.Parameter(torch.from_numpy(theta.copy()))
    torch_opt = TorchAdamATan2([p], lr=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    params = {"w": mx.array(theta)}
    mlx_opt = AdamATan2(learning_rate=1e-2, betas=(0.9, 0.95), weight_decay=0.1)
    for g in grads:
        p.grad = torch.from_numpy(g)
        torch_opt.step()
        params = mlx_opt.apply_gradients({"w": mx.array(g)}, params)
    assert rel_error(params["w"], p.detach().numpy()) < 1e-6


def test_training_step_updates_and_loss_falls(fixture):
    """A few real steps (both optimisers) on one batch: the loss falls and only touched puzzle rows move."""
    model = mlx_model(fixture)
    optimizer = AdamATan2(learning_rate=1e-3, weight_decay=0.1)
    batch = {k: mx.array(v.numpy()) for k, v in fixture.batch(2).items()}
    table_before = np.array(model.puzzle_emb.weight)
    h_init = np.array(model.H_init)
    losses = []
    for _ in range(6):
        carry = initial_carry(model, batch)                 # a fresh carry: the same segment every time
        _, loss, _, _, _ = train_step(model, optimizer, carry, batch, global_batch_size=4, draws=(mx.ones(4), mx.full((4,), 2, mx.int32)))
        losses.append(loss.item())
    assert losses[-1] < losses[0]
    touched = set(fixture.batch(2)["puzzle_identifiers"].tolist())
    moved = {i for i in range(len(table_before)) if not np.array_equal(table_before[i], np.array(model.puzzle_emb.weight[i]))}
    assert moved == touched
    assert np.array_equal(np.array(model.H_init), h_init)   # never trained


def _original_checkpoint(tmp_path, fixture):
    import yaml
    run = tmp_path / "orig"
    run.mkdir()
    state = {"_orig_mod." + k: v.clone() for k, v in fixture.params().items()}
    torch.save(state, run / "step_7")
    arch = {k: v for k, v in fixture.meta["config"].items() if k not in ("vocab_size", "num_puzzle_identifiers")}
    (run / "all_config.yaml").write_text(yaml.safe_dump({"arch": arch, "global_batch_size": 4}))
    return run / "step_7"


def test_conversion_from_hrm_and_original_checkpoints(tmp_path, fixture):
    from hrm.cli import main
    from hrm.models.checkpoint import save_weights
    from hrm.reference.hrm import ReferenceRun
    save_weights(ReferenceRun(fixture).model(), fixture.config(), tmp_path / "ckpt")
    batch = fixture.batch(1)
    expected = fixture.records["eval.step4.logits"]
    for source in (tmp_path / "ckpt", _original_checkpoint(tmp_path, fixture)):
        out = tmp_path / f"mlx-{source.name}"
        assert main(["export", "mlx", str(source), "--out", str(out)]) == 0
        for path in (source, out):           # read directly, and from the converted MLX files
            model, arch = load_mlx_model(path)
            result = run_act(MlxStep(model), batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy(), 4)
            assert rel_error(result.logits, expected) < TOLERANCE, path
            assert arch["num_puzzle_identifiers"] == 10


def test_conversion_rejects_weights_that_do_not_fit(fixture, tmp_path):
    params = {k: v.numpy() for k, v in fixture.params().items() if "puzzle_emb" not in k}
    with pytest.raises(ValueError, match="do not fit the MLX model"):
        build(fixture.meta["config"], params, "broken.safetensors")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="holds an hrm checkpoint"):
        convert("unused", tmp_path)


def test_load_step_gives_the_mlx_backend_for_eval(tmp_path, fixture):
    """The entry point `hrm eval backend=mlx` uses: a checkpoint in, an ACT runner out."""
    from hrm.export.backends import load_step
    from hrm.models.checkpoint import save_weights
    from hrm.reference.hrm import ReferenceRun
    save_weights(ReferenceRun(fixture).model(), fixture.config(), tmp_path / "ckpt")
    backend, arch = load_step("mlx", tmp_path / "ckpt")
    batch = fixture.batch(1)
    result = backend.run(batch["inputs"].numpy(), batch["puzzle_identifiers"].numpy(), False)
    assert arch.halt_max_steps == 4 and result.steps.tolist() == [4, 4, 4, 4]
    assert rel_error(result.logits, fixture.records["eval.step4.logits"]) < TOLERANCE
