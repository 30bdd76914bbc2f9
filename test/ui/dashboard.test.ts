import { existsSync, mkdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createApiKey } from '../../src/store/api-keys.js';
import { openStore } from '../../src/store/db.js';
import { call, startTestServer, type TestServer } from '../helpers/server.js';

/**
 * The dashboard in a real headless Chromium (Debian's package, installed by scripts/setup.sh)
 * against a real server: what a person clicks, the API answers, and the page shows. Waits are for
 * elements and states, each bounded; screenshots of every page go to test-results/ui/.
 */

const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/lib/chromium/chromium', '/usr/bin/chromium'].find(
  (path): path is string => !!path && existsSync(path),
);
if (!CHROMIUM) {
  if (process.env.CI === 'true')
    throw new Error('chromium is not installed (scripts/setup.sh installs it): CI runs the dashboard tests');
  console.warn('dashboard tests skipped: no chromium on this machine (scripts/setup.sh installs it)');
}

const SHOTS = fileURLToPath(new URL('../../test-results/ui/', import.meta.url));
const WAIT = { timeout: 60_000 };
const MARKUP = `<img src=x onerror="document.body.dataset.pwned='yes'"><b>bold</b>`;

const launch = () =>
  chromium.launch({
    executablePath: CHROMIUM!,
    headless: true,
    // We are root here, where Chromium's own sandbox cannot start; the page is our own.
    args: ['--no-sandbox'],
  });

