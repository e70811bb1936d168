// casulod's dashboard: the instance list with live CPU and memory, actions,
// a create form, a console (xterm.js) and the events stream.  Everything
// goes through casulod's own API (docs/casulod-api.yaml) on this origin.
'use strict';

const $ = (sel) => document.querySelector(sel);

async function api(method, path, body) {
  const opts = { method, headers: {} };
  if (body !== undefined) {
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const r = await fetch(path, opts);
  const text = await r.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (e) { data = text; }
  if (r.status === 401) { showLogin(); throw new Error('not signed in'); }
  if (r.status >= 400) throw new Error((data && data.error) || ('HTTP ' + r.status));
  return { status: r.status, data };
}

// Operations answer 202: wait for their end.
async function finish(res) {
  if (res.status !== 202) return res.data;
  const op = res.data;
  for (;;) {
    const w = await api('GET', `/v1/operations/${op.id}/wait?timeout_s=60`);
    if (w.data.status === 'success') return w.data.result;
    if (w.data.status === 'failure') throw new Error(w.data.error);
  }
}

function human(bytes) {
  if (bytes >= 1 << 30) return (bytes / (1 << 30)).toFixed(1) + ' GiB';
  if (bytes >= 1 << 20) return (bytes / (1 << 20)).toFixed(1) + ' MiB';
  return (bytes / 1024).toFixed(0) + ' KiB';
}

function status(inst) {
  if (inst.state !== 'stopped') return 'up ' + Math.round(Date.now() / 1000 - inst.started_at) + ' s';
  if (!inst.exit_reason) return 'never started';
  return inst.exit_reason + (inst.exit_status !== null ? ' ' + inst.exit_status : '');
}

function button(label, cls, fn) {
  const b = document.createElement('button');
  b.textContent = label;
  b.className = cls;
  b.type = 'button';
  b.addEventListener('click', async () => {
    b.disabled = true;
    $('#action-error').textContent = '';
    try { await fn(); } catch (e) { $('#action-error').textContent = e.message; }
    b.disabled = false;
    refresh();
  });
  return b;
}

function row(inst) {
  const tr = document.createElement('tr');
  tr.dataset.name = inst.name;
  tr.dataset.state = inst.state;
  const cells = [inst.name, inst.type, inst.state,
    inst.usage ? inst.usage.cpu_percent.toFixed(1) + ' %' : '',
    inst.usage ? human(inst.usage.memory_bytes) : '', '', status(inst)];
  const classes = ['name', 'type', 'state', 'cpu num', 'memory num', 'autostart', 'status'];
  cells.forEach((text, i) => {
    const td = document.createElement('td');
    td.className = classes[i];
    td.textContent = text;
    tr.appendChild(td);
  });
  const auto = document.createElement('input');
  auto.type = 'checkbox';
  auto.checked = inst.autostart.enabled;
  auto.title = 'start it when the host boots';
  auto.addEventListener('change', () => api('PATCH', '/v1/instances/' + inst.name,
    { autostart: { enabled: auto.checked } }).catch((e) => { $('#action-error').textContent = e.message; }));
  tr.querySelector('.autostart').appendChild(auto);
  const td = document.createElement('td');
  const running = inst.state === 'running' || inst.state === 'paused';
  if (!running) td.appendChild(button('Start', 'start', () =>
    api('PUT', `/v1/instances/${inst.name}/state`, { action: 'start' }).then(finish)));
  if (running) td.appendChild(button('Stop', 'stop', () =>
    api('PUT', `/v1/instances/${inst.name}/state`, { action: 'stop' }).then(finish)));
  if (running) td.appendChild(button('Console', 'console', () => openConsole(inst.name)));
  td.appendChild(button('Delete', 'delete', () =>
    api('DELETE', `/v1/instances/${inst.name}?force=true`).then(finish)));
  tr.appendChild(td);
  return tr;
}

async function refresh() {
  try {
    const { data } = await api('GET', '/v1/instances');
    const tbody = $('#instances tbody');
    tbody.replaceChildren(...data.map(row));
  } catch (e) { /* shown by api() or on the next round */ }
}

// ---- the console ----

let term = null, fit = null, sock = null;

function openConsole(name) {
  closeConsole();
  $('#console-pane').hidden = false;
  $('#console-name').textContent = name;
  term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 13 });
  fit = new FitAddon.FitAddon();
  term.loadAddon(fit);
  term.open($('#terminal'));
  fit.fit();
  const url = (location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host +
    `/v1/instances/${name}/console`;
  const connect = (mode) => {
    sock = new WebSocket(url + '?mode=' + mode);
    sock.binaryType = 'arraybuffer';
    sock.onopen = () => { $('#console-mode').textContent = mode === 'rw' ? '(writer)' : '(viewer: someone else writes)'; };
    sock.onmessage = (ev) => term.write(new Uint8Array(ev.data));
    sock.onclose = (ev) => {
      // Refused as a second writer before the upgrade: view instead.
      if (mode === 'rw' && ev.code === 1006 && !term.hasOpened) { connect('ro'); return; }
      term.write('\r\n[console closed]\r\n');
    };
    sock.addEventListener('open', () => { term.hasOpened = true; });
  };
  term.onData((data) => { if (sock && sock.readyState === WebSocket.OPEN) sock.send(new TextEncoder().encode(data)); });
  connect('rw');
  term.focus();
}

