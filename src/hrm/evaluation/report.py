"""What `hrm eval` reports: the protocol line, results.json, the predictions arrays, ARC's files, the text.

NOTE: "metrics" are the original's (semantics §8.3, §11.1): sums over counted rows divided by their count. Its
q_halt_loss sums over every row of every batch, padding rows included, so it depends on the batch
size; it is kept in results.json for comparison with the original and not printed.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from hrm.evaluation import arc as arc_scoring
from hrm.evaluation import metrics


def arc_versions(data_path: Path, split: str, sets: list[str]) -> float:
    """Mean number of versions (original + augmentations) per task in an ARC split."""
    from hrm.data import load_identifiers
    from hrm.data.format import array_path

    names = load_identifiers(data_path)
    ids = np.unique(np.concatenate([np.load(array_path(data_path, split, s, "puzzle_identifiers")) for s in sets]))
    tasks = {arc_scoring.task_name(names[i]) for i in ids if i > 0}
    return len(ids[ids > 0]) / max(1, len(tasks))


def protocol_line(halt_max_steps: int, config, dataset_versions: bool, arc_versions: float | None = None,
                  trained_steps: int | None = None) -> str:
    """`dataset_versions`: the split holds each puzzle's augmented versions (the family's, ARC: semantics §12).
    `halt_max_steps` is the depth evaluated; `trained_steps` the model's own, when they differ."""
    if trained_steps is None or trained_steps == halt_max_steps:
        depth = f"halt_max_steps={halt_max_steps} ACT steps"
    else:
        depth = f"{halt_max_steps} ACT steps (steps={halt_max_steps}; trained with halt_max_steps={trained_steps})"
    halting = (f"every puzzle runs {depth}" + (" (the original's rule)" if trained_steps in (None, halt_max_steps) else "")
               if config.halting == "fixed" else f"each puzzle stops when its Q head says halt (at most {depth})")
    if config.samples > 1 or config.noise:
        halting += (f"; breadth: {config.samples} trajectories per puzzle, noise std {config.noise:g} on the initial "
                    f"latent state{' and before every step' if config.noise_every_step else ''} (seed {config.seed}), "
                    f"one answer selected by {config.select}")
    if dataset_versions:
        augment = (f"augmentations: {arc_versions:g} versions per task (the dataset's), voted; "
                   f"pass@k for k=" + ",".join(map(str, config.arc_k)))
    elif config.tta > 1:
        augment = f"augmentations: {config.tta} versions per puzzle (original + {config.tta - 1} random), voted"
    else:
        augment = "augmentations: none (1 version per puzzle)"
    return f"{halting}; {augment}"


def prediction_arrays(outputs, halting: str) -> dict[str, np.ndarray]:
    """The arrays of the predictions file. With halting=q, a row's answer is the one at its Q-halt step."""
    rows = outputs.rows
    q = halting == "q"
    predictions = rows["q_halt_predictions"] if q else rows["predictions"]
    arrays = {
        "inputs": rows["inputs"], "labels": rows["labels"], "puzzle_identifiers": rows["puzzle_identifiers"],
        "predictions": predictions,
        "q_halt_logits": rows["q_halt_q_logits"] if q else rows["q_halt_logits"],
        "q_continue_logits": rows["q_continue_logits"],
        "exact": metrics.exact(predictions, rows["labels"]),
    }
    for name in ("step_predictions", "step_q_halt_logits", "step_q_continue_logits"):
        if name in rows:
            arrays[name] = rows[name]
    return arrays


def summarise(outputs, config, task: str, dataset_versions: bool, halt_max_steps: int, seconds: float, batch_size: int,
              arc_versions: float | None = None, trained_steps: int | None = None) -> dict[str, Any]:
    """The content of results.json (see the module's note on the metrics). `halt_max_steps`: the depth run."""
    rows = outputs.rows
    fixed = metrics.normalise(outputs.metric_sums)
    breadth = {k: fixed.pop(k) for k in ("pass_at_samples", "one_sample_exact") if k in fixed}
    results: dict[str, Any] = {
        "protocol": {"backend": config.backend, "halting": config.halting, "halt_max_steps": halt_max_steps,
                     "trained_halt_max_steps": trained_steps or halt_max_steps,
                     "batch_size": batch_size, "arc_versions_per_task": arc_versions,
                     "split": config.split,
                     "examples": outputs.num_examples, "tta_versions": config.tta if not dataset_versions else None,
                     "arc_k": config.arc_k if dataset_versions else None, "task": task},
        "metrics": fixed,
        "seconds": seconds,
        "puzzles_per_second": outputs.num_examples / seconds if seconds > 0 else float("nan"),
    }
    if breadth:
        results["breadth"] = {"samples": config.samples, "noise": config.noise, "noise_every_step": config.noise_every_step,
                              "seed": config.seed, "select": config.select,
                              "selected_exact_accuracy": fixed.get("exact_accuracy"),
                              "one_trajectory_exact_accuracy": breadth["one_sample_exact"],
                              # NOTE: an oracle: it looks at the labels. An upper bound, never the headline.
                              "oracle_pass_at_samples": breadth["pass_at_samples"]}
    if outputs.step_exact is not None and fixed.get("count"):
        results["exact_accuracy_per_step"] = [v / fixed["count"] for v in outputs.step_exact]
    if config.halting == "q":
        q_halted = metrics.from_predictions(rows["q_halt_predictions"], rows["labels"], rows["q_halt_q_logits"],
                                            rows["q_halt_step"])
        results["q_halting"] = {"metrics": q_halted,
                                "comparison": metrics.q_halting_comparison(fixed, q_halted, halt_max_steps)}
    if "tta_predictions" in rows:
        single = rows["q_halt_predictions"] if config.halting == "q" else rows["predictions"]
        one = metrics.from_predictions(single, rows["labels"])
        voted = metrics.from_predictions(rows["tta_predictions"], rows["labels"])
        results["tta"] = {"versions": config.tta, "single_pass": one, "voted": voted,
                          "gain": voted["exact_accuracy"] - one["exact_accuracy"]}
    return results


