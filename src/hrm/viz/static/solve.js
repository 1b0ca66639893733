// The Solve tab: type or paste a Sudoku, and watch the served model solve it step by step in the browser.

import { showError } from "./api.js";
import { renderBoard, changedCells, count } from "./grid.js";
import { Timeline, sigmoid, saysHalt } from "./timeline.js";
import { parseSudoku, formatSudoku, checkAnswer, conflicts, randomPuzzle, symbol } from "./sudoku.js";
import { BrowserModel } from "./solver.js";

const $ = (id) => document.getElementById(id);

function sudokuStyle(n, box) {
  const tokens = { 0: { colour: "#f2f2f2", text: "", ink: "#111" }, 1: { colour: "#ffffff", text: "", ink: "#111" } };
  for (let d = 1; d <= n; d++) tokens[d + 1] = { colour: "#ffffff", text: symbol(d), ink: "#111" };
  return { task: "sudoku", rows: n, cols: n, box, tokens };
}

export class SolvePanel {
  // currentExample() -> the example shown in the Browse tab (for "Example from the dataset"), or null
  constructor(currentExample) {
    this.currentExample = currentExample;
    this.model = null;
    this.metadata = null;
    this.timeline = new Timeline($("solve-timeline"), () => {});
    $("solve-button").addEventListener("click", () => this.run().catch((e) => this.fail(e)));
    $("clear-button").addEventListener("click", () => { $("sudoku-text").value = ""; this.preview(); });
    $("example-button").addEventListener("click", () => this.example());
    $("random-button").addEventListener("click", () => this.random());
    $("sudoku-text").addEventListener("input", () => this.preview());
    this.ready = this.loadMetadata().catch((e) => this.fail(e));
  }

  async loadMetadata() {
    const response = await fetch("/model/model.json", { cache: "no-cache" });
    const metadata = await response.json();
    if (!response.ok || metadata.error) throw new Error(metadata.error || `model.json: HTTP ${response.status}`);
    if (metadata.task !== "sudoku") {
      throw new Error(`the served model is for ${metadata.task}; solving in the browser is for Sudoku models`);
    }
    this.metadata = metadata;
    this.n = metadata.board_size;
    this.box = metadata.box;
    this.style = sudokuStyle(this.n, this.box);
    $("solve-help").textContent = `${this.n}×${this.n} Sudoku (${this.box[0]}×${this.box[1]} boxes) for the model `
      + `${metadata.checkpoint || ""}. Digits 1–${symbol(this.n)}, “.” or 0 for a blank; spaces, line breaks and | + - are ignored. `
      + `The model runs ${metadata.halt_max_steps} ACT steps with onnxruntime-web (WebAssembly) in this page.`;
    if (!$("sudoku-text").value.trim()) $("sudoku-text").value = formatSudoku(randomPuzzle(this.n, this.box), this.n, this.box);
    this.preview();
  }

  fail(error) {
    $("solve-status").textContent = "";
    $("solve-button").disabled = false;
    showError(error.message || String(error));
  }

  parse() {
    return parseSudoku($("sudoku-text").value, this.n);
  }

  preview() {
    if (!this.metadata) return;
    $("example-button").hidden = !this.browseExample();
    try {
      const tokens = this.parse();
      const clash = conflicts(tokens, this.n, this.box);
      renderBoard($("solve-board-input"), this.style, [0, 0, this.n, this.n], tokens, { given: tokens.map((t) => t >= 2), errors: clash });
      $("solve-status").textContent = clash.some(Boolean) ? "the givens repeat a digit in a row, column or box (marked)" : "";
    } catch (error) {
      $("solve-board-input").replaceChildren();
      $("solve-status").textContent = error.message;
    }
  }

  // The Browse tab's puzzle, when it is a Sudoku of the model's size.
  browseExample() {
    const example = this.currentExample();
    return example && example.inputs.length === this.n * this.n ? example : null;
  }

  example() {
    const example = this.browseExample();
    if (example) $("sudoku-text").value = formatSudoku(example.inputs, this.n, this.box);
    this.preview();
  }

  random() {
    $("sudoku-text").value = formatSudoku(randomPuzzle(this.n, this.box), this.n, this.box);
    this.preview();
  }

  async run() {
    await this.ready;
    if (!this.metadata) return;
    let puzzle;
    try {
      puzzle = this.parse();
    } catch (error) {
      $("solve-status").textContent = error.message;
      return;
    }
    $("solve-button").disabled = true;
    $("solve-verdict").textContent = "";
    document.body.dataset.solved = "false";
    if (!this.model) {
      $("solve-status").textContent = "loading the model and the WebAssembly runtime…";
      this.model = await BrowserModel.load();
    }
    const given = puzzle.map((t) => t >= 2);
    const view = [0, 0, this.n, this.n];
    const result = await this.model.solve(puzzle, ({ step, prediction }) => {
      $("solve-status").textContent = `step ${step} / ${this.metadata.halt_max_steps}…`;
      $("solve-caption").textContent = `Model's answer at step ${step}`;
      renderBoard($("solve-board-answer"), this.style, view, prediction, { given });
    });
    const total = result.ms.reduce((a, b) => a + b, 0);
    $("solve-status").textContent = `${result.steps.length} steps in ${total.toFixed(0)} ms `
      + `(${(total / result.steps.length).toFixed(1)} ms per step, WebAssembly, 1 thread)`;

    const describe = (k) => {
      const q = result.qHalt[k - 1];
      const changed = k > 1 ? count(changedCells(result.steps[k - 2], result.steps[k - 1])) : null;
      const check = checkAnswer(puzzle, result.steps[k - 1], this.n, this.box);
      return `step ${k} / ${result.steps.length} · q_halt ${q.toFixed(2)} (p = ${sigmoid(q).toFixed(3)})`
        + ` · q_continue ${result.qContinue[k - 1].toFixed(2)}` + (changed === null ? "" : ` · ${changed} changed`)
        + ` · ${check.conflicts} in conflict` + (saysHalt(this.metadata.halt_rule, q, result.qContinue[k - 1]) ? " · halt" : "");
    };
    this.timeline.onStep = (k) => {
      const answer = result.steps[k - 1];
      const check = checkAnswer(puzzle, answer, this.n, this.box);
      $("solve-caption").textContent = `Model's answer at step ${k}`;
      renderBoard($("solve-board-answer"), this.style, view, answer, {
        given, changed: k > 1 ? changedCells(result.steps[k - 2], answer) : null, errors: check.clash,
      });
    };
    this.timeline.show(result.steps.length, result.qHalt, result.qContinue, describe, this.metadata.halt_rule);

    const final = checkAnswer(puzzle, result.steps[result.steps.length - 1], this.n, this.box);
    const verdict = $("solve-verdict");
    verdict.className = final.valid ? "ok" : "bad";
    verdict.textContent = final.valid
      ? "The final answer is a valid solution: every row, column and box holds each digit once, and the givens are kept."
      : `The final answer is not a valid solution: ${final.conflicts} cells in conflict, ${final.changedGivens} givens changed, ${final.blanks} cells not a digit.`;
    window.hrmLastSolve = { puzzle, ...result, valid: final.valid };
    document.body.dataset.solved = "true";
    $("solve-button").disabled = false;
  }
}
