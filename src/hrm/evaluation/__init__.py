"""Evaluation and inference.

    loop          the eval-mode ACT loop (one batch, and a whole split, under torchrun too)
    distributed   gathering every rank's rows and sums on rank 0
    metrics       exact / token / Q-halt accuracy, normalised as the original does
    voting        ranking answers by vote count, then mean sigmoid(q_halt)
    arc           ARC de-augmentation, voting, pass@k and the Kaggle submission file
    tta           test-time augmentation for Sudoku and mazes
    predictions   the predictions file (safetensors or npz; never pickle)
    sources       finding the checkpoint and its dataset, and checking that they fit
    report        results.json, the predictions arrays and the printed report of `hrm eval`
    runner        `hrm eval` as a library: EvalConfig, run_eval
    backends      `hrm eval backend=...`: another backend of hrm.export in the loop
    puzzles       reading one puzzle for `hrm solve` (Sudoku string, maze text, ARC task JSON)
    solve         `hrm.solve(...)`: one puzzle in, the answer and the reasoning steps out (solve_arc: ARC)
    commands      `hrm eval` and `hrm solve`
    compare       `hrm report`: runs and eval results grouped by config, mean ± std over seeds, one protocol
    compare_table the comparison as Markdown, CSV and a PNG
"""
