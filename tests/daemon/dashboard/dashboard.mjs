// The dashboard in a real browser: Debian's chromium, headless, driven by
// playwright-core.  A person's steps: sign in with the token, create an
// instance from the form, see it running with its CPU and memory, type into
// its console and read the answer, see the events, stop and delete it.
//
//   node dashboard.mjs URL TOKEN SPEC_JSON
// SPEC_JSON: {"name", "type": "vm"|"container", "fields": {"#create-x": value},
//             "ready": text the console shows when it takes input,
//             "input": what to type, "answer": what must come back}
// Prints one line per step; exits 1 with the reason on the first failure.
import { chromium } from 'playwright-core';

const [url, token, specText] = process.argv.slice(2);
const spec = JSON.parse(specText);
const chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium';
const started = Date.now();

function step(what) {
  console.log(`# ${((Date.now() - started) / 1000).toFixed(1)} s: ${what}`);
}

const browser = await chromium.launch({
  executablePath: chromiumPath,
  headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
         '--disable-sync', '--no-first-run', '--disable-dev-shm-usage'],
});
let failed = null;
const pageErrors = [];
try {
  const context = await browser.newContext({ ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const errors = pageErrors;
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('requestfailed', (r) => {
    if (!r.url().includes('/v1/events')) errors.push('request failed: ' + r.url());
  });
  page.setDefaultTimeout(Number(process.env.DASHBOARD_TIMEOUT_MS || 60000));

  await page.goto(url);
  await page.locator('#login-token').fill(token);
  await page.locator('#login-form button').click();
  await page.locator('#app').waitFor({ state: 'visible' });
  step('signed in');

  await page.locator('#create-type').selectOption(spec.type);
  await page.locator('#create-name').fill(spec.name);
  for (const [sel, value] of Object.entries(spec.fields || {})) await page.locator(sel).fill(String(value));
  await page.locator('#create-submit').click();
  const row = page.locator(`tr[data-name="${spec.name}"]`);
  await page.locator(`tr[data-name="${spec.name}"][data-state="running"]`).waitFor();
  step('created from the form, running');
  // Live figures in the list itself.
  await page.waitForFunction((name) => {
    const tr = document.querySelector(`tr[data-name="${name}"]`);
    return tr && tr.querySelector('.memory').textContent.trim() !== '' && tr.querySelector('.cpu').textContent.includes('%');
  }, spec.name);
  step('CPU and memory shown: ' + (await row.locator('.cpu').textContent()) + ', ' +
       (await row.locator('.memory').textContent()));

  await row.locator('button.console').click();
  const rows = page.locator('#terminal .xterm-rows');
  await rows.waitFor();
  const termText = () => rows.innerText();
  const waitText = async (needle, what) => {
    const end = Date.now() + Number(process.env.DASHBOARD_TIMEOUT_MS || 60000);
    for (;;) {
      const t = await termText();
      if (t.includes(needle)) return t;
      if (Date.now() > end) throw new Error(`${what}: '${needle}' not in the console: ${t.slice(-400)}`);
      await page.waitForTimeout(200);
    }
  };
  if (spec.ready) {
    // A shell's prompt may have gone by before the console opened: Enter asks again.
    await page.locator('#terminal').click();
    await page.keyboard.press('Enter');
    await waitText(spec.ready, 'the prompt');
  }
  step('console open');
  await page.locator('#terminal').click();
  await page.keyboard.type(spec.input);
  await page.keyboard.press('Enter');
  await waitText(spec.answer, 'the answer');
  step(`typed '${spec.input}', read '${spec.answer}'`);

  await page.locator(`#events li[data-action="instance-started"]`).first().waitFor();
  step('events pane: ' + (await page.locator('#events li').count()) + ' events');

  await row.locator('button.stop').click();
  await page.locator(`tr[data-name="${spec.name}"][data-state="stopped"]`).waitFor({ timeout: 120000 });
  step('stopped: ' + (await row.locator('.status').textContent()));
  await row.locator('button.delete').click();
  await row.waitFor({ state: 'detached' });
  step('deleted');
  if (errors.length) throw new Error('page errors: ' + errors.join('; '));
} catch (e) {
  failed = e;
} finally {
  await browser.close();
}
if (failed) {
  // What the page itself saw (failed requests, script errors) tells a
  // timeout's cause.
  const lines = String(failed.message || failed).split('\n');
  const waitingFor = lines.find((l) => l.includes('waiting for'));
  console.log('FAILED: ' + lines[0] + (waitingFor ? ` (${waitingFor.trim()})` : '') +
              (pageErrors.length ? '; the page saw: ' + pageErrors.slice(-5).join('; ') : ''));
  process.exit(1);
}
console.log('PASSED');
