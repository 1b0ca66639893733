"""The on-disk dataset format (formats §1), shared with the original implementation, and its writer.

    <root>/identifiers.json                     identifier id -> puzzle name ("<blank>" for 0)
    <root>/manifest.json                        hrm only: builder, arguments, seed, content hashes
    <root>/<split>/dataset.json                 DatasetMetadata
    <root>/<split>/<set>__inputs.npy            (examples, seq_len) uint8
    <root>/<split>/<set>__labels.npy            (examples, seq_len) uint8
    <root>/<split>/<set>__puzzle_identifiers.npy  (puzzles,) int32
    <root>/<split>/<set>__puzzle_indices.npy      (puzzles + 1,) int32, puzzle p owns examples [pi[p], pi[p+1])
    <root>/<split>/<set>__group_indices.npy       (groups + 1,) int32, group g owns puzzles [gi[g], gi[g+1])

`DatasetWriter` builds a dataset in a temporary folder beside the target and renames it into place only
when everything, manifest included, has been written: a failed build leaves nothing behind. Inputs and
labels are streamed to disk group by group, so a build never holds the whole dataset in memory.
"""
from __future__ import annotations

import json
import math
import os
import shutil
from array import array
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hrm.files import check_parent_dirs, make_partial_dir

SPLITS = ("train", "test")
ARRAY_FIELDS = ("inputs", "labels", "puzzle_identifiers", "puzzle_indices", "group_indices")
BLANK_IDENTIFIER = "<blank>"
# The label the loader gives unsupervised positions (the dataset's ignore_label_id, and padding rows): the
# loss and the metrics skip it (semantics §8.1). Defined here, with the format, so data imports no model code.
IGNORE_LABEL_ID = -100


class DatasetFormatError(ValueError):
    """A dataset on disk does not follow the format; the message names the file and what is wrong."""


@dataclass
class DatasetMetadata:
    """`<split>/dataset.json`: the original's PuzzleDatasetMetadata, field for field and in its order."""
    pad_id: int
    ignore_label_id: int | None
    blank_identifier_id: int
    vocab_size: int
    seq_len: int
    num_puzzle_identifiers: int
    total_groups: int
    mean_puzzle_examples: float
    sets: list[str] = field(default_factory=lambda: ["all"])

    @classmethod
    def from_dict(cls, raw: Any, source: str) -> "DatasetMetadata":
        if not isinstance(raw, dict):
            raise DatasetFormatError(f"{source}: expected a JSON object, got {type(raw).__name__}")
        missing = [name for name in cls.__dataclass_fields__ if name not in raw]
        if missing:
            raise DatasetFormatError(f"{source}: missing field(s) {', '.join(missing)}")
        ints = ("pad_id", "blank_identifier_id", "vocab_size", "seq_len", "num_puzzle_identifiers", "total_groups")
        for name in ints:
            if not isinstance(raw[name], int) or isinstance(raw[name], bool):
                raise DatasetFormatError(f"{source}: field '{name}' must be an integer, got {raw[name]!r}")
        if raw["ignore_label_id"] is not None and not isinstance(raw["ignore_label_id"], int):
            raise DatasetFormatError(f"{source}: field 'ignore_label_id' must be an integer or null")
        if not isinstance(raw["mean_puzzle_examples"], (int, float)):
            raise DatasetFormatError(f"{source}: field 'mean_puzzle_examples' must be a number")
        sets = raw["sets"]
        if not isinstance(sets, list) or not sets or not all(isinstance(s, str) and s for s in sets):
            raise DatasetFormatError(f"{source}: field 'sets' must be a non-empty list of names")
        # Extra keys are ignored, as the original's pydantic model does.
        return cls(**{name: raw[name] for name in cls.__dataclass_fields__})

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_metadata(data_path: str | os.PathLike, split: str = "train") -> DatasetMetadata:
    """Read and validate `<data_path>/<split>/dataset.json`."""
    path = Path(data_path) / split / "dataset.json"
    return DatasetMetadata.from_dict(read_json(path), str(path))


def read_json(path: Path, error: type[Exception] | None = None) -> Any:
    """A JSON file, or `error` (default DatasetFormatError) naming the file and the line and column."""
    error = error or DatasetFormatError
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise error(f"{path}: malformed JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start})") from None
    except RecursionError:  # json's decoder recurses once per nesting level
        raise error(f"{path}: JSON nested too deeply") from None
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text ({e})") from None


