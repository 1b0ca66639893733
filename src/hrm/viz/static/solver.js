// The model in the browser: onnxruntime-web (WebAssembly backend, vendored under /static/vendor/)
// runs the ONNX export of one ACT step, and this file drives the ACT loop as the model does in eval
// mode (semantics §7): reset the carry to the model's initial state, then halt_max_steps steps on the same
// puzzle, the carry of each step feeding the next. Each step's answer is the argmax of its logits.
//
// /model/model.json says which graph input and output plays which role (metadata.onnx), so the loop
// does not depend on how the exporter names them:
//   inputs  the carry (one role per tensor in metadata.carry_init: z_H, z_L for HRM), inputs (tokens),
//           puzzle_identifiers
//   outputs the new carry (the same roles), logits, q_halt, q_continue

const ORT_URL = "/static/vendor/onnxruntime-web/ort.wasm.min.mjs";

let ortModule = null;

async function loadOrt() {
  if (!ortModule) {
    ortModule = await import(ORT_URL);
    // NOTE: one thread: no SharedArrayBuffer, so no cross-origin isolation headers are needed.
    ortModule.env.wasm.numThreads = 1;
    ortModule.env.wasm.wasmPaths = "/static/vendor/onnxruntime-web/";
  }
  return ortModule;
}

function byRole(list, role) {
  const found = list.find((entry) => entry.role === role);
  if (!found) throw new Error(`model.json: the ONNX graph has no ${role} (roles: ${list.map((e) => e.role).join(", ")})`);
  return found;
}

function typedArray(dtype, values) {
  if (dtype === "int64") return BigInt64Array.from(values, (v) => BigInt(v));
  if (dtype === "int32") return Int32Array.from(values);
  if (dtype === "float32") return Float32Array.from(values);
  throw new Error(`model.json: unsupported input dtype ${dtype}`);
}

function argmaxRows(logits, rows, vocab) {
  const out = new Array(rows);
  for (let i = 0; i < rows; i++) {
    let best = 0;
    let bestValue = -Infinity;
    for (let v = 0; v < vocab; v++) {
      const x = logits[i * vocab + v];
      if (x > bestValue) { bestValue = x; best = v; }    // first maximum wins, as torch.argmax
    }
    out[i] = best;
  }
  return out;
}

export class BrowserModel {
  static async load(metadataURL = "/model/model.json", onnxURL = "/model/model.onnx") {
    const response = await fetch(metadataURL, { cache: "no-cache" });
    const metadata = await response.json();
    if (!response.ok || metadata.error) throw new Error(metadata.error || `${metadataURL}: HTTP ${response.status}`);
    const ort = await loadOrt();
    const session = await ort.InferenceSession.create(onnxURL, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
    return new BrowserModel(ort, session, metadata);
  }

  constructor(ort, session, metadata) {
    this.ort = ort;
    this.session = session;
    this.metadata = metadata;
    const io = metadata.onnx;
    this.io = io;
    this.carryRoles = Object.keys(metadata.carry_init);     // the carry the model declares, in graph order
    for (const role of [...this.carryRoles, "inputs", "puzzle_identifiers"]) byRole(io.inputs, role);
    for (const role of [...this.carryRoles, "logits", "q_halt", "q_continue"]) byRole(io.outputs, role);
  }

  initialCarry() {
    // Every position of a freshly reset row holds the model's initial state of each carry tensor.
    const { carry_shape: shape, carry_init: init } = this.metadata;
    const [batch, positions, hidden] = shape;
    const carry = {};
    for (const role of this.carryRoles) {
      const data = new Float32Array(batch * positions * hidden);
      for (let p = 0; p < batch * positions; p++) data.set(init[role], p * hidden);
      carry[role] = new this.ort.Tensor("float32", data, shape);
    }
    return carry;
  }

  // tokens: the puzzle (seq_len token ids). onStep({step, prediction, qHalt, qContinue, ms}) after every
  // step. Returns {steps: [[tokens]], qHalt: [], qContinue: [], ms: []}.
  async solve(tokens, onStep = () => {}) {
    const meta = this.metadata;
    if (tokens.length !== meta.seq_len) throw new Error(`the model takes ${meta.seq_len} tokens, got ${tokens.length}`);
    const tokenInput = byRole(this.io.inputs, "inputs");
    const idInput = byRole(this.io.inputs, "puzzle_identifiers");
    const batch = { inputs: new this.ort.Tensor(tokenInput.dtype, typedArray(tokenInput.dtype, tokens), [1, meta.seq_len]),
                    puzzle_identifiers: new this.ort.Tensor(idInput.dtype, typedArray(idInput.dtype, [meta.puzzle_identifier ?? 0]), [1]) };
    let carry = this.initialCarry();
    const result = { steps: [], qHalt: [], qContinue: [], ms: [] };
    for (let step = 1; step <= meta.halt_max_steps; step++) {
      const feeds = {};
      for (const input of this.io.inputs) feeds[input.name] = input.role in carry ? carry[input.role] : batch[input.role];
      const start = performance.now();
      const out = await this.session.run(feeds);
      const ms = performance.now() - start;
      const get = (role) => out[byRole(this.io.outputs, role).name];
      carry = Object.fromEntries(this.carryRoles.map((role) => [role, get(role)]));
      const prediction = argmaxRows(get("logits").data, meta.seq_len, meta.vocab_size);
      const qHalt = Number(get("q_halt").data[0]);
      const qContinue = Number(get("q_continue").data[0]);
      result.steps.push(prediction);
      result.qHalt.push(qHalt);
      result.qContinue.push(qContinue);
      result.ms.push(ms);
      onStep({ step, prediction, qHalt, qContinue, ms });
    }
    return result;
  }
}
