// The apmatrix web page: reads /api/v1/host and /api/v1/matrix, follows the
// event stream, and writes through the same endpoints as the CLI (a sysfs
// write is POST /api/v1/sysfs, the same store as `echo … > file` on the mount).
"use strict";

const API = "/api/v1";
// The model's APQN states (APQNState): the cell's class is s-<state>.
const STATES = {
  "host":             { letter: "H", label: "reserved for the host (bound to cex4queue by apmask and aqmask)" },
  "free":             { letter: "F", label: "free for vfio_ap (bound to vfio_ap, no mdev)" },
  "unbound":          { letter: "U", label: "bound to no driver, no mdev" },
  "assigned":         { letter: "A", label: "assigned to an mdev no guest uses" },
  "in-guest":         { letter: "G", label: "in a guest's CRYCB" },
  "filtered":         { letter: "X", label: "assigned, but filtered out of the guest" },
  "over-provisioned": { letter: "O", label: "assigned, not in the LPAR (over-provisioned)" },
  "absent":           { letter: "N", label: "absent: in the LPAR, but no queue device" },
};
// The cells the matrix leaves out are absent too: their adapter or domain is not in the LPAR.
const OUTSIDE = { letter: "·", label: "absent: not in the LPAR" };

const state = { host: null, matrix: null, cells: new Map(), selectedMdev: null, focus: null, lastSeq: 0 };
const $ = (id) => document.getElementById(id);
const hex = (n, w) => n.toString(16).padStart(w, "0");
const apqnName = (a, q) => `${hex(a, 2)}.${hex(q, 4)}`;