describe.skipIf(!CHROMIUM)('the dashboard at /ui, in headless Chromium', () => {
  let t: TestServer;
  let browser: Browser;
  let page: Page;
  const pageErrors: string[] = [];

  const shot = (name: string) => page.screenshot({ path: `${SHOTS}${name}.png`, fullPage: true });
  const open = async (section: string) => {
    await page.goto(`${t.url}/ui#${section}`);
    await page.locator(`#page-${section}`).waitFor({ state: 'visible', ...WAIT });
  };

  beforeAll(async () => {
    mkdirSync(SHOTS, { recursive: true });
    t = await startTestServer({ jobs: { pollMs: 50 } });
    browser = await launch();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (msg) => {
      if (msg.type() === 'error' && /Content Security Policy/i.test(msg.text())) pageErrors.push(msg.text());
    });
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it('serves the page, script and stylesheet with their types and a CSP that allows no inline script', async () => {
    for (const [path, type] of [
      ['/ui', 'text/html'],
      ['/ui/app.js', 'text/javascript'],
      ['/ui/app.css', 'text/css'],
    ] as const) {
      const res = await fetch(`${t.url}${path}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toContain(type);
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      const csp = res.headers.get('content-security-policy') ?? '';
      expect(csp).toContain("script-src 'self'");
      expect(csp).not.toContain('unsafe-inline');
      expect(csp).toContain("default-src 'none'");
    }
  });

  it('runs code with stdin and limits and shows the result, printing markup as text', async () => {
    await open('run');
    await page.locator('#run-language option[value="python"]').waitFor({ state: 'attached', ...WAIT });
    await page.selectOption('#run-language', 'python');
    await page.fill('#run-code', `import sys\nprint(${JSON.stringify(MARKUP)} + sys.stdin.read())`);
    await page.fill('#run-stdin', 'from stdin');
    await page.fill('#run-timeout', '10');
    await page.fill('#run-memory', '128');
    await page.click('#run-submit');

    const stdout = page.locator('#run-result pre.stdout');
    await stdout.waitFor(WAIT);
    expect(await stdout.textContent()).toBe(`${MARKUP}from stdin\n`);
    expect(await page.locator('#run-result .badge').first().textContent()).toBe('success');
    // Printed as text: no element was made from it, so its handler had nothing to run from.
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.locator('#run-result b').count()).toBe(0);
    expect(await page.evaluate(() => document.body.dataset.pwned)).toBeUndefined();
    await shot('run');
  });

  it('lists recent executions with their verdict and usage, and opens one', async () => {
    await open('executions');
    const row = page.locator('#executions-body tr').first();
    await row.waitFor(WAIT);
    expect(await row.locator('td').nth(3).textContent()).toContain('success');
    expect(await row.locator('td').nth(5).textContent()).toMatch(/(KiB|MiB)$/);
    await row.locator('a').click();
    const stdout = page.locator('#execution-detail pre.stdout');
    await stdout.waitFor(WAIT);
    expect(await stdout.textContent()).toBe(`${MARKUP}from stdin\n`);
    expect(await page.locator('img').count()).toBe(0);
    await shot('executions');
  });

  it('uploads task files, shows one become VALIDATED and one REJECTED with its reasons, and runs the valid one', async () => {
    await open('tasks');
    const upload = async (name: string, text: string) => {
      await page.setInputFiles('#upload-file', { name, mimeType: 'text/plain', buffer: Buffer.from(text) });
      await page.click('#upload-submit');
      await page.locator(`#tasks-body tr:has(td:text-is("${name}"))`).waitFor(WAIT);
    };
    await upload('double.py', 'async def handler(payload):\n    return {"n": payload.get("n", 0) * 2}\n');
    await upload('shell.py', 'import os\n\nasync def handler(payload):\n    return os.system("id")\n');

    const validated = page.locator('#tasks-body tr[data-status="VALIDATED"]:has(td:text-is("double.py"))');
    const rejected = page.locator('#tasks-body tr[data-status="REJECTED"]:has(td:text-is("shell.py"))');
    await validated.waitFor(WAIT);
    await rejected.waitFor(WAIT);
    expect(await rejected.locator('li').count()).toBeGreaterThan(0);
    expect(await rejected.locator('td').nth(4).textContent()).toMatch(/os/);

    await page.fill('#task-title', 'double');
    await page.fill('#task-payload', '{"n": 21}');
    await page.click('#task-submit');
    const result = page.locator('#task-result pre.stdout');
    await result.waitFor(WAIT);
    expect(JSON.parse((await result.textContent()) ?? '')).toEqual({ n: 42 });
    expect(await page.locator('#task-result .badge').first().textContent()).toBe('succeeded');
    await shot('tasks');
  });

  it('starts a job, shows its log lines as they arrive and links its artifacts', async () => {
    await open('jobs');
    await page.fill('#job-command', 'python3 -u count.py');
    await page.fill('#job-file-name', 'count.py');
    await page.fill(
      '#job-file-content',
      [
        'import sys',
        'for i in range(1, 4):',
        '    print(f"line {i}")',
        'print("<script>document.body.dataset.pwned = 1</script>", file=sys.stderr)',
        'open("/out/result.txt", "w").write("done\\n")',
      ].join('\n'),
    );
    await page.click('#job-submit');

    const log = page.locator('#job-log');
    await log.locator('.line.stdout').nth(2).waitFor(WAIT);
    expect(await log.locator('.line.stdout').allTextContents()).toEqual(['line 1', 'line 2', 'line 3']);
    await page.locator('#job-log[data-ended="completed"]').waitFor(WAIT);
    expect(await log.locator('.line.stderr').allTextContents()).toEqual([
      '<script>document.body.dataset.pwned = 1</script>',
    ]);
    expect(await page.locator('#job-status').textContent()).toBe('completed');

    const artifact = page.locator('#job-artifacts a');
    await artifact.waitFor(WAIT);
    expect(await artifact.textContent()).toBe('result.txt');
    const href = await artifact.getAttribute('href');
    expect(href).toMatch(/^http:\/\//);
    expect(await (await fetch(href!)).text()).toBe('done\n');
    expect(await page.locator('#job-log script').count()).toBe(0);
    expect(await page.evaluate(() => document.body.dataset.pwned)).toBeUndefined();
    await shot('jobs');
  });

  it('cancels a running job from its page', async () => {
    await open('jobs');
    await page.fill('#job-command', 'sleep 60');
    await page.fill('#job-file-name', '');
    await page.click('#job-submit');
    await page.locator('#job-cancel').waitFor({ state: 'visible', ...WAIT });
    await page.click('#job-cancel');
    await page.locator('#job-log[data-ended="cancelled"]').waitFor(WAIT);
    expect(await page.locator('#job-status').textContent()).toBe('cancelled');
    expect(await page.locator('#job-cancel').isHidden()).toBe(true);
  });

  it('shows health, queues, workers, sandboxes and metrics', async () => {
    await open('system');
    await page.locator('#health-status .badge').waitFor(WAIT);
    await page.locator('#queues-body tr[data-queue="executions"]').waitFor(WAIT);
    await page.locator('#workers-body tr').first().waitFor(WAIT);
    await page.locator('#metrics-body tr:has(td:text-is("warden_runs_total"))').first().waitFor(WAIT);
    expect(await page.locator('#checks-body tr').count()).toBeGreaterThanOrEqual(4);
    await shot('system');
  });

  it('keeps the API-key box hidden while the server needs no key, and raised no script error', async () => {
    expect(await page.locator('#key-form').isHidden()).toBe(true);
    expect(await page.locator('#notice').isHidden()).toBe(true);
    expect(pageErrors).toEqual([]);
  });
});

describe.skipIf(!CHROMIUM)('the dashboard when the server wants API keys', () => {
  let t: TestServer;
  let browser: Browser;
  const keys = { a: '', b: '' };
  let ran = '';

  beforeAll(async () => {
    t = await startTestServer({ auth: { mode: 'keys' } });
    const store = await openStore(t.config);
    try {
      keys.a = (await createApiKey(store.db, { tenant: 'ui-a' })).key;
      keys.b = (await createApiKey(store.db, { tenant: 'ui-b' })).key;
    } finally {
      await store.close();
    }
    const res = await call(
      t.url,
      'POST',
      '/execute',
      { language: 'python', code: 'print(1)' },
      {
        authorization: `Bearer ${keys.a}`,
      },
    );
    expect(res.status).toBe(200);
    ran = String(res.body.request_id);
    browser = await launch();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
  });

  it("loads without a key, asks for one, and shows only the key's tenant's executions", async () => {
    const page = await (await browser.newContext()).newPage();
    await page.goto(`${t.url}/ui#executions`);
    await page.locator('#key-form').waitFor({ state: 'visible', ...WAIT });
    await page.locator('#notice').waitFor({ state: 'visible', ...WAIT });
    expect(await page.locator('#notice').textContent()).toMatch(/^401/);

    await page.fill('#key-input', keys.b);
    await page.click('#key-form button[type="submit"]');
    await page.locator('#executions-empty').waitFor({ state: 'visible', ...WAIT });
    expect(await page.locator('#executions-body tr').count()).toBe(0);

    await page.fill('#key-input', keys.a);
    await page.click('#key-form button[type="submit"]');
    const row = page.locator(`#executions-body tr[data-request-id="${ran}"]`);
    await row.waitFor(WAIT);
    expect(await page.locator('#notice').isHidden()).toBe(true);
    // The key lives in this tab's session: a reload keeps it and is not asked again.
    await page.reload();
    await row.waitFor(WAIT);
    expect(await page.locator('#key-input').inputValue()).toBe('');
  });
});
