"""The visualiser: `hrm viz` serves a page on localhost to browse Sudoku, maze and ARC puzzles, a model's
answer at every ACT step and its Q-halting, and to solve Sudoku in the browser (onnxruntime-web); or it
draws one puzzle's reasoning trajectory to PNG.

    tasks     how each puzzle family is drawn (shared by the page and the PNG)
    data      the dataset and predictions the page shows
    server    static files and a small JSON API, loopback only
    model     a checkpoint exported for the browser, or run in PyTorch for a PNG
    png       the matplotlib trajectory
    commands  `hrm viz`
    static/   the page (plain ES modules, no build step) and the vendored onnxruntime-web
"""
