// Drawing one board: a CSS grid of cells, coloured and labelled by the task's token style
// (hrm.viz.tasks, sent by the server or the model metadata).

export const IGNORE = -100;

// Cells as large as fit: the boards of one row share the row's width; 36 px at most, 8 at least.
function cellSize(container, cols) {
  const row = container.closest(".boards");
  const boards = row ? row.children.length : 1;
  const width = row && row.clientWidth ? row.clientWidth : 1000;
  const perBoard = (width - 20 * (boards - 1)) / boards - 8;
  return Math.max(8, Math.min(36, Math.floor(perBoard / cols) - 1));
}

// style: {task, rows, cols, box, tokens: {token: {colour, text, ink}}}
// view: [row0, col0, rows, cols]; tokens: flat (style.rows * style.cols) array or null
// marks: {given, changed, errors}: optional boolean arrays over the flat positions
export function renderBoard(container, style, view, tokens, marks = {}) {
  const [r0, c0, nr, nc] = view;
  container.style.gridTemplateColumns = `repeat(${nc}, auto)`;
  container.style.setProperty("--cell", `${cellSize(container, nc)}px`);
  container.dataset.rows = nr;
  container.dataset.cols = nc;
  const cells = [];
  for (let r = r0; r < r0 + nr; r++) {
    for (let c = c0; c < c0 + nc; c++) {
      const pos = r * style.cols + c;
      const cell = document.createElement("div");
      cell.className = "cell";
      cell.dataset.pos = pos;
      if (tokens) {
        const token = tokens[pos];
        const look = style.tokens[String(token)] || { colour: "#cccccc", text: String(token), ink: "#111" };
        cell.dataset.token = token;
        cell.textContent = look.text;
        cell.style.backgroundColor = look.colour;
        cell.style.color = look.ink;
      } else {
        cell.style.backgroundColor = "#ffffff";
      }
      if (style.box) {
        const [br, bc] = style.box;
        if ((c + 1) % bc === 0 && c + 1 < style.cols) cell.classList.add("box-right");
        if ((r + 1) % br === 0 && r + 1 < style.rows) cell.classList.add("box-bottom");
      }
      if (marks.given && marks.given[pos]) cell.classList.add("given");
      if (marks.changed && marks.changed[pos]) cell.classList.add("changed");
      if (marks.errors && marks.errors[pos]) cell.classList.add("error");
      cells.push(cell);
    }
  }
  container.replaceChildren(...cells);
}

export function changedCells(previous, current) {
  if (!previous || !current) return null;
  return current.map((token, i) => token !== previous[i]);
}

export function errorCells(prediction, labels) {
  if (!prediction || !labels) return null;
  return prediction.map((token, i) => labels[i] !== IGNORE && token !== labels[i]);
}

export function count(mask) {
  return mask ? mask.reduce((n, m) => n + (m ? 1 : 0), 0) : 0;
}

export function givenCells(style, inputs) {
  // Only a Sudoku has "givens": the digits of the puzzle (tokens 2..N+1).
  return style.task === "sudoku" ? inputs.map((token) => token >= 2) : null;
}
