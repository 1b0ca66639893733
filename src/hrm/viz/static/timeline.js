// The timeline of ACT steps: step buttons, a slider, play/pause, and one bar per step for
// sigmoid(q_halt), green where the model would halt under its halt rule (hrm.halting).

export const sigmoid = (x) => 1 / (1 + Math.exp(-x));

// The halt rules of hrm.halting, by name (export metadata "halt_rule"; predictions' metadata). The rule of
// exports and predictions written before the rule was recorded is HRM's.
export const DEFAULT_HALT_RULE = "q_halt > q_continue";
export function saysHalt(rule, qHalt, qContinue) {
  if (qHalt === null || qHalt === undefined) return false;
  if ((rule || DEFAULT_HALT_RULE) === "q_halt > 0") return qHalt > 0;
  if ((rule || DEFAULT_HALT_RULE) === "q_halt > q_continue") return qContinue !== null && qContinue !== undefined && qHalt > qContinue;
  throw new Error(`unknown halt rule ${rule}`);
}

function button(text, title) {
  const b = document.createElement("button");
  b.textContent = text;
  b.title = title;
  return b;
}

export class Timeline {
  // container: element; onStep(k) is called with k in 1..steps whenever the step changes.
  constructor(container, onStep) {
    this.container = container;
    this.onStep = onStep;
    this.timer = null;
    this.steps = 0;
    this.step = 0;
  }

  // qHalt, qContinue: arrays of logits (length steps), entries may be null; describe(k) -> text;
  // haltRule: the model's halt rule (saysHalt)
  show(steps, qHalt, qContinue, describe, haltRule = DEFAULT_HALT_RULE) {
    this.stop();
    this.steps = steps;
    this.qHalt = qHalt;
    this.qContinue = qContinue;
    this.describe = describe;
    this.container.replaceChildren();
    delete this.container.dataset.step;
    if (steps < 1) return;

    const controls = document.createElement("div");
    controls.className = "controls";
    const first = button("|◀", "first step");
    const prev = button("◀", "previous step (←)");
    this.playButton = button("play", "animate the steps (space)");
    const next = button("▶", "next step (→)");
    const last = button("▶|", "last step");
    this.slider = document.createElement("input");
    this.slider.type = "range";
    this.slider.min = 1;
    this.slider.max = steps;
    this.slider.setAttribute("aria-label", "ACT step");
    this.speed = document.createElement("select");
    for (const [label, ms] of [["slow", 900], ["normal", 450], ["fast", 150]]) {
      const option = document.createElement("option");
      option.value = ms;
      option.textContent = label;
      this.speed.append(option);
    }
    this.speed.value = 450;
    this.info = document.createElement("span");
    this.info.className = "step-info";
    this.info.dataset.testid = "step-info";
    controls.append(first, prev, this.playButton, next, last, this.slider, this.speed, this.info);

    first.addEventListener("click", () => { this.stop(); this.go(1); });
    prev.addEventListener("click", () => { this.stop(); this.go(this.step - 1); });
    next.addEventListener("click", () => { this.stop(); this.go(this.step + 1); });
    last.addEventListener("click", () => { this.stop(); this.go(this.steps); });
    this.playButton.addEventListener("click", () => (this.timer ? this.stop() : this.play()));
    this.slider.addEventListener("input", () => { this.stop(); this.go(Number(this.slider.value)); });

    const bars = document.createElement("div");
    bars.className = "qbars";
    bars.title = `sigmoid(q_halt) per step; green: ${haltRule} (the model would halt)`;
    this.bars = [];
    for (let k = 1; k <= steps; k++) {
      const bar = document.createElement("div");
      bar.className = "qbar";
      const q = qHalt ? qHalt[k - 1] : null;
      const p = q === null || q === undefined ? 0 : sigmoid(q);
      bar.style.height = `${Math.max(2, Math.round(p * 58))}px`;
      if (saysHalt(haltRule, q, qContinue ? qContinue[k - 1] : null)) bar.classList.add("halt");
      bar.title = `step ${k}: sigmoid(q_halt) = ${p.toFixed(3)}`;
      bar.addEventListener("click", () => { this.stop(); this.go(k); });
      bars.append(bar);
      this.bars.push(bar);
    }
    const axis = document.createElement("div");
    axis.className = "qaxis";
    axis.textContent = `sigmoid(q_halt) for steps 1–${steps}`;
    this.container.append(controls, bars, axis);
    this.go(steps);
  }

  go(k) {
    if (this.steps < 1) return;
    this.step = Math.min(Math.max(1, k), this.steps);
    this.slider.value = this.step;
    this.bars.forEach((bar, i) => bar.classList.toggle("current", i + 1 === this.step));
    this.info.textContent = this.describe ? this.describe(this.step) : `step ${this.step} / ${this.steps}`;
    this.onStep(this.step);
    this.container.dataset.step = this.step;
  }

  play() {
    if (this.steps < 2) return;
    if (this.step >= this.steps) this.go(1);
    this.playButton.textContent = "pause";
    this.timer = setInterval(() => {
      if (this.step >= this.steps) this.stop();
      else this.go(this.step + 1);
    }, Number(this.speed.value));
  }

  stop() {
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.playButton) this.playButton.textContent = "play";
  }
}