function ids(list) {
  // 1,2,3,7 -> "1-3,7" (display only; the server formats masks itself)
  const out = [];
  for (let i = 0; i < list.length; i++) {
    let j = i;
    while (j + 1 < list.length && list[j + 1] === list[j] + 1) j++;
    out.push(j > i ? `${list[i]}-${list[j]}` : `${list[i]}`);
    i = j;
  }
  return out.length ? out.join(",") : "–";
}

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function api(method, path, body) {
  const r = await fetch(API + path, {
    method, headers: body ? { "Content-Type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined,
  });
  const text = await r.text();
  const json = text ? JSON.parse(text) : {};
  if (!r.ok) {
    const e = json.error || { errno: `HTTP ${r.status}`, message: text };
    throw Object.assign(new Error(e.message), { errno: e.errno, code: e.code });
  }
  return json;
}

function showMessage(text, isError) {
  const m = $("message");
  m.textContent = text;
  m.className = "message " + (isError ? "error" : "ok");
  m.hidden = false;
}

// --- confirmation, then one request; the errno and message on failure ---

function confirmAction(text) {
  return new Promise((resolve) => {
    const d = $("confirm");
    $("confirm-text").textContent = text;
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.returnValue = "cancel";
    d.showModal();
    $("confirm-cancel").focus();
  });
}

async function act(description, request) {
  if (!(await confirmAction(description))) return;
  try {
    await request();
    showMessage(`done: ${description}`, false);
  } catch (e) {
    showMessage(`${e.errno}${e.code ? ` (${e.code})` : ""}: ${e.message}`, true);
  }
  refresh();
}

const sysfsWrite = (path, value) => act(`echo ${value} > ${path}`, () => api("POST", "/sysfs", { path, value }));
const mdevPath = (uuid) => `devices/vfio_ap/matrix/${uuid}`;

// --- the grid ---

function axes() {
  const m = state.matrix;
  if ($("show-all").checked) {
    const range = (n) => Array.from({ length: n + 1 }, (_, i) => i);
    return { adapters: range(m.maxAdapter), domains: range(m.maxDomain) };
  }
  return { adapters: m.adapters, domains: m.domains };
}

// What one cell shows: its class, letter and words, from the cell's state
// and whether the selected mdev has it assigned or in its guest.
function cellView(a, q, mdev) {
  const c = state.cells.get(apqnName(a, q));
  // not in the LPAR: kept short, since "show all" draws 65536 cells
  if (!c) return { cls: "cell s-absent outside", letter: OUTSIDE.letter, title: null, label: `${apqnName(a, q)} ${OUTSIDE.label}` };
  const s = STATES[c.state];
  const has = (m) => m && m.apm.includes(a) && m.aqm.includes(q);
  const marks = (has(mdev?.matrix) ? " hl-matrix" : "") + (has(mdev?.guestMatrix) ? " hl-guest" : "");
  const who = c.guest ? ` guest ${c.guest}` : c.mdev ? ` mdev ${c.mdev}` : "";
  return { cls: `cell s-${c.state}${marks}`, letter: s.letter, title: `${c.apqn}: ${s.label}${who}`,
           label: `${c.apqn} ${s.label}${who}${marks ? ", in selected mdev" : ""}` };
}

// The axes the grid in the page was drawn with ("" before the first drawing).
let drawnAxes = "";

// Draws the grid. With the same axes as the grid on the page (every update
// while "show all" draws its 65536 cells), only the cells whose view changed
// are touched: those that are or were in the matrix's cell list.
function renderGrid(previousCells = new Map()) {
  const { adapters, domains } = axes();
  const mdev = state.host.mdevs.find((m) => m.uuid === state.selectedMdev);
  const key = `${adapters}|${domains}`;
  if (key === drawnAxes) {
    const inAxes = new Set(adapters), inRows = new Set(domains);
    for (const name of new Set([...previousCells.keys(), ...state.cells.keys()])) {
      const c = state.cells.get(name) ?? previousCells.get(name);
      if (!inAxes.has(c.apid) || !inRows.has(c.apqi)) continue;
      const td = gridCell(c.apid, c.apqi), v = cellView(c.apid, c.apqi, mdev);
      if (td.className === v.cls && td.getAttribute("aria-label") === v.label) continue;
      td.className = v.cls;
      td.textContent = v.letter;
      if (v.title) td.title = v.title; else td.removeAttribute("title");
      td.setAttribute("aria-label", v.label);
    }
    return;
  }
  drawnAxes = key;
  const html = ['<thead><tr><th scope="col" class="corner">APQI \\ APID</th>'];
  for (const a of adapters) html.push(`<th scope="col">${hex(a, 2)}</th>`);
  html.push("</tr></thead><tbody>");
  for (const q of domains) {
    html.push(`<tr><th scope="row">${hex(q, 4)}</th>`);
    for (const a of adapters) {
      const v = cellView(a, q, mdev);
      html.push(`<td role="gridcell" tabindex="-1" class="${v.cls}" data-apid="${a}" data-apqi="${q}"`
        + `${v.title ? ` title="${v.title}"` : ""} aria-label="${v.label}">${v.letter}</td>`);
    }
    html.push("</tr>");
  }
  html.push("</tbody>");
  $("grid").innerHTML = html.join("");
  const f = state.focus;
  const target = (f && gridCell(f.apid, f.apqi)) || $("grid").querySelector("td");
  if (target) target.tabIndex = 0;
}

const gridCell = (a, q) => $("grid").querySelector(`td[data-apid="${a}"][data-apqi="${q}"]`);

function moveFocus(td) {
  if (!td) return;
  $("grid").querySelectorAll('td[tabindex="0"]').forEach((c) => (c.tabIndex = -1));
  td.tabIndex = 0;
  td.focus();
  selectCell(+td.dataset.apid, +td.dataset.apqi);
}

function onGridKey(e) {
  const td = e.target.closest("td");
  if (!td) return;
  const row = td.parentElement, index = td.cellIndex, rows = $("grid").tBodies[0].rows;
  let next = null;
  switch (e.key) {
    case "ArrowRight": next = td.nextElementSibling; break;
    case "ArrowLeft": next = td.previousElementSibling?.tagName === "TD" ? td.previousElementSibling : null; break;
    case "ArrowDown": next = row.nextElementSibling?.cells[index]; break;
    case "ArrowUp": next = row.previousElementSibling?.cells[index]; break;
    case "Home": next = row.cells[1]; break;
    case "End": next = row.cells[row.cells.length - 1]; break;
    case "PageDown": next = rows[Math.min(rows.length - 1, row.sectionRowIndex + 10)].cells[index]; break;
    case "PageUp": next = rows[Math.max(0, row.sectionRowIndex - 10)].cells[index]; break;
    default: return;
  }
  e.preventDefault();
  moveFocus(next);
}

async function selectCell(a, q) {
  state.focus = { apid: a, apqi: q };
  const name = apqnName(a, q);
  try {
    showCell(await api("GET", `/cells/${name}`));
  } catch (e) {
    $("cell-info").textContent = `${e.errno}: ${e.message}`;
  }
}

function showCell(c) {
  const s = STATES[c.state];
  $("cell-title").textContent = `Cell ${c.apqn}`;
  const dl = el("dl", { class: "cell-info" },
    el("dt", {}, "state"), el("dd", {}, el("span", { class: `swatch s-${c.state}` }, s.letter), ` ${s.label}`),
    el("dt", {}, "driver"), el("dd", {}, c.driver ?? "no queue device"),
    el("dt", {}, "owner"), el("dd", {}, c.owner),
    el("dt", {}, "mdev"), el("dd", {}, c.mdev ?? "–"),
    el("dt", {}, "why"), el("dd", { id: "cell-explanation" }, c.explanation ?? ""));
  $("cell-info").replaceChildren(dl);
  const actions = [];
  if (state.selectedMdev) {
    const short = state.selectedMdev.slice(0, 8);
    actions.push(el("button", { type: "button", onclick: () => sysfsWrite(`${mdevPath(state.selectedMdev)}/assign_adapter`, `0x${hex(c.apid, 2)}`) },
      `assign adapter ${hex(c.apid, 2)} to ${short}…`));
    actions.push(el("button", { type: "button", onclick: () => sysfsWrite(`${mdevPath(state.selectedMdev)}/assign_domain`, `0x${hex(c.apqi, 4)}`) },
      `assign domain ${hex(c.apqi, 4)} to ${short}…`));
  }
  $("cell-actions").replaceChildren(...actions);
}

// --- lists ---

function matrixText(m) {
  return m ? `${ids(m.apm)} × ${ids(m.aqm)}` : "–";
}

function renderMdevs() {
  const h = state.host;
  if (!h.mdevs.some((m) => m.uuid === state.selectedMdev)) state.selectedMdev = null;
  $("instances").textContent = `(available_instances ${h.availableInstances})`;
  $("mdevs").replaceChildren(...h.mdevs.map((m) => el("tr", { class: m.uuid === state.selectedMdev ? "selected" : "" },
    el("td", {}, el("input", {
      type: "radio", name: "mdev", value: m.uuid, "aria-label": `select mdev ${m.uuid}`, checked: m.uuid === state.selectedMdev,
      onchange: () => {
        state.selectedMdev = m.uuid;
        render(state.cells);
        if (state.focus) selectCell(state.focus.apid, state.focus.apqi);
      },
    })),
    el("td", {}, el("code", {}, m.uuid)),
    el("td", {}, matrixText(m.matrix)),
    el("td", {}, ids(m.matrix.adm)),
    el("td", {}, m.guestMatrix ? matrixText(m.guestMatrix) : "– (ENODEV: no guest)"),
    el("td", {}, m.guest ?? "–"))));
  $("remove-mdev").disabled = !state.selectedMdev;
  $("assign-submit").disabled = !state.selectedMdev;
  const select = $("guest-mdev"), keep = select.value;
  select.replaceChildren(el("option", { value: "" }, "(no device)"),
    ...h.mdevs.filter((m) => !m.guest).map((m) => el("option", { value: m.uuid }, m.uuid)));
  select.value = [...select.options].some((o) => o.value === keep) ? keep : "";
}

function renderGuests() {
  $("guests").replaceChildren(...state.host.guests.map((g) => el("tr", {},
    el("td", {}, g.name),
    el("td", {}, el("code", {}, g.cpu)),
    el("td", {}, g.device ? `${g.device.id} → mdev ${g.device.mdev}` : "–"),
    el("td", {}, `APM ${ids(g.crycb.apm)} AQM ${ids(g.crycb.aqm)} ADM ${ids(g.crycb.adm)}`),
    el("td", {}, el("button", { type: "button", onclick: () => act(`stop guest ${g.name}`, () => api("DELETE", `/guests/${encodeURIComponent(g.name)}`)) },
      `Stop ${g.name}…`)))));
}

function renderMasks() {
  $("apmask-hex").textContent = state.host.apmask;
  $("aqmask-hex").textContent = state.host.aqmask;
  $("apmask-ids").textContent = `ids ${state.matrix.apmaskIDs || "–"}`;
  $("aqmask-ids").textContent = `ids ${state.matrix.aqmaskIDs || "–"}`;
}

function render(previousCells) {
  $("profile").textContent = `— ${state.host.profile} profile`;
  renderGrid(previousCells);
  renderMdevs();
  renderGuests();
  renderMasks();
}

function appendLog(e) {
  if (e.sequence <= state.lastSeq) return;
  state.lastSeq = e.sequence;
  const log = $("log");
  log.append(el("li", { class: `log-${e.kind}`, "data-sequence": e.sequence }, e.dmesg));
  while (log.children.length > 500) log.firstElementChild.remove();
  log.scrollTop = log.scrollHeight;
}

// --- data and live updates ---

let refreshing = null, again = false;
async function refresh() {
  if (refreshing) { again = true; return refreshing; }
  refreshing = (async () => {
    do {
      again = false;
      const [host, matrix] = await Promise.all([api("GET", "/host"), api("GET", "/matrix")]);
      state.host = host;
      state.matrix = matrix;
      const previousCells = state.cells;
      state.cells = new Map(matrix.cells.map((c) => [c.apqn, c]));
      const hadFocus = document.activeElement?.closest?.("#grid");
      render(previousCells);
      if (hadFocus && state.focus) gridCell(state.focus.apid, state.focus.apqi)?.focus();
      if (state.focus) selectCell(state.focus.apid, state.focus.apqi);
    } while (again);
  })().catch((e) => showMessage(`cannot read the host: ${e.message}`, true)).finally(() => { refreshing = null; });
  return refreshing;
}

function follow() {
  const source = new EventSource(`${API}/events/stream?after=${state.lastSeq}`);
  source.addEventListener("open", () => { $("live").textContent = "live"; $("live").className = "live on"; });
  source.addEventListener("error", () => { $("live").textContent = "reconnecting…"; $("live").className = "live off"; });
  source.addEventListener("log", (m) => {
    appendLog(JSON.parse(m.data));
    refresh();
  });
}

function wire() {
  $("legend").replaceChildren(...[...Object.entries(STATES), ["absent outside", OUTSIDE]].map(([k, s]) =>
    el("li", {}, el("span", { class: `swatch s-${k}`, "aria-hidden": "true" }, s.letter), ` ${s.label}`)));
  $("grid").addEventListener("keydown", onGridKey);
  $("grid").addEventListener("click", (e) => { const td = e.target.closest("td"); if (td) moveFocus(td); });
  $("show-all").addEventListener("change", () => {
    $("grid-wrap").classList.toggle("all", $("show-all").checked);
    renderGrid();
  });
  $("create-mdev").addEventListener("click", () =>
    sysfsWrite("devices/vfio_ap/matrix/mdev_supported_types/vfio_ap-passthrough/create", crypto.randomUUID()));
  $("remove-mdev").addEventListener("click", () => sysfsWrite(`${mdevPath(state.selectedMdev)}/remove`, "1"));
  $("assign-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sysfsWrite(`${mdevPath(state.selectedMdev)}/${$("assign-attr").value}`, $("assign-value").value);
  });
  $("mask-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sysfsWrite(`bus/ap/${$("mask-which").value}`, $("mask-value").value);
  });
  $("guest-form").addEventListener("submit", (e) => {
    e.preventDefault();
    const name = $("guest-name").value, cpu = $("guest-cpu").value, mdev = $("guest-mdev").value;
    const device = mdev ? `vfio-ap,sysfsdev=/sys/${mdevPath(mdev)},id=hostdev0` : undefined;
    act(`start guest ${name} -cpu ${cpu}${device ? ` -device ${device}` : ""}`, () => api("POST", "/guests", { name, cpu, device }));
  });
}

async function main() {
  wire();
  for (const e of await api("GET", "/events")) appendLog(e);
  await refresh();
  follow();
}

main();
