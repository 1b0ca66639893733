// Sudoku text <-> tokens, and checking an answer. Tokens are the dataset builder's: PAD 0, blank 1,
// digit d -> d + 1 (formats §2), for an N x N board with (boxRows x boxCols) boxes.

const BLANKS = new Set([".", "0", "_", "*", "?"]);
const SEPARATORS = new Set(["|", "+", "-", "=", ",", ";"]);

export function symbol(d) {
  return d <= 9 ? String(d) : String.fromCharCode(65 + d - 10);
}

function digitOf(ch, n) {
  if (ch >= "1" && ch <= "9") return Number(ch);
  const upper = ch.toUpperCase();
  if (n > 9 && upper >= "A" && upper <= "Z") return upper.charCodeAt(0) - 65 + 10;
  return null;
}

// Returns {tokens} or throws an Error that says what is wrong and where (line, column).
export function parseSudoku(text, n) {
  const tokens = [];
  const lines = text.split(/\r?\n/);
  for (let l = 0; l < lines.length; l++) {
    for (let c = 0; c < lines[l].length; c++) {
      const ch = lines[l][c];
      if (/\s/.test(ch) || SEPARATORS.has(ch)) continue;
      const where = `line ${l + 1}, column ${c + 1}`;
      if (BLANKS.has(ch)) { tokens.push(1); continue; }
      const d = digitOf(ch, n);
      if (d === null) throw new Error(`unexpected character “${ch}” at ${where}: use 1–${symbol(n)} for digits and . or 0 for a blank`);
      if (d > n) throw new Error(`digit ${symbol(d)} at ${where} is too large for a ${n}×${n} Sudoku`);
      tokens.push(d + 1);
    }
  }
  if (tokens.length !== n * n) {
    throw new Error(`a ${n}×${n} Sudoku has ${n * n} cells; the text has ${tokens.length}`);
  }
  return tokens;
}

export function formatSudoku(tokens, n, [boxRows, boxCols]) {
  const lines = [];
  for (let r = 0; r < n; r++) {
    if (r > 0 && r % boxRows === 0) lines.push("");
    let line = "";
    for (let c = 0; c < n; c++) {
      if (c > 0 && c % boxCols === 0) line += " ";
      const t = tokens[r * n + c];
      line += t >= 2 ? symbol(t - 1) : ".";
    }
    lines.push(line);
  }
  return lines.join("\n");
}

// The units (rows, columns, boxes) as lists of positions.
function units(n, [boxRows, boxCols]) {
  const all = [];
  for (let i = 0; i < n; i++) {
    all.push([...Array(n).keys()].map((j) => i * n + j));
    all.push([...Array(n).keys()].map((j) => j * n + i));
  }
  for (let br = 0; br < n; br += boxRows) {
    for (let bc = 0; bc < n; bc += boxCols) {
      const box = [];
      for (let r = br; r < br + boxRows; r++) for (let c = bc; c < bc + boxCols; c++) box.push(r * n + c);
      all.push(box);
    }
  }
  return all;
}

// Positions whose digit repeats within a row, column or box (blanks ignored).
export function conflicts(tokens, n, box) {
  const bad = new Array(n * n).fill(false);
  for (const unit of units(n, box)) {
    const seen = new Map();
    for (const pos of unit) {
      const t = tokens[pos];
      if (t < 2) continue;
      if (seen.has(t)) { bad[pos] = true; bad[seen.get(t)] = true; } else seen.set(t, pos);
    }
  }
  return bad;
}

// {valid, blanks, conflicts, changedGivens}
export function checkAnswer(puzzle, answer, n, box) {
  const clash = conflicts(answer, n, box);
  let blanks = 0, changedGivens = 0;
  answer.forEach((t, i) => {
    if (t < 2 || t > n + 1) blanks++;
    if (puzzle[i] >= 2 && puzzle[i] !== t) changedGivens++;
  });
  const nConflicts = clash.filter(Boolean).length;
  return { valid: blanks === 0 && nConflicts === 0 && changedGivens === 0, blanks, conflicts: nConflicts, changedGivens, clash };
}

// A random puzzle: a shuffled pattern solution with about half of the cells blanked.
// (It may have several solutions; any valid completion counts.)
export function randomPuzzle(n, [boxRows, boxCols], random = Math.random) {
  const shuffle = (k) => {
    const a = [...Array(k).keys()];
    for (let i = k - 1; i > 0; i--) { const j = Math.floor(random() * (i + 1)); [a[i], a[j]] = [a[j], a[i]]; }
    return a;
  };
  const rows = shuffle(boxCols).flatMap((band) => shuffle(boxRows).map((r) => band * boxRows + r));
  const cols = shuffle(boxRows).flatMap((stack) => shuffle(boxCols).map((c) => stack * boxCols + c));
  const digits = shuffle(n);
  const tokens = [];
  for (const r of rows) {
    for (const c of cols) {
      const d = digits[(boxCols * (r % boxRows) + Math.floor(r / boxRows) + c) % n] + 1;
      tokens.push(random() < 0.5 ? 1 : d + 1);
    }
  }
  return tokens;
}