def arc_outputs(outputs, data_path: Path, config, results: dict[str, Any], out_dir: Path) -> list[Path]:
    from hrm.data import load_identifiers

    rows = outputs.rows
    q = config.halting == "q"
    scored = arc_scoring.score(rows["inputs"], rows["labels"], rows["puzzle_identifiers"],
                               rows["q_halt_predictions"] if q else rows["predictions"],
                               rows["q_halt_q_logits"] if q else rows["q_halt_logits"],
                               load_identifiers(data_path), config.arc_k)
    results["arc"] = scored.summary()
    sub = arc_scoring.submission(scored)
    arc_scoring.validate_submission(sub)
    arc_scoring.write_json(out_dir / "submission.json", sub)
    arc_scoring.write_json(out_dir / "arc_tasks.json", scored.per_task())
    return [out_dir / "submission.json", out_dir / "arc_tasks.json"]


def _pct(x: float) -> str:
    return "   n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * x:6.2f}%"


def report_lines(results: dict[str, Any]) -> list[str]:
    m = results["metrics"]
    rule = " (fixed rule)" if "q_halting" in results else ""
    lines = [f"results     {m['count']} puzzles{rule}, {results['puzzles_per_second']:.1f} puzzles/s ({results['seconds']:.1f} s)",
             f"  exact accuracy   {_pct(m.get('exact_accuracy'))}   <- headline: every cell right",
             f"  token accuracy   {_pct(m.get('accuracy'))}",
             f"  q-halt accuracy  {_pct(m.get('q_halt_accuracy'))}",
             f"  mean steps       {m.get('steps', float('nan')):7.2f}"]
    if "lm_loss" in m:
        lines.append(f"  lm_loss          {m['lm_loss']:7.4f}")
    if "breadth" in results:
        b = results["breadth"]
        lines.append(f"breadth     {b['samples']} trajectories, select={b['select']}: exact accuracy "
                     f"{_pct(b['selected_exact_accuracy']).strip()} (one trajectory: "
                     f"{_pct(b['one_trajectory_exact_accuracy']).strip()}); oracle pass@{b['samples']} "
                     f"{_pct(b['oracle_pass_at_samples']).strip()} (looks at the labels: an upper bound)")
    if "exact_accuracy_per_step" in results:
        per_step = results["exact_accuracy_per_step"]
        trained = results["protocol"].get("trained_halt_max_steps", len(per_step))
        lines.append("  exact accuracy after each ACT step" + (f" (trained with {trained})" if trained != len(per_step) else "")
                     + ": " + "  ".join(f"{k + 1}: {_pct(a).strip()}" for k, a in enumerate(per_step)))
    if "q_halting" in results:
        c = results["q_halting"]["comparison"]
        lines += ["Q-head halting vs the fixed rule:",
                  f"  {'':18}{'exact acc.':>12}{'mean steps':>12}",
                  f"  {'fixed (original)':18}{_pct(c['fixed_exact_accuracy']):>12}{c['fixed_steps']:12.2f}",
                  f"  {'stop at Q halt':18}{_pct(c['q_halt_exact_accuracy']):>12}{c['q_halt_mean_steps']:12.2f}",
                  f"  compute saved {100 * c['compute_saved']:.1f}% of ACT steps; exact accuracy "
                  f"{100 * (c['q_halt_exact_accuracy'] - c['fixed_exact_accuracy']) + 0.0:+.2f} points"]
    if "tta" in results:
        t = results["tta"]
        lines.append(f"test-time augmentation, {t['versions']} versions voted: exact accuracy "
                     f"{_pct(t['single_pass']['exact_accuracy']).strip()} (single pass) -> "
                     f"{_pct(t['voted']['exact_accuracy']).strip()} (voted), gain {100 * t['gain']:+.2f} points")
    if "arc" in results:
        a = results["arc"]
        lines.append(f"ARC         {a['scored_tasks']} tasks, {a['test_inputs']} test inputs, {a['votes']} votes"
                     + (f", {a['stray_votes']} votes matched no test input" if a["stray_votes"] else ""))
        for k in a["task_pass_at_k"]:
            lines.append(f"  pass@{k:<5} tasks {_pct(a['task_pass_at_k'][k])}   test inputs {_pct(a['test_input_pass_at_k'][k])}")
    return lines
