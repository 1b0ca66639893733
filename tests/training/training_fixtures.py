"""Small datasets and configs for the training tests (tiny models: they run in seconds on one core)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hrm.data.format import DatasetWriter
from hrm.training.config import TrainConfig, load_config

VOCAB = 8            # 0 = pad, tokens 1..7
# The label at position i is MAPPING[input[S-1-i]]: reverse the sequence and map each token by a fixed
# bijection. It needs attention across positions; a tiny model learns it in a few hundred steps,
# while a broken optimiser, loss or loop leaves exact accuracy at chance (7^-4 per row).
MAPPING = np.array([0, 3, 6, 2, 5, 1, 4, 7], dtype=np.uint8)


def make_dataset(path: Path, n_train: int = 256, n_test: int = 64, seq_len: int = 4, num_ids: int = 4,
                 seed: int = 0) -> Path:
    """Train and test splits of one-example puzzles, grouped in pairs, with `num_ids` puzzle identifiers."""
    rng = np.random.default_rng(seed)
    with DatasetWriter(path, builder="test-mapping", arguments={"seed": seed}, seed=seed) as writer:
        for split, n in (("train", n_train), ("test", n_test)):
            out = writer.split(split, seq_len=seq_len)
            for g in range(n // 2):
                inputs = rng.integers(1, VOCAB, size=(2, seq_len), dtype=np.uint8)
                ids = [1 + (2 * g) % num_ids, 1 + (2 * g + 1) % num_ids]
                out.add_group(inputs, MAPPING[inputs[:, ::-1]], puzzle_sizes=[1, 1], identifiers=ids)
        writer.commit(identifiers=["<blank>"] + [f"p{i}" for i in range(num_ids)], pad_id=0,
                      ignore_label_id=None, blank_identifier_id=0, vocab_size=VOCAB)
    return path


def tiny_config(data_path: Path, run_dir: Path, *overrides: str) -> TrainConfig:
    argv = [f"data_path={data_path}", f"checkpoint_path={run_dir}", "global_batch_size=16", "epochs=4",
            "eval_interval=2", "lr=3e-3", "puzzle_emb_lr=1e-2", "lr_warmup_steps=5", "weight_decay=0.1",
            "puzzle_emb_weight_decay=0.1", "arch.hidden_size=32", "arch.num_heads=2", "arch.expansion=2",
            "arch.H_layers=1", "arch.L_layers=1", "arch.H_cycles=1", "arch.L_cycles=2", "arch.halt_max_steps=2",
            "arch.puzzle_emb_ndim=32", "arch.forward_dtype=float32", "device=cpu", "logging.progress=false",
            "logging.log_interval=1", *overrides]
    return load_config(None, argv)
