"""The package's layers: no import cycles between its parts, and every import points down the pipeline.

    base        the root modules (halting, act_driver, device, files, progress, cli_args, compiling, ...)
    data        datasets: formats, builders, the loader; the puzzle families (hrm.puzzles)
    models      architectures, the ACT wrapper, the loss head, checkpoints
    runs        opening a run: checkpoint, model, run config, dataset, family (hrm.runs)
    ports       the NumPy reference and the MLX port (step functions of the one ACT driver)
    export      ONNX, MLIR/IREE, the backends, verify
    evaluation  the evaluation loop, metrics, ARC scoring, solve
    training    the trainer (it evaluates through evaluation), the demo
    top         viz, bench, check-reference (it replays training), the arena, the CLI, and the package's own __init__ (its lazy `hrm.solve`)

A part may import its own layer's modules and any lower layer, never a higher one. Imports inside
functions count too: a lazy import is still a dependency.
"""
from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src" / "hrm"
LAYERS = [
    {"base"},
    {"data", "puzzles"},
    {"models"},
    {"runs"},
    {"ports"},
    {"export"},
    {"evaluation"},
    {"training"},
    {"viz", "bench", "cli", "flops", "reference", "arena", "api"},
]
LEVEL = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def part_of(module: str) -> str:
    """hrm.data.loader -> data; hrm.halting -> base; hrm.cli -> cli."""
    parts = module.split(".")
    if len(parts) == 1:
        return "base"
    name = parts[1]
    if (SRC / name).is_dir():
        return name
    return name if name in LEVEL else "base"


def imports() -> list[tuple[str, int, str, str]]:
    """(file, line, importing part, imported part) for every `hrm.` import in the package."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        relative = path.relative_to(SRC.parent)
        module = ".".join(relative.with_suffix("").parts).removesuffix(".__init__")
        here = "api" if module == "hrm" else part_of(module)
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                if node.module == "hrm":
                    targets = [f"hrm.{alias.name}" for alias in node.names]
                elif node.module.startswith("hrm."):
                    targets = [node.module]
            elif isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names if alias.name.startswith("hrm.")]
            for target in targets:
                found.append((str(relative), node.lineno, here, part_of(target)))
    return found


def test_every_part_has_a_layer():
    parts = {part for _, _, here, there in imports() for part in (here, there)}
    assert parts <= set(LEVEL), sorted(parts - set(LEVEL))


def test_no_import_points_up_a_layer():
    upward = [f"{file}:{line}: {here} imports {there}" for file, line, here, there in imports()
              if LEVEL[there] > LEVEL[here]]
    assert not upward, "\n".join(upward)


def test_the_driver_and_the_data_layer_run_without_torch():
    """The driver, the halting rule and the data formats import no torch (the NumPy port, `hrm data`)."""
    import subprocess
    import sys
    code = ("import sys, hrm.act_driver, hrm.halting, hrm.files, hrm.cli_args, hrm.data.format, hrm.data.sudoku; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
