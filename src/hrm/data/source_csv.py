"""The CSV format of the original Sudoku and maze sources: `source,question,answer,rating`."""
from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

CSV_HEADER = ["source", "question", "answer", "rating"]


def read_text(path: Path, error: type[Exception]) -> str:
    """A source file's text, or `error` naming the file (missing, or not UTF-8)."""
    if not path.is_file():
        raise error(f"{path}: file not found")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise error(f"{path}: not UTF-8 text (byte {e.start})") from None


def read_rows(path: Path, text: str, error: type[Exception]) -> Iterator[tuple[str, list[str]]]:
    """(where, row) for every non-blank row after the header; `where` is "file:line".

    A wrong header or malformed CSV raises `error` naming the line. Column counts are the caller's to
    check, since a builder may skip such rows (`--skip-invalid`).
    """
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != CSV_HEADER:
        raise error(f"{path}:1: expected the header {','.join(CSV_HEADER)}, got {','.join(header or [])!r}")
    while True:
        try:
            row = next(reader, None)
        except csv.Error as e:
            raise error(f"{path}:{reader.line_num}: malformed CSV ({e})") from None
        if row is None:
            return
        if row and any(cell.strip() for cell in row):
            yield f"{path}:{reader.line_num}", row


def check_columns(row: list[str], where: str, error: type[Exception]) -> None:
    if len(row) != len(CSV_HEADER):
        raise error(f"{where}: expected {len(CSV_HEADER)} columns ({','.join(CSV_HEADER)}), got {len(row)}")
