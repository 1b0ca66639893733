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
from hrm.evaluation.breadth import SELECTORS


def arc_versions(data_path: Path, split: str, sets: list[str]) -> float:
    """Mean number of versions (original + augmentations) per task in an ARC split."""
    from hrm.data import load_identifiers
    from hrm.data.format import array_path

    names = load_identifiers(data_path)
    ids = np.unique(np.concatenate([np.load(array_path(data_path, split, s, "puzzle_identifiers")) for s in sets]))
    tasks = {arc_scoring.task_name(names[i]) for i in ids if i > 0}
    return len(ids[ids > 0]) / max(1, len(tasks))


def protocol(config, *, checkpoint: str, checkpoint_step: int | None, weights: str, device: str, dtype: str,
             data_path: str, data_hash: str | None, task: str, test_set: dict[str, Any], depth, trained_steps: int,
             halt_rule: str, batch_size: int, dataset_versions: bool, arc_versions: float | None = None,
             compiled: bool = False) -> dict[str, Any]:
    """Everything a figure depends on, as results.json's and sweep.json's `protocol` (and the printed header).
    `depth`: the ACT steps run (in a sweep the list of depths, as "samples" is the list of breadths);
    `test_set`: test_set()'s."""
    sweep = config.is_sweep()
    return {
        "checkpoint": checkpoint, "checkpoint_step": checkpoint_step, "weights": weights,
        "backend": config.backend, "device": device, "dtype": dtype, "compiled": compiled,
        "data_path": data_path, "dataset_hash": data_hash, "task": task, "split": config.split,
        "test_set": test_set, "examples": test_set["examples"],
        "halting": config.halting, "halt_rule": halt_rule,
        "halt_max_steps": depth, "trained_halt_max_steps": trained_steps,
        "samples": config.breadths() if sweep else config.samples,
        "diversity": {"noise": config.noise, "noise_every_step": config.noise_every_step, "init": config.init,
                      "seed": config.seed},
        # What picks a puzzle's answer among its trajectories; a sweep reports every label-free selector.
        "select": list(SELECTORS) if sweep else config.select,
        "tta_versions": config.tta if not dataset_versions else None,
        "arc_versions_per_task": arc_versions, "arc_k": config.arc_k if dataset_versions else None,
        "batch_size": batch_size,
    }


def test_set(split_examples: int, max_examples: int | None, subset: int | None, subset_seed: int,
             rows_sha256: str | None) -> dict[str, Any]:
    """Which examples of the split are evaluated: all of them, a prefix (max_examples) or a seeded subset."""
    if subset:
        return {"selection": "subset", "examples": subset, "of": split_examples, "subset_seed": subset_seed,
                "rows_sha256": rows_sha256}
    if max_examples and max_examples < split_examples:
        return {"selection": "prefix", "examples": max_examples, "of": split_examples}
    return {"selection": "full", "examples": split_examples, "of": split_examples}


def test_set_line(t: dict[str, Any]) -> str:
    if t["selection"] == "subset":
        return (f"a subset of {t['examples']} of the {t['of']} examples (subset_seed {t['subset_seed']}, "
                f"rows sha256 {t['rows_sha256']})")
    if t["selection"] == "prefix":
        return f"the first {t['examples']} of the {t['of']} examples (max_examples)"
    return f"the whole split ({t['examples']} examples)"


