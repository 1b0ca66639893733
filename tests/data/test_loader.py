"""The loader on a small dataset written by hand in the original's format (np.save + json, no manifest)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hrm.data import DatasetFormatError, PuzzleDataset, dataset_hash, load_metadata

SEQ = 4
# Three groups; puzzle sizes per group. Puzzle p's examples hold the value 2 + p in every input cell and
# label 3 + (p % 2), so a row tells which puzzle it came from.
GROUPS = [[3, 2], [1], [4, 1, 2]]


def write_original_dataset(root, ignore_label_id=0):
    sizes = [s for group in GROUPS for s in group]
    puzzle_indices = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int32)
    group_indices = np.concatenate([[0], np.cumsum([len(g) for g in GROUPS])]).astype(np.int32)
    inputs = np.concatenate([np.full((s, SEQ), 2 + p, np.uint8) for p, s in enumerate(sizes)])
    labels = np.concatenate([np.full((s, SEQ), 3 + p % 2, np.uint8) for p, s in enumerate(sizes)])
    labels[:, -1] = 0                                   # a PAD label, ignored when ignore_label_id = 0
    identifiers = np.arange(1, len(sizes) + 1, dtype=np.int32)
    for split in ("train", "test"):
        (root / split).mkdir(parents=True)
        for name, array in dict(inputs=inputs, labels=labels, puzzle_identifiers=identifiers,
                                puzzle_indices=puzzle_indices, group_indices=group_indices).items():
            np.save(root / split / f"all__{name}.npy", array)
        with open(root / split / "dataset.json", "w") as f:
            json.dump(dict(pad_id=0, ignore_label_id=ignore_label_id, blank_identifier_id=0, vocab_size=12,
                           seq_len=SEQ, num_puzzle_identifiers=len(sizes) + 1, total_groups=len(GROUPS),
                           mean_puzzle_examples=len(inputs) / len(sizes), sets=["all"]), f)
    with open(root / "identifiers.json", "w") as f:
        json.dump(["<blank>"] + [f"p{p}" for p in range(len(sizes))], f)
    return puzzle_indices, group_indices


@pytest.fixture
def dataset(tmp_path):
    write_original_dataset(tmp_path)
    return tmp_path


def batches(ds):
    return [(s, {k: v.clone() for k, v in b.items()}, n) for s, b, n in ds]


def test_metadata_and_hash_without_manifest(dataset):
    meta = load_metadata(dataset, "train")
    assert (meta.seq_len, meta.vocab_size, meta.num_puzzle_identifiers, meta.total_groups) == (SEQ, 12, 7, 3)
    first = dataset_hash(dataset)
    assert first == dataset_hash(dataset) and len(first) == 64
    np.save(dataset / "test" / "all__labels.npy", np.zeros((13, SEQ), np.uint8))
    assert dataset_hash(dataset) != first


def test_train_batches_follow_the_original_semantics(dataset):
    ds = PuzzleDataset(dataset, "train", global_batch_size=4, seed=3, epochs_per_iter=5)
    out = batches(ds)
    assert out, "5 epochs of 3 groups hold enough examples for several batches of 4"
    sizes = [s for group in GROUPS for s in group]
    group_of = [g for g, group in enumerate(GROUPS) for _ in group]
    visits = 0
    for set_name, batch, effective in out:
        assert set_name == "all" and effective == 4
        assert all(v.dtype == torch.int32 for v in batch.values())
        assert batch["inputs"].shape == (4, SEQ) and batch["puzzle_identifiers"].shape == (4,)
        puzzle = batch["inputs"][:, 0] - 2
        # The identifier of every row is its puzzle's; PAD labels became -100.
        assert torch.equal(batch["puzzle_identifiers"], puzzle + 1)
        assert (batch["labels"][:, -1] == -100).all() and (batch["labels"][:, :-1] == 3 + puzzle[:, None] % 2).all()
        # Whole puzzles, except that one puzzle may be cut to fill the batch (a puzzle drawn on two
        # consecutive visits of its group appears twice).
        present, counts = torch.unique(puzzle, return_counts=True)
        cut = [int(p) for p, c in zip(present, counts) if int(c) % sizes[int(p)]]
        assert len(cut) <= 1
        visits += len(present)
    # One puzzle per group visit: never more visits than epochs x groups.
    assert visits <= 5 * len(GROUPS)
    # Same seed, same batches; another seed, other batches; the next iteration differs from the first.
    again = batches(PuzzleDataset(dataset, "train", global_batch_size=4, seed=3, epochs_per_iter=5))
    assert all(torch.equal(a[1]["inputs"], b[1]["inputs"]) for a, b in zip(out, again))
    other = batches(PuzzleDataset(dataset, "train", global_batch_size=4, seed=4, epochs_per_iter=5))
    assert any(not torch.equal(a[1]["inputs"], b[1]["inputs"]) for a, b in zip(out, other))
    second = batches(ds)
    assert any(not torch.equal(a[1]["inputs"], b[1]["inputs"]) for a, b in zip(out, second))
    assert group_of  # (documentation: groups index puzzles through group_indices)


def test_drop_last_short_batch(dataset):
    # 13 examples at most in one epoch: a batch of 64 can never be filled, so nothing is yielded.
    assert batches(PuzzleDataset(dataset, "train", global_batch_size=64, epochs_per_iter=1)) == []


def test_ranks_partition_the_global_batch(dataset):
    whole = batches(PuzzleDataset(dataset, "train", global_batch_size=4, seed=1, epochs_per_iter=4))
    parts = [batches(PuzzleDataset(dataset, "train", global_batch_size=4, seed=1, epochs_per_iter=4, rank=r, world_size=2))
             for r in range(2)]
    for i, (_, batch, _) in enumerate(whole):
        for key in batch:
            joined = torch.cat([parts[0][i][1][key], parts[1][i][1][key]])
            # Rows are the same multiset (each rank sorts its rows for memory-mapped reads).
            assert sorted(map(tuple, joined.reshape(4, -1).tolist())) == sorted(map(tuple, batch[key].reshape(4, -1).tolist()))


def test_exact_resume_mid_iteration(dataset):
    ds = PuzzleDataset(dataset, "train", global_batch_size=3, seed=7, epochs_per_iter=6)
    first_pass = batches(ds)
    reference = first_pass + batches(ds)                  # iterations 1 and 2
    resumed_from = len(first_pass) + 2                    # two batches into iteration 2
    ds2 = PuzzleDataset(dataset, "train", global_batch_size=3, seed=7, epochs_per_iter=6)
    consumed = batches(ds2)
    it = iter(ds2)
    consumed += [next(it), next(it)]
    state = ds2.state_dict()
    assert state["iterations"] == 2 and state["batches_yielded"] == 2 and state["in_progress"]
    ds3 = PuzzleDataset(dataset, "train", global_batch_size=3, seed=7, epochs_per_iter=6)
    ds3.load_state_dict(state)
    rest = batches(ds3)
    assert len(consumed) + len(rest) == len(reference)
    for (_, a, _), (_, b, _) in zip(consumed[:resumed_from] + rest, reference):
        assert torch.equal(a["inputs"], b["inputs"]) and torch.equal(a["puzzle_identifiers"], b["puzzle_identifiers"])
    # After a completed pass the next one is a new iteration.
    ds4 = PuzzleDataset(dataset, "train", global_batch_size=3, seed=7, epochs_per_iter=6)
    ds4.load_state_dict(ds.state_dict())
    assert ds4.state_dict()["iterations"] == 2 and not ds4.state_dict()["in_progress"]
    with pytest.raises(ValueError, match="seed"):
        PuzzleDataset(dataset, "train", global_batch_size=3, seed=8, epochs_per_iter=6).load_state_dict(state)


def test_test_mode_pads_and_reports_real_sizes(dataset):
    puzzle_indices, _ = write_original_dataset(dataset / "copy")
    ds = PuzzleDataset(dataset, "test", global_batch_size=4, test_set_mode=True)
    out = batches(ds)
    assert [n for _, _, n in out] == [4, 4, 4, 1]                       # 13 examples
    last = out[-1][1]
    assert last["inputs"].shape == (4, SEQ)
    assert (last["inputs"][1:] == 0).all() and (last["labels"][1:] == -100).all() and (last["puzzle_identifiers"][1:] == 0).all()
    rows = torch.cat([b["inputs"][:n] for _, b, n in out])
    ids = torch.cat([b["puzzle_identifiers"][:n] for _, b, n in out])
    expected = np.searchsorted(puzzle_indices, np.arange(13), side="right")     # identifier = puzzle + 1
    assert ids.tolist() == expected.tolist() and (rows[:, 0] - 1).tolist() == expected.tolist()
    # Two ranks: each gets its slice of every chunk, padded; local sizes add up to the real sizes.
    parts = [list(PuzzleDataset(dataset, "test", global_batch_size=4, rank=r, world_size=2,
                                test_set_mode=True).iter_test_batches()) for r in range(2)]
    assert [a.local_size + b.local_size for a, b in zip(*parts)] == [4, 4, 4, 1]
    assert [a.first_example for a in parts[1]] == [2, 6, 10, 13]   # the last slice of rank 1 is empty


def test_errors_name_the_file(dataset, tmp_path):
    with open(dataset / "train" / "dataset.json", "w") as f:
        f.write("{not json")
    with pytest.raises(DatasetFormatError, match=r"train/dataset.json: malformed JSON at line 1"):
        PuzzleDataset(dataset, "train", global_batch_size=4)
    with pytest.raises(DatasetFormatError, match="not found"):
        PuzzleDataset(tmp_path / "missing", "train", global_batch_size=4)
    np.save(dataset / "test" / "all__puzzle_indices.npy", np.array([0, 3, 2, 13], np.int32))
    with pytest.raises(DatasetFormatError, match="all__puzzle_indices.npy"):
        list(PuzzleDataset(dataset, "test", global_batch_size=4, test_set_mode=True))
    with pytest.raises(ValueError, match="multiple of world_size"):
        PuzzleDataset(dataset, "test", global_batch_size=3, world_size=2)


def test_check_accepts_an_original_dataset_and_catches_bad_tokens(dataset):
    from hrm.data.check import check_dataset

    lines = check_dataset(dataset)
    assert any("manifest: none" in line for line in lines) and lines[-1].endswith(dataset_hash(dataset))
    inputs = np.load(dataset / "train" / "all__inputs.npy")
    inputs[5, 2] = 12                                                  # vocab_size is 12
    np.save(dataset / "train" / "all__inputs.npy", inputs)
    with pytest.raises(DatasetFormatError, match=r"train/all__inputs.npy: token 12 at example 5, position 2"):
        check_dataset(dataset)
