// The page: a Browse tab over the dataset and predictions, and a Solve tab that runs the served model
// in the browser. Every string from a dataset is put in the page with textContent, never as markup.

import { getJSON, showError, clearErrors } from "./api.js";
import { renderBoard, changedCells, errorCells, count, givenCells, IGNORE } from "./grid.js";
import { Timeline, sigmoid, saysHalt } from "./timeline.js";
import { SolvePanel } from "./solve.js";

const $ = (id) => document.getElementById(id);
const PAGE = 200;
// Identifier 0 is the "<blank>" identifier: every Sudoku and maze puzzle has it (formats §1, §2).
const BLANK_ID = 0;

const state = {
  info: null, split: null, filter: "all", query: "", offset: 0, total: 0,
  selected: null, example: null, timeline: null, activeTimeline: null, solve: null,
};

function fmt(x, digits = 2) {
  return x === null || x === undefined ? "–" : Number(x).toFixed(digits);
}

// ---------------------------------------------------------------------------------------------
// Tabs

function showTab(name) {
  for (const tab of document.querySelectorAll(".tab")) tab.classList.toggle("active", tab.dataset.tab === name);
  $("browse").hidden = name !== "browse";
  $("solve").hidden = name !== "solve";
  state.activeTimeline = name === "browse" ? state.timeline : state.solve && state.solve.timeline;
  if (name === "solve" && state.solve) state.solve.preview();
}

function enableSolve(hasModel) {
  const tab = $("tab-solve");
  if (!hasModel) {
    tab.title = "start the server with --model RUN_DIR (or --onnx FILE) to solve in the browser";
    return;
  }
  tab.disabled = false;
  tab.addEventListener("click", () => showTab("solve"));
  state.solve = new SolvePanel(() => (state.info && state.info.task === "sudoku" ? state.example : null));
}

// ---------------------------------------------------------------------------------------------
// The puzzle list

function entriesURL() {
  const params = new URLSearchParams({ split: state.split, filter: state.filter, q: state.query,
                                       offset: state.offset, limit: PAGE });
  return `/api/entries?${params}`;
}

let latestList = 0;

async function loadEntries() {
  const request = ++latestList;
  const page = await getJSON(entriesURL());
  if (request !== latestList) return null;        // superseded by a newer filter or page
  state.total = page.total;
  const list = $("entries");
  const items = page.entries.map((entry) => {
    const item = document.createElement("li");
    item.dataset.index = entry.index;
    const index = document.createElement("span");
    index.className = "index";
    index.textContent = `#${entry.index}`;
    const name = document.createElement("span");
    name.className = entry.identifier === BLANK_ID ? "name unnamed" : "name";
    name.textContent = entry.identifier === BLANK_ID ? `${state.info.task} puzzle` : entry.name;   // untrusted: text only
    name.title = `${entry.name} (puzzle identifier ${entry.identifier})`;
    const status = document.createElement("span");
    if (entry.status) {
      status.className = `status-${entry.status}`;
      status.textContent = entry.status === "solved" ? "✓" : "✗";
      status.title = entry.status;
    }
    item.append(index, name, status);
    item.classList.toggle("selected", entry.index === state.selected);
    item.addEventListener("click", () => selectExample(entry.index));
    return item;
  });
  list.replaceChildren(...items);
  const last = Math.min(state.offset + PAGE, state.total);
  $("list-summary").textContent = state.total
    ? `${state.offset + 1}–${last} of ${state.total} ${state.filter === "all" ? "" : state.filter + " "}examples`
    : "no examples match";
  $("prev-page").disabled = state.offset === 0;
  $("next-page").disabled = last >= state.total;
  return page;
}

// ---------------------------------------------------------------------------------------------
// One example and its reasoning steps

let latestRequest = 0;

async function selectExample(index) {
  const request = ++latestRequest;
  state.selected = index;
  for (const item of $("entries").children) item.classList.toggle("selected", Number(item.dataset.index) === index);
  history.replaceState(null, "", `#split=${encodeURIComponent(state.split)}&index=${index}`);
  const example = await getJSON(`/api/example?split=${encodeURIComponent(state.split)}&index=${index}`);
  if (request !== latestRequest) return;          // a later click won the race
  state.example = example;
  showExample(example);
  document.body.dataset.example = `${example.split}:${example.index}`;   // for tests and deep links
}

function firstHalt(rule, qHalt, qContinue) {
  if (!qHalt || !qContinue) return null;
  const k = qHalt.findIndex((q, i) => saysHalt(rule, q, qContinue[i]));
  return k < 0 ? null : k + 1;
}

