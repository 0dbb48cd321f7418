// qa's search page: asks GET /ask/highlights and shows the cited sentences. No dependencies, no network but qa.
"use strict";

const $ = (id) => document.getElementById(id);
const CONTEXT = 2; // neighbouring sentences fetched for "show context"

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else e.setAttribute(k, v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

// text with the question's terms as <mark class="term"> and the short answer as one <mark class="answer"> around
// its own term marks. Spans are [start, end) code-point offsets, as qa's are (JS strings count UTF-16 units, hence
// Array.from).
function marked(text, termSpans, answerSpan) {
  const cps = Array.from(text);
  const term = new Array(cps.length).fill(false);
  for (const [s, e] of termSpans || []) for (let i = s; i < e && i < cps.length; i++) term[i] = true;
  const terms = (from, to) => {
    const frag = document.createDocumentFragment();
    let i = from;
    while (i < to) {
      let j = i;
      while (j < to && term[j] === term[i]) j++;
      const piece = cps.slice(i, j).join("");
      frag.append(term[i] ? el("mark", {class: "term"}, piece) : piece);
      i = j;
    }
    return frag;
  };
  if (!answerSpan) return terms(0, cps.length);
  const a = Math.max(0, Math.min(answerSpan[0], cps.length)), b = Math.max(a, Math.min(answerSpan[1], cps.length));
  const frag = document.createDocumentFragment();
  frag.append(terms(0, a), el("mark", {class: "answer"}, terms(a, b)), terms(b, cps.length));
  return frag;
}

function num(x, digits) { return x === null || x === undefined ? "–" : Number(x).toFixed(digits); }

function retriever(name, score, rank, digits) {
  if (score === null || score === undefined) return el("span", {class: "ret"}, `${name} –`);
  const where = rank === null || rank === undefined ? "no match" : `#${rank}`;
  return el("span", {class: "ret"}, `${name} ${num(score, digits)} (${where})`);
}

// the top line, as `qa ask` prints it: "A: <short answer>  [article §n]", with a note when a neighbouring sentence
// was needed to choose it; nothing when there is no short answer (none is given when the answer is not answerable)
// A list answer (short.items) names each item with its sentence: "A: Japan [§3] · South Korea [§3]  [article]".
function shortLine(short, top) {
  if (!short || typeof short !== "object" || typeof short.text !== "string") return null;
  const art = short.article ?? (top && top.article), sent = short.sentence ?? (top && top.sentence);
  if (Array.isArray(short.items) && short.items.length) {
    const parts = [];
    short.items.forEach((it, i) => {
      if (i) parts.push(" · ");
      parts.push(el("strong", {}, it.text), ` [§${it.sentence}]`);
    });
    return el("p", {class: "short-answer"}, "A: ", ...parts, el("span", {class: "cite"}, `  [${art}]`));
  }
  return el("p", {class: "short-answer"}, "A: ", el("strong", {}, short.text),
    art === undefined || art === null ? null : el("span", {class: "cite"}, ` [${art} §${sent}]`),
    short.uses_context ? " (chosen with the sentence before/after)" : null);
}

function renderHit(hit, hl, i, low) {
  const li = el("li", {class: "hit" + (low ? " low" : "")});
  const conf = hit.confidence === null || hit.confidence === undefined ? null : hit.confidence;
  const head = el("div", {class: "head"},
    el("span", {class: "cite"}, `[${hit.article} §${hit.sentence}]`),
    hit.title ? el("span", {class: "title"}, hit.title) : null,
    conf === null ? null : el("span", {class: "conf", title: "calibrated probability that this sentence answers"},
      el("meter", {min: "0", max: "1", value: String(conf)}), ` conf ${num(conf, 2)}${low ? " (low)" : ""}`));
  li.append(head);
  // the short answer's offsets are into the source file, like the sentence's: its place in the sentence is the difference.
  // As in `qa ask`: when the corpus does not seem to answer (low), no sentence gets a short answer marked.
  const a = !low && hit.answer && typeof hit.answer === "object" && Number.isInteger(hit.answer.start) ? hit.answer : null;
  const answerSpan = a ? [a.start - hit.start, a.end - hit.start] : null;
  const before = el("div", {class: "context before", hidden: ""});
  const after = el("div", {class: "context after", hidden: ""});
  const ctx = hit.context || {before: [], after: []};
  ctx.before.forEach((c, j) => before.append(el("p", {}, `§${c.sentence} `, marked(c.text, hl.before[j]))));
  ctx.after.forEach((c, j) => after.append(el("p", {}, `§${c.sentence} `, marked(c.text, hl.after[j]))));
  li.append(before, el("p", {class: "text"}, marked(hit.text, hl.text, answerSpan)), after);
  if (a) li.append(el("p", {class: "short"}, "answer: ", el("mark", {class: "answer"}, a.text)));
  const scores = el("div", {class: "scores"},
    el("span", {class: "ret"}, `score ${num(hit.score, 4)}`),
    retriever("bm25", hit.scores.bm25, hit.ranks.bm25, 2),
    retriever("dense", hit.scores.dense, hit.ranks.dense, 3),
    hit.rerank_score === null || hit.rerank_score === undefined ? null : el("span", {class: "ret"}, `fused ${num(hit.retrieval_score, 4)}`));
  const src = `/source?article=${encodeURIComponent(hit.article)}&start=${hit.start}&end=${hit.end}#cited`;
  const actions = el("div", {class: "actions"});
  if (ctx.before.length || ctx.after.length) {
    const btn = el("button", {type: "button", class: "show-context", "aria-expanded": "false"}, "show context");
    btn.addEventListener("click", () => {
      const open = before.hidden;
      before.hidden = after.hidden = !open;
      btn.textContent = open ? "hide context" : "show context";
      btn.setAttribute("aria-expanded", String(open));
    });
    actions.append(btn);
  }
  actions.append(el("a", {class: "source", href: src}, `${hit.path || hit.article} chars ${hit.start}–${hit.end}`));
  li.append(scores, actions);
  return li;
}

async function ask(q, mode, k) {
  const status = $("status"), hits = $("hits"), summary = $("summary");
  status.textContent = "asking…";
  hits.replaceChildren();
  summary.replaceChildren();
  const params = new URLSearchParams({q, mode, k, context: String(CONTEXT)});
  let body;
  try {
    const r = await fetch(`/ask/highlights?${params}`, {headers: {Accept: "application/json"}});
    body = await r.json();
    if (!r.ok) { status.textContent = `error: ${body.error || r.status}`; status.className = "error"; return; }
  } catch (e) {
    status.textContent = `error: ${e}`; status.className = "error"; return;
  }
  const ans = body.answer;
  status.className = "";
  const how = [ans.mode, ans.fusion, ans.rerank ? `reranked by ${ans.rerank}` : null].filter(Boolean).join(", ");
  status.textContent = `${ans.hits.length} sentence(s) · ${how}`;
  const low = ans.answerable === false;
  summary.append(el("p", {class: "terms", title: "as qa's tokenizer sees them: case-folded and stemmed"}, "query terms: ",
    ...body.terms.map((t) => el("code", {}, t))));
  const short = low ? null : shortLine(ans.short, ans.hits[0]);
  if (short) summary.append(short);
  if (low && ans.hits.length) summary.append(el("p", {class: "notfound"},
    "Not found: the corpus does not seem to answer this question (top confidence " +
    `${num(ans.hits[0].confidence, 2)}). Closest sentences, low confidence:`));
  if (!ans.hits.length) summary.append(el("p", {}, "(no hits)"));
  ans.hits.forEach((h, i) => hits.append(renderHit(h, body.highlights[i], i, low)));
}

function fromLocation() {
  const p = new URLSearchParams(location.search);
  const q = p.get("q");
  if (p.get("mode")) $("mode").value = p.get("mode");
  if (p.get("k")) $("k").value = p.get("k");
  if (q) { $("q").value = q; ask(q, $("mode").value, $("k").value); }
}

document.addEventListener("DOMContentLoaded", () => {
  $("ask").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const q = $("q").value;
    if (!q.trim()) return;
    const p = new URLSearchParams({q, mode: $("mode").value, k: $("k").value});
    history.pushState(null, "", `/?${p}`);
    ask(q, $("mode").value, $("k").value);
  });
  window.addEventListener("popstate", fromLocation);
  fromLocation();
});