def load_identifiers(data_path: str | os.PathLike) -> list[str]:
    path = Path(data_path) / "identifiers.json"
    identifiers = read_json(path)
    if not isinstance(identifiers, list) or not all(isinstance(name, str) for name in identifiers):
        raise DatasetFormatError(f"{path}: expected a JSON list of puzzle names")
    return identifiers


def array_path(data_path: str | os.PathLike, split: str, set_name: str, field_name: str) -> Path:
    return Path(data_path) / split / f"{set_name}__{field_name}.npy"


def load_set_arrays(data_path: str | os.PathLike, split: str, set_name: str) -> dict[str, np.ndarray]:
    """The five arrays of one set: inputs and labels memory-mapped, the indices in RAM (as the original)."""
    arrays = {}
    for name in ARRAY_FIELDS:
        path = array_path(data_path, split, set_name, name)
        npy_header(path)  # refuses a truncated file or a header that lies, before np.load allocates
        try:
            arrays[name] = np.load(path, mmap_mode="r" if name in ("inputs", "labels") else None)
        except (ValueError, EOFError, OSError) as error:
            raise DatasetFormatError(f"{path}: not a readable .npy array ({error})") from None
    return arrays


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype, bool, int]:
    """(shape, dtype, fortran_order, data offset) of a .npy file, without reading its data.

    The header must describe exactly the bytes the file holds: a header that claims a larger shape
    than the file (truncated, or corrupt) is refused here, so that no caller ever allocates for it.
    """
    if not path.is_file():
        raise DatasetFormatError(f"{path}: file not found")
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
            reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, fortran_order, dtype = reader(f)
        except Exception as error:  # numpy parses the header with tokenize and ast: ValueError, SyntaxError,
            # TokenError, MemoryError (a huge literal) ... all mean the same thing here
            reason = " ".join(str(error).split())[:200]  # numpy quotes the header, which may hold newlines
            raise DatasetFormatError(f"{path}: not a valid .npy file ({reason})") from None
        offset = f.tell()
    if dtype.hasobject:
        raise DatasetFormatError(f"{path}: holds Python objects (dtype {dtype}), not numbers")
    expected = math.prod(shape) * dtype.itemsize          # Python ints: no overflow for absurd shapes
    held = path.stat().st_size - offset
    if held != expected:
        raise DatasetFormatError(f"{path}: holds {held} data bytes, its header {tuple(shape)} {dtype} needs {expected}"
                                 + (" (truncated?)" if held < expected else ""))
    return shape, dtype, fortran_order, offset


# ---------------------------------------------------------------------------------------------------
# Writing

# The .npy header of a streamed array is written last, when its length is known, into this many
# reserved bytes (a multiple of 64, as the format asks; ample for any 2-D shape).
_NPY_HEADER_BYTES = 128


class _StreamedNpy:
    """A 2-D uint8 .npy file written row-block by row-block; the header is filled in on close."""

    def __init__(self, path: Path, row_width: int):
        self.path = path
        self.row_width = row_width
        self.rows = 0
        self.file = open(path, "wb")
        self.file.write(b"\0" * _NPY_HEADER_BYTES)

    def append(self, block: np.ndarray) -> None:
        if block.dtype != np.uint8 or block.ndim != 2 or block.shape[1] != self.row_width:
            raise ValueError(f"expected a (n, {self.row_width}) uint8 block, got {block.shape} {block.dtype}")
        self.file.write(np.ascontiguousarray(block).tobytes())
        self.rows += block.shape[0]

    def close(self) -> None:
        header = repr({"descr": "|u1", "fortran_order": False, "shape": (self.rows, self.row_width)})
        prefix = b"\x93NUMPY\x01\x00"
        body_len = _NPY_HEADER_BYTES - len(prefix) - 2
        body = header.encode("latin1").ljust(body_len - 1) + b"\n"
        assert len(body) == body_len, "npy header does not fit the reserved space"
        self.file.seek(0)
        self.file.write(prefix + body_len.to_bytes(2, "little") + body)
        self.file.close()
        # Round-trip the header through numpy's own parser, so a mistake here cannot go unnoticed.
        with open(self.path, "rb") as f:
            np.lib.format.read_magic(f)
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        assert shape == (self.rows, self.row_width) and dtype == np.uint8