function showExample(example) {
  const style = state.info.style;
  const view = example.view;
  const given = givenCells(style, example.inputs);
  const labels = example.labels.map((t) => (t === IGNORE ? 0 : t));
  $("puzzle-title").textContent = example.identifier === BLANK_ID ? `Example #${example.index}` : example.name;
  $("legend-given").hidden = !given;
  renderBoard($("board-input"), style, view, example.inputs, { given });
  renderBoard($("board-label"), style, view, labels, { given });

  const prediction = example.prediction;
  const where = `example #${example.index} of split “${example.split}” · puzzle identifier ${example.identifier}`;
  if (!prediction) {
    $("puzzle-summary").textContent = `${where} · no predictions for this example`;
    $("prediction-caption").textContent = "Prediction (none)";
    renderBoard($("board-prediction"), style, view, null);
    state.timeline.show(0);
    return;
  }
  // Without per-step predictions (eval without --save-steps) the final step is the only one.
  const steps = prediction.steps || [prediction.final];
  const qHalt = prediction.step_q_halt || [prediction.q_halt];
  const qContinue = prediction.step_q_continue || [prediction.q_continue];
  const rule = state.info.predictions?.metadata?.halt_rule;
  const halt = firstHalt(rule, qHalt, qContinue);
  $("puzzle-summary").textContent = `${where} · ${prediction.exact ? "solved ✓" : "failed ✗"} at the final step`
    + (prediction.steps ? ` · ${steps.length} ACT steps` : " · final step only (evaluate with --save-steps for every step)")
    + (halt ? ` · the Q head would halt at step ${halt}` : "");

  const describe = (k) => {
    const errors = count(errorCells(steps[k - 1], example.labels));
    const changed = k > 1 ? count(changedCells(steps[k - 2], steps[k - 1])) : null;
    const q = qHalt[k - 1];
    return `step ${prediction.steps ? k : "final"} / ${steps.length} · q_halt ${fmt(q)} (p = ${q === null ? "–" : fmt(sigmoid(q), 3)})`
      + ` · q_continue ${fmt(qContinue[k - 1])}`
      + (changed === null ? "" : ` · ${changed} changed`) + ` · ${errors} wrong`
      + (saysHalt(rule, q, qContinue[k - 1]) ? " · halt" : "");
  };
  state.timeline.onStep = (k) => {
    const tokens = steps[k - 1];
    $("prediction-caption").textContent = prediction.steps ? `Prediction at step ${k}` : "Prediction (final step)";
    renderBoard($("board-prediction"), style, view, tokens, {
      given,
      changed: k > 1 ? changedCells(steps[k - 2], tokens) : null,
      errors: errorCells(tokens, example.labels),
    });
  };
  state.timeline.show(steps.length, qHalt, qContinue, describe, rule);
}

// ---------------------------------------------------------------------------------------------
// Start

async function startBrowse(info) {
  $("tab-browse").disabled = false;
  $("tab-browse").addEventListener("click", () => showTab("browse"));
  $("source").textContent = [info.dataset, info.predictions && info.predictions.path].filter(Boolean).join(" · ")
    + ` · ${info.task}`;
  state.timeline = new Timeline($("browse-timeline"), () => {});

  const hash = new URLSearchParams(location.hash.slice(1));
  state.split = info.splits[hash.get("split")] !== undefined ? hash.get("split") : info.default_split;
  const split = $("split");
  for (const [name, size] of Object.entries(info.splits)) {
    const option = document.createElement("option");
    option.value = name;
    option.textContent = `${name} (${size})`;
    split.append(option);
  }
  split.value = state.split;
  const updateFilter = () => {
    const predicted = info.predictions && info.predictions.split === state.split;
    $("filter").disabled = !predicted;
    if (!predicted) { $("filter").value = "all"; state.filter = "all"; }
    $("filter").title = predicted ? "" : "no predictions for this split";
  };
  updateFilter();

  const reload = async () => {
    state.offset = 0;
    const page = await loadEntries();
    if (page && page.entries.length) await selectExample(page.entries[0].index);
  };
  split.addEventListener("change", () => { state.split = split.value; updateFilter(); reload(); });
  $("filter").addEventListener("change", () => { state.filter = $("filter").value; reload(); });
  let typing = null;
  $("query").addEventListener("input", () => {
    clearTimeout(typing);
    typing = setTimeout(() => { state.query = $("query").value; reload(); }, 250);
  });
  $("prev-page").addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); loadEntries(); });
  $("next-page").addEventListener("click", () => { state.offset += PAGE; loadEntries(); });

  showTab("browse");
  const page = await loadEntries();
  const wanted = Number(hash.get("index"));
  if (hash.has("index") && Number.isInteger(wanted)) await selectExample(wanted);
  else if (page && page.entries.length) await selectExample(page.entries[0].index);
}

document.addEventListener("keydown", (event) => {
  const timeline = state.activeTimeline;
  if (!timeline || ["INPUT", "TEXTAREA", "SELECT"].includes(event.target.tagName)) return;
  if (event.key === "ArrowRight") { timeline.stop(); timeline.go(timeline.step + 1); }
  else if (event.key === "ArrowLeft") { timeline.stop(); timeline.go(timeline.step - 1); }
  else if (event.key === " ") { event.preventDefault(); timeline.timer ? timeline.stop() : timeline.play(); }
});

async function main() {
  let info;
  try {
    info = await getJSON("/api/info");
  } catch (error) {
    showError(error.message);
    enableSolve(Boolean(error.body && error.body.model));
    if (state.solve) showTab("solve");
    return;
  }
  state.info = info;
  $("loading").hidden = true;
  enableSolve(Boolean(info.model));
  if (info.browse === false) {
    $("source").textContent = "no dataset or predictions given";
    showTab("solve");
    return;
  }
  await startBrowse(info);
  document.body.dataset.ready = "true";
}

main().catch((error) => showError(error.message)).finally(() => { document.body.dataset.loaded = "true"; });