def protocol_line(p: dict[str, Any]) -> str:
    """The protocol in one line: depth, halting, breadth and diversity, selector, augmentations."""
    depth, trained = p["halt_max_steps"], p["trained_halt_max_steps"]
    if isinstance(depth, list):
        depth = "D in " + ",".join(map(str, depth)) + f" ACT steps (trained with halt_max_steps={trained})"
        original = False
    elif trained == depth:
        depth, original = f"halt_max_steps={depth} ACT steps", True
    else:
        depth, original = f"{depth} ACT steps (steps={depth}; trained with halt_max_steps={trained})", False
    halting = (f"every puzzle runs {depth}" + (" (the original's rule)" if original else "")
               if p["halting"] == "fixed" else f"each puzzle stops when its Q head says halt (at most {depth})")
    samples, d = p["samples"], p["diversity"]
    versions = p["tta_versions"] or 1
    several = isinstance(samples, list) or samples * versions > 1
    if several or d["noise"] or d["init"] != "learned":
        if isinstance(samples, list):
            halting += f"; breadth: B in {','.join(map(str, samples))} trajectories per puzzle"
        else:
            total = samples * versions
            halting += (f"; breadth: {total}" + (" trajectory" if total == 1 else " trajectories") + " per puzzle"
                        + (f" ({versions} versions x {samples})" if versions > 1 else ""))
        sources = []
        if versions > 1:
            sources.append(f"{versions} versions of the board (the original + {versions - 1} random symmetries, "
                           "answers mapped back)")
        if d["init"] == "random":
            sources.append("initial latent states drawn at random (truncated normal, std 1)")
        if d["noise"]:
            sources.append(f"noise std {d['noise']:g} on the initial latent state"
                           + (" and before every step" if d["noise_every_step"] else ""))
        halting += (", " + " and ".join(sources) + f" (seed {d['seed']})" if sources else ", no diversity (noise=0)")
        if isinstance(p["select"], list):
            halting += ", answers selected by each of " + ", ".join(p["select"])
        elif several:
            halting += f", one answer selected by {p['select']}"
    if p["arc_versions_per_task"] is not None:
        augment = (f"augmentations: {p['arc_versions_per_task']:g} versions per task (the dataset's), voted; "
                   f"pass@k for k=" + ",".join(map(str, p["arc_k"])))
    elif versions > 1:
        augment = f"augmentations: {versions} versions per puzzle, as trajectories of the breadth"
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


def summarise(outputs, config, protocol: dict[str, Any], seconds: float) -> dict[str, Any]:
    """The content of results.json (see the module's note on the metrics); `protocol`: protocol()'s."""
    rows = outputs.rows
    halt_max_steps = protocol["halt_max_steps"]
    fixed = metrics.normalise(outputs.metric_sums)
    breadth = {k: fixed.pop(k) for k in ("pass_at_samples", "one_sample_exact") if k in fixed}
    results: dict[str, Any] = {
        "protocol": protocol,
        "metrics": fixed,
        "seconds": seconds,
        "puzzles_per_second": outputs.num_examples / seconds if seconds > 0 else float("nan"),
    }
    if breadth:
        results["breadth"] = {"samples": config.samples, "versions": config.tta,
                              "trajectories": config.samples * config.tta,
                              "noise": config.noise, "noise_every_step": config.noise_every_step,
                              "init": config.init, "seed": config.seed, "select": config.select,
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
    if config.tta > 1 and breadth:
        # The first trajectory is the original board's (with samples=1 noise=0: the standard evaluation).
        one, selected = breadth["one_sample_exact"], fixed.get("exact_accuracy")
        results["tta"] = {"versions": config.tta, "samples": config.samples, "select": config.select,
                          "single_pass": {"exact_accuracy": one}, "selected": {"exact_accuracy": selected},
                          "gain": selected - one}
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
        T = b.get("trajectories", b["samples"])
        lines.append(f"breadth     {T} {'trajectory' if T == 1 else 'trajectories'}, "
                     f"select={b['select']}: exact accuracy "
                     f"{_pct(b['selected_exact_accuracy']).strip()} (one trajectory: "
                     f"{_pct(b['one_trajectory_exact_accuracy']).strip()}); oracle pass@{T} "
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
        lines.append(f"test-time augmentation, {t['versions']} versions, select={t['select']}: exact accuracy "
                     f"{_pct(t['single_pass']['exact_accuracy']).strip()} (the original board, one trajectory) -> "
                     f"{_pct(t['selected']['exact_accuracy']).strip()} (selected), gain {100 * t['gain']:+.2f} points")
    if "arc" in results:
        a = results["arc"]
        lines.append(f"ARC         {a['scored_tasks']} tasks, {a['test_inputs']} test inputs, {a['votes']} votes"
                     + (f", {a['stray_votes']} votes matched no test input" if a["stray_votes"] else ""))
        for k in a["task_pass_at_k"]:
            lines.append(f"  pass@{k:<5} tasks {_pct(a['task_pass_at_k'][k])}   test inputs {_pct(a['test_input_pass_at_k'][k])}")
    return lines