class SplitWriter:
    """Streams the groups of one split's single set ("all") to disk."""

    def __init__(self, split_dir: Path, seq_len: int, set_name: str = "all"):
        split_dir.mkdir(parents=True, exist_ok=False)
        self.split_dir, self.seq_len, self.set_name = split_dir, seq_len, set_name
        self.inputs = _StreamedNpy(split_dir / f"{set_name}__inputs.npy", seq_len)
        self.labels = _StreamedNpy(split_dir / f"{set_name}__labels.npy", seq_len)
        self.puzzle_identifiers = array("q")
        self.puzzle_indices = array("q", [0])
        self.group_indices = array("q", [0])

    @property
    def num_examples(self) -> int:
        return self.inputs.rows

    @property
    def num_puzzles(self) -> int:
        return len(self.puzzle_identifiers)

    @property
    def num_groups(self) -> int:
        return len(self.group_indices) - 1

    def add_group(self, inputs: np.ndarray, labels: np.ndarray, puzzle_sizes: np.ndarray | list[int],
                  identifiers: np.ndarray | list[int]) -> None:
        """One group: puzzle p of the group owns the next puzzle_sizes[p] rows of inputs/labels."""
        puzzle_sizes = np.asarray(puzzle_sizes, dtype=np.int64)
        identifiers = np.asarray(identifiers, dtype=np.int64)
        if inputs.shape != labels.shape or inputs.shape[0] != int(puzzle_sizes.sum()):
            raise ValueError("inputs, labels and puzzle sizes disagree")
        if len(puzzle_sizes) != len(identifiers) or len(puzzle_sizes) == 0 or (puzzle_sizes <= 0).any():
            raise ValueError("a group needs one or more puzzles, each with one or more examples")
        self.inputs.append(inputs)
        self.labels.append(labels)
        self.puzzle_indices.extend((self.num_examples - inputs.shape[0] + np.cumsum(puzzle_sizes)).tolist())
        self.puzzle_identifiers.extend(identifiers.tolist())
        self.group_indices.append(self.num_puzzles)

    def close(self, metadata_fields: dict[str, Any]) -> DatasetMetadata:
        self.inputs.close()
        self.labels.close()
        for name in ("puzzle_identifiers", "puzzle_indices", "group_indices"):
            values = np.asarray(getattr(self, name), dtype=np.int64)
            if values.size and values.max() > np.iinfo(np.int32).max:
                raise ValueError(f"{name} overflows int32")
            np.save(self.split_dir / f"{self.set_name}__{name}.npy", values.astype(np.int32))
        metadata = DatasetMetadata(
            seq_len=self.seq_len,
            total_groups=self.num_groups,
            mean_puzzle_examples=(self.num_examples / self.num_puzzles) if self.num_puzzles else 0,
            sets=[self.set_name],
            **metadata_fields,
        )
        write_json(self.split_dir / "dataset.json", metadata.to_dict())
        return metadata


def write_json(path: Path, value: Any) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(value, f)


def check_output_dir(output_dir: str | os.PathLike) -> None:
    """A dataset can be built at `output_dir`: nothing is there, and no ancestor is a regular file."""
    check_parent_dirs(output_dir)
    if Path(output_dir).exists():
        raise FileExistsError(f"{output_dir}: output folder already exists; choose another --output-dir or remove it")


