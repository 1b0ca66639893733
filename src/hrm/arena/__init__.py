"""The arena (`hrm arena`): HRM, TRM and the transformer baseline trained for the same CPU budget on the same
tasks, scored on held-out puzzles over several seeds.

    tasks.py      the tasks: the demo's 6x6 Sudoku and 10x10 mazes, generated here
    entrants.py   the entrants: a preset plus an architecture block each
    run.py        one entry (train, score, write its JSON), the resumable loop over them, `hrm arena`
    table.py      the report: arena.md and arena.png, from the entries' JSONs
"""
