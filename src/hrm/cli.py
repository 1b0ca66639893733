"""The `hrm` command: one entry point, one sub-command per stage of the pipeline.

    hrm data      build, check and show datasets            (hrm.data.commands)
    hrm train     train a model, or resume a run              (hrm.training.commands)
    hrm eval      evaluate a checkpoint on a dataset          (hrm.evaluation.commands)
    hrm report    runs across seeds: mean ± std, CSV, PNG     (hrm.evaluation.compare)
    hrm solve     solve one puzzle with a checkpoint          (hrm.evaluation.commands)
    hrm export    export to ONNX, MLIR or MLX                 (hrm.export.commands)
    hrm verify    parity table of every backend vs PyTorch    (hrm.export.commands)
    hrm bench     benchmarks                                  (hrm.bench)
    hrm viz       the browser visualiser, or a PNG            (hrm.viz.commands)
    hrm demo      train a small HRM on the CPU and show it reason
    hrm arena     HRM, TRM and the baseline on the same CPU budget, over seeds  (hrm.arena)
    hrm plot      draw a run's curves to PNG
    hrm doctor    what this machine can run, and what is missing
    hrm check-reference FIXTURE.json   compare the model with a recorded reference
    hrm convert   convert an original checkpoint to hrm's format

Each sub-command's module is imported only when it runs, so `hrm data` does not import torch. Every
sub-command parses its command line with hrm.cli_args: key=value everywhere, a positional shorthand for
the obvious argument (`hrm solve RUN PUZZLE`), one set of boolean spellings, a generated --help.
"""
from __future__ import annotations

import importlib
import sys

# sub-command -> (module, function, one-line help, spec). The function takes argv (list[str]) and returns an exit
# code; spec names the module's function that returns the command's declared options (a hrm.cli_args.Command),
# which the function parses its argv with.
COMMANDS: dict[str, tuple[str, str, str, str]] = {
    "data": ("hrm.data.commands", "main", "build, check and show puzzle datasets", "spec"),
    "train": ("hrm.training.commands", "train_main", "train a model (key=value overrides), or resume=RUN_DIR", "train_spec"),
    "eval": ("hrm.evaluation.commands", "eval_main", "evaluate a checkpoint on a dataset's test split", "eval_spec"),
    "report": ("hrm.evaluation.compare", "main", "compare runs across seeds: mean ± std per config, Markdown, CSV, PNG", "spec"),
    "solve": ("hrm.evaluation.commands", "solve_main", "solve one puzzle with a checkpoint", "solve_spec"),
    "export": ("hrm.export.commands", "export_main", "export a checkpoint to onnx | mlir | mlx", "export_spec"),
    "verify": ("hrm.export.commands", "verify_main", "compare every backend with PyTorch", "verify_spec"),
    "bench": ("hrm.bench", "main", "training speed and MFU (hrm bench train)", "spec"),
    "viz": ("hrm.viz.commands", "main", "browser visualiser, or png=OUT for a static picture", "spec"),
    "demo": ("hrm.training.demo", "main", "train a small HRM (or arch=trm, arch=transformer) on this CPU and show it reason", "spec"),
    "arena": ("hrm.arena.run", "main", "train every architecture for the same CPU budget and tabulate held-out accuracy", "spec"),
    "plot": ("hrm.training.commands", "plot_main", "draw a run's metrics to PNG", "plot_spec"),
    "doctor": ("hrm.training.commands", "doctor_main", "report device, dtype and optional packages", "doctor_spec"),
    "check-reference": ("hrm.reference.hrm", "main", "compare the model with a recorded fixture", "spec"),
    "convert": ("hrm.models.checkpoint", "convert_main", "convert an original checkpoint to hrm's format", "convert_spec"),
}


def spec(name: str):
    """The declared options of sub-command `name` (a hrm.cli_args.Command); imports its module."""
    module_name, _, _, spec_name = COMMANDS[name]
    return getattr(importlib.import_module(module_name), spec_name)()


def usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: hrm <command> [args...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, _, help_, _) in COMMANDS.items()]
    lines += ["", "Run `hrm <command> --help` for the options of one command. Every option is key=value",
              "(the original's style); --key value, --key=value and --flag work too (hrm.cli_args)."]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from hrm import __version__
        print(f"hrm {__version__}")
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        import difflib
        close = difflib.get_close_matches(name, COMMANDS, n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        print(f"hrm: unknown command '{name}'{hint}\n\n{usage()}", file=sys.stderr)
        return 2
    module_name, function, _, _ = COMMANDS[name]
    command = getattr(importlib.import_module(module_name), function)
    try:
        return int(command(rest) or 0)
    except OSError as e:
        # The machine, not the input: a full disk, a read-only or vanished folder. One line, naming the path.
        from hrm.files import describe_os_error
        print(f"hrm {name}: {describe_os_error(e)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