class DatasetWriter:
    """Build a dataset in a temporary folder; `commit()` renames it to `output_dir`.

        with DatasetWriter(output_dir, builder="sudoku", arguments=vars(args), seed=args.seed) as writer:
            train = writer.split("train", seq_len=81)
            train.add_group(inputs, labels, puzzle_sizes=[1, 1], identifiers=[0, 0])
            ...
            writer.commit(identifiers=["<blank>"], pad_id=0, ignore_label_id=0, blank_identifier_id=0, vocab_size=11)

    Leaving the block without commit() (an exception) deletes the temporary folder.
    """

    def __init__(self, output_dir: str | os.PathLike, builder: str, arguments: dict[str, Any], seed: int | None):
        self.output_dir = Path(output_dir)
        check_output_dir(self.output_dir)
        self.output_dir.parent.mkdir(parents=True, exist_ok=True)
        self.builder, self.arguments, self.seed = builder, arguments, seed
        # Removes what earlier runs killed mid-build (SIGKILL, power loss) left behind for this target.
        self.temp_dir = make_partial_dir(self.output_dir)
        self.splits: dict[str, SplitWriter] = {}
        self.committed = False

    def split(self, name: str, seq_len: int) -> SplitWriter:
        if name in self.splits:
            raise ValueError(f"split {name!r} is already open")
        self.splits[name] = SplitWriter(self.temp_dir / name, seq_len)
        return self.splits[name]

    def commit(self, identifiers: list[str], **metadata_fields: Any) -> Path:
        from hrm.data.manifest import write_manifest

        num_ids = len(identifiers)
        for split in SPLITS:
            if split not in self.splits:
                raise ValueError(f"a dataset needs both splits; {split!r} was not written")
        for split_writer in self.splits.values():
            split_writer.close(dict(metadata_fields, num_puzzle_identifiers=num_ids))
        write_json(self.temp_dir / "identifiers.json", identifiers)
        write_manifest(self.temp_dir, builder=self.builder, arguments=self.arguments, seed=self.seed)
        os.chmod(self.temp_dir, 0o755)  # mkdtemp makes it private; the dataset is an ordinary folder
        os.rename(self.temp_dir, self.output_dir)  # atomic on one file system; fails if the target appeared
        self.committed = True
        return self.output_dir

    def __enter__(self) -> "DatasetWriter":
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if not self.committed:
            for split_writer in self.splits.values():
                for stream in (split_writer.inputs, split_writer.labels):
                    try:
                        stream.file.close()
                    except OSError:  # flushing the last block fails again on a full disk; it is deleted anyway
                        pass
            shutil.rmtree(self.temp_dir, ignore_errors=True)
        if isinstance(exc, OSError) and exc.errno is not None:
            # The failing file lies in the temporary folder, just deleted, and a failed write() names no
            # file at all: report the dataset being built instead.
            raise OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(self.output_dir)) from exc


def validate_set_structure(arrays: dict[str, np.ndarray], metadata: DatasetMetadata, where: str) -> None:
    """Cheap consistency checks of one set's arrays (shapes, index tables); no scan of inputs/labels."""
    inputs, labels = arrays["inputs"], arrays["labels"]
    pi, gi, ids = arrays["puzzle_indices"], arrays["group_indices"], arrays["puzzle_identifiers"]
    if inputs.ndim != 2 or inputs.shape[1] != metadata.seq_len:
        raise DatasetFormatError(f"{where}__inputs.npy: shape {inputs.shape}, expected (examples, seq_len={metadata.seq_len})")
    if labels.shape != inputs.shape:
        raise DatasetFormatError(f"{where}__labels.npy: shape {labels.shape} differs from inputs {inputs.shape}")
    for name, array in (("inputs", inputs), ("labels", labels), ("puzzle_indices", pi), ("group_indices", gi),
                        ("puzzle_identifiers", ids)):
        if not np.issubdtype(array.dtype, np.integer):
            raise DatasetFormatError(f"{where}__{name}.npy: dtype {array.dtype} is not an integer type")
    for name, index, end in (("puzzle_indices", pi, inputs.shape[0]), ("group_indices", gi, len(ids))):
        if index.ndim != 1 or index.size < 1 or index[0] != 0 or index[-1] != end:
            raise DatasetFormatError(f"{where}__{name}.npy: must be 1-D, start at 0 and end at {end}")
        if (np.diff(index.astype(np.int64)) <= 0).any():  # every puzzle has examples, every group puzzles
            position = int(np.argmax(np.diff(index.astype(np.int64)) <= 0))
            raise DatasetFormatError(f"{where}__{name}.npy: not strictly increasing at position {position + 1}")
    if ids.ndim != 1 or len(ids) != len(pi) - 1:
        raise DatasetFormatError(f"{where}__puzzle_identifiers.npy: {len(ids)} entries for {len(pi) - 1} puzzles")
    if ids.size and (ids.min() < 0 or ids.max() >= metadata.num_puzzle_identifiers):
        bad = int(np.argmax((ids < 0) | (ids >= metadata.num_puzzle_identifiers)))
        raise DatasetFormatError(f"{where}__puzzle_identifiers.npy: entry {bad} = {int(ids[bad])} is outside "
                                 f"0..{metadata.num_puzzle_identifiers - 1} (num_puzzle_identifiers)")
