"""Does a precision learn as well as float32, step for step? The demo's config trained for a fixed number of
steps (the cosine fitted to them) in one precision, then every held-out puzzle scored in float32's protocol.

    python benchmarks/bench_precision.py NAME STEPS DATA_PATH [key=value ...]
    python benchmarks/bench_precision.py fp32 1500 runs/arena/data/sudoku6 dtype=float32
    python benchmarks/bench_precision.py mixed 1500 runs/arena/data/sudoku6 dtype=float32 autocast=bfloat16

Steps, not minutes: the accuracy a step buys does not depend on how busy the machine is, so several
precisions can be compared side by side (one torch thread each); their speed is `hrm bench train`'s job.
Writes OUT/NAME.json (OUT: --out, default runs/precision) and prints it.
"""
import json
import sys
import time
from pathlib import Path

import torch


def main(argv: list[str]) -> int:
    from hrm.data import PuzzleDataset
    from hrm.evaluation.metrics import normalise
    from hrm.training.config import load_config, preset_path
    from hrm.training.trainer import Trainer

    out = Path("runs/precision")
    if argv and argv[0].startswith("--out="):
        out, argv = Path(argv[0].split("=", 1)[1]), argv[1:]
    if len(argv) < 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    name, steps, data, extra = argv[0], int(argv[1]), argv[2], argv[3:]
    torch.set_num_threads(1)
    config = load_config(preset_path("demo"), [f"data_path={data}", f"checkpoint_path={out / name}",
                                               f"lr_schedule_steps={steps}", "logging.progress=false",
                                               "checkpoint_every_eval=false", *extra])
    start = time.perf_counter()
    trainer = Trainer(config, lambda event: False if event.kind == "log" and event.step >= steps else None)
    try:
        trainer.run()
        seconds = time.perf_counter() - start
        test = PuzzleDataset(data, "test", 256, 0, 1, seed=0, test_set_mode=True)
        outputs = trainer.evaluate(test)
    finally:
        trainer.close()
    metrics = normalise(outputs.metric_sums)
    n = outputs.num_examples
    result = {"name": name, "overrides": extra, "steps": trainer.state.step, "train_seconds": seconds,
              "exact_accuracy": metrics["exact_accuracy"], "accuracy": metrics["accuracy"],
              "exact_after_each_step": [x / n for x in (outputs.step_exact or [])], "puzzles": n}
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
