"""Evaluation and inference.

    loop          the eval-mode ACT loop (one batch, and a whole split, under torchrun too)
    metrics       exact / token / Q-halt accuracy, normalised as the original does
    voting        ranking answers by vote count, then mean sigmoid(q_halt)
    arc           ARC de-augmentation, voting, pass@k and the Kaggle submission file
    tta           test-time augmentation for Sudoku and mazes
    predictions   the predictions file (safetensors or npz; never pickle)
    puzzles       reading one puzzle for `hrm solve` (Sudoku string, maze text, ARC task JSON)
    solve         `hrm.solve(...)`: one puzzle in, the answer and the reasoning steps out
    commands      `hrm eval` and `hrm solve`
"""