function closeConsole() {
  if (sock) sock.close();
  if (term) term.dispose();
  sock = term = null;
  $('#console-pane').hidden = true;
}

// ---- create ----

function splitCommand(text) {
  // Words, with '...' and "..." quoting; no escapes.
  const out = [];
  const re = /'([^']*)'|"([^"]*)"|(\S+)/g;
  let m;
  while ((m = re.exec(text))) out.push(m[1] ?? m[2] ?? m[3]);
  return out;
}

async function create(ev) {
  ev.preventDefault();
  $('#create-error').textContent = '';
  $('#create-status').textContent = 'creating...';
  const type = $('#create-type').value;
  const body = { name: $('#create-name').value, type };
  if (type === 'vm') {
    const vm = { cpus: Number($('#create-cpus').value), memory_mib: Number($('#create-memory').value) };
    for (const [id, key] of [['#create-kernel', 'kernel'], ['#create-initrd', 'initrd'], ['#create-cmdline', 'cmdline']])
      if ($(id).value) vm[key] = $(id).value;
    body.vm = vm;
  } else {
    const c = {};
    if ($('#create-image').value) c.image = $('#create-image').value;
    if ($('#create-bundle').value) c.bundle = $('#create-bundle').value;
    if ($('#create-command').value) c.command = splitCommand($('#create-command').value);
    if ($('#create-terminal').checked) c.terminal = true;
    body.container = c;
  }
  if ($('#create-stop-timeout').value !== '') body.stop_timeout_s = Number($('#create-stop-timeout').value);
  if ($('#create-autostart').checked) body.autostart = { enabled: true };
  if ($('#create-start').checked) body.start = true;
  try {
    await finish(await api('POST', '/v1/instances', body));
    $('#create-status').textContent = body.name + ' created';
  } catch (e) {
    $('#create-status').textContent = '';
    $('#create-error').textContent = e.message;
  }
  refresh();
}

// ---- events ----

function startEvents() {
  const es = new EventSource('/v1/events');
  const add = (ev) => {
    const e = JSON.parse(ev.data);
    const li = document.createElement('li');
    const when = new Date(e.time * 1000).toLocaleTimeString();
    li.textContent = e.type === 'lifecycle'
      ? `${when} ${e.action} ${e.instance} (${e.state}${e.exit_status != null ? ', ' + e.exit_status : ''})`
      : `${when} ${e.action} ${e.operation.type} ${e.operation.instance || ''} ${e.operation.status}`;
    li.dataset.action = e.action;
    const list = $('#events');
    list.prepend(li);
    while (list.children.length > 200) list.lastChild.remove();
    if (e.type === 'lifecycle') refresh();
  };
  es.addEventListener('lifecycle', add);
  es.addEventListener('operation', add);
}

// ---- start ----

function showLogin() {
  $('#login').hidden = false;
  $('#app').hidden = true;
}

async function login(ev) {
  ev.preventDefault();
  const r = await fetch('/v1/session', { method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ token: $('#login-token').value }) });
  // No reload: it would cut this request's end short (the browser reports
  // it as failed).
  if (r.status === 204) { await enter(); return; }
  $('#login-error').textContent = 'wrong token';
}

let entered = false;

// The app, once the session is good: the list, live, and the events.
async function enter() {
  try {
    const { data } = await api('GET', '/v1');
    $('#server').textContent = `casulod ${data.version}, ${data.instances} instances`;
  } catch (e) {
    // 401 showed the sign-in form; anything else (the server restarting,
    // a dropped connection) would leave a blank page: say so, ask again.
    if (!entered && e.message !== 'not signed in') {
      $('#server').textContent = `casulod unreachable (${e.message}): trying again`;
      setTimeout(enter, 2000);
    }
    return;
  }
  $('#login').hidden = true;
  $('#app').hidden = false;
  if (entered) return;
  entered = true;
  startEvents();
  refresh();
  setInterval(refresh, 1000);
}

async function main() {
  $('#login-form').addEventListener('submit', login);
  $('#create-form').addEventListener('submit', create);
  $('#create-type').addEventListener('change', () => {
    const vm = $('#create-type').value === 'vm';
    $('#vm-fields').hidden = !vm;
    $('#container-fields').hidden = vm;
  });
  $('#console-close').addEventListener('click', closeConsole);
  await enter();
}

main();
