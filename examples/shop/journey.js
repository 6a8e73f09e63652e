#!/usr/bin/env node
// examples/shop/journey.js -- the example shop's customer journey in a real
// browser (headless Chromium through puppeteer-core), asserting at each step
// what the customer sees and what the database holds.  Prints TAP lines,
// exits non-zero when a check fails.
//
//   SHOP_URL=http://127.0.0.1:8080 CHROMIUM=/usr/bin/chromium SHOTS=dir \
//   PGHOST=... PGPORT=... PGDATABASE=shop node journey.js
//
// The database is inspected as the superuser PGADMIN (default postgres), as a
// data protection officer would; SHOTS, when set, receives a PNG of each page.
'use strict';
const fs = require('fs');
const path = require('path');
const puppeteer = require('puppeteer-core');
const { Client } = require('pg');

const SHOP = process.env.SHOP_URL;
const SHOTS = process.env.SHOTS || '';
let n = 0, failures = 0;
function check(cond, what, got) {
  n += 1;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${what}`);
  if (!cond) {
    failures += 1;
    if (got !== undefined) console.log(`#   got: ${JSON.stringify(got)}`);
  }
}

async function main() {
  const db = new Client({ user: process.env.PGADMIN || 'postgres' });
  await db.connect();
  const q = async (sql, args = []) => (await db.query(sql, args)).rows;
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start
    args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu', '--lang=en-GB'],
  });
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 1000, height: 760 });
    const text = (sel) => page.$eval(sel, (e) => e.textContent.trim()).catch(() => null);
    const shot = async (name) => {
      if (SHOTS) await page.screenshot({ path: path.join(SHOTS, `shop-${name}.png`), fullPage: true });
    };
    const clickAndWait = (sel) => Promise.all([page.waitForNavigation(), page.click(sel)]);

    // 1. the shop's front page, with the sign-up form and its consent choices
    await page.goto(`${SHOP}/`);
    const boxes = await page.$$eval('#signup input[name=consent]', (els) => els.map((e) => [e.value, e.checked]));
    check(JSON.stringify(boxes) === JSON.stringify([['marketing', false], ['marketing.email', false]]),
          'the sign-up form offers both consent choices, unticked', boxes);
    await page.type('#signup input[name=name]', 'Anna Schmidt');
    await page.type('#signup input[name=email]', 'anna.schmidt@example.org');
    await page.type('#signup input[name=phone]', '+49 30 1234567');
    await page.click('#signup input[value="marketing.email"]');
    await shot('signup');

    // 2. sign up: newsletter yes, offers no
    await clickAndWait('#signup button[type=submit]');
    const id = await text('#customer-id');
    check(/^1[0-9]{4}$/.test(id || '') && /Welcome/.test(await text('#msg')),
          'after sign-up the account page welcomes the customer', id);
    let shown = await page.$$eval('#choices td.state', (els) => els.map((e) => [e.dataset.purpose, e.textContent]));
    check(JSON.stringify(shown) === JSON.stringify([['marketing', 'no'], ['marketing.email', 'yes']]),
          'the account shows the choices made: newsletter yes, offers no', shown);
    let rows = await q(`SELECT purpose, status FROM privacy_guard.consents WHERE subject = $1 ORDER BY purpose`, [id]);
    check(JSON.stringify(rows) === JSON.stringify([{ purpose: 'marketing.email', status: 'granted' }]),
          'db: one consent, to marketing.email, granted', rows);
    rows = await q(`SELECT action, evidence FROM privacy_guard.consent_ledger WHERE subject = $1`, [id]);
    check(rows.length === 1 && rows[0].action === 'grant' && rows[0].evidence.form === 'signup'
          && rows[0].evidence.label === 'Send me your newsletter by e-mail' && /Chrom/.test(rows[0].evidence.user_agent),
          'db: the ledger keeps the evidence: the form, the words ticked, the browser', rows);
    rows = await q('SELECT count(*)::int AS n FROM newsletter WHERE customer_id = $1', [id]);
    check(rows[0].n === 1, 'db: the newsletter subscription is stored', rows);
    await shot('account');

    // 3. buy, with "forget me once the warranty ends"
    await page.click('#buy input[name=forget_after_warranty]');
    await clickAndWait('#buy button[type=submit]');
    const warranty = (await q("SELECT (now() + interval '2 years')::date::text AS d"))[0].d;
    const sched = await text('#forget-scheduled');
    check(/Thank you/.test(await text('#msg')) && (sched || '').includes(warranty),
          `the account shows the order and the erasure on ${warranty}`, sched);
    rows = await q(`SELECT state, due::date::text AS due, reason FROM privacy_guard.erasure_requests
                     WHERE subject_digest = privacy_guard._subject_digest($1)`, [id]);
    check(rows.length === 1 && rows[0].state === 'pending' && rows[0].due === warranty,
          'db: a pending erasure request, due when the warranty ends', rows);
    rows = await q('SELECT count(*)::int AS n FROM privacy_guard.erasure_requests WHERE subject_digest = $1', [id]);
    check(rows[0].n === 0, 'db: the request names the customer by digest, never by number', rows);
    await shot('bought');

    // 4. "what you hold about me", on the page and as a JSON download
    await clickAndWait('#my-data');
    const where = await page.$$eval('#records tr td:first-child', (els) => els.map((e) => e.textContent));
    check(JSON.stringify(where) === JSON.stringify(['customers', 'newsletter', 'orders']),
          'the data page lists the account, the subscription and the order', where);
    const hist = await page.$$eval('#history tr td:nth-child(2)', (els) => els.map((e) => e.textContent));
    check(JSON.stringify(hist) === JSON.stringify(['grant']), 'the data page shows the consent history', hist);
    await shot('my-data');
    const dl = await page.evaluate(async () => {
      const r = await fetch('/my-data.json');
      return { type: r.headers.get('content-type'), disp: r.headers.get('content-disposition'), body: await r.json() };
    });
    const phone = dl.body.data.find((d) => d.table === 'public.customers').rows[0].phone;
    check(/^application\/json/.test(dl.type) && /attachment/.test(dl.disp) && dl.body.subject === id
          && phone === '+49 30 1234567' && dl.body.erasure_requests.length === 1,
          'the download is the machine-readable subject report (phone and request included)', dl.type);

    // 5. withdraw the newsletter consent
    await page.goto(`${SHOP}/account`);
    await clickAndWait('#toggle-marketing-email');
    shown = await page.$$eval('#choices td.state', (els) => els.map((e) => e.textContent));
    check(/no longer use/.test(await text('#msg')) && JSON.stringify(shown) === '["no","no"]',
          'after withdrawing, the account shows no consent', shown);
    rows = await q(`SELECT status FROM privacy_guard.consents WHERE subject = $1 AND purpose = 'marketing.email'`, [id]);
    check(rows.length === 1 && rows[0].status === 'withdrawn', 'db: the consent is withdrawn', rows);
    rows = await q(`SELECT array_agg(action ORDER BY id) AS a FROM privacy_guard.consent_ledger WHERE subject = $1`, [id]);
    check(JSON.stringify(rows[0].a) === '["grant","withdraw"]', 'db: the ledger keeps both grant and withdrawal', rows);
    // the newsletter sender, as the application: the subscriber is no longer there
    await db.query('BEGIN');
    await db.query('SET LOCAL ROLE shop_app');
    await db.query("SET LOCAL privacy_guard.purpose = 'marketing.email'");
    rows = await q('SELECT count(*)::int AS n FROM newsletter WHERE customer_id = $1', [id]);
    await db.query('ROLLBACK');
    check(rows[0].n === 0, 'db: the newsletter list (read by shop_app) no longer has her', rows);
    await shot('withdrawn');

    // 6. the privacy notice, English and German
    const bilingual = (await q(`SELECT count(*)::int AS n FROM pg_proc
                                 WHERE oid::regprocedure::text = 'privacy_guard.privacy_notice(text,text)'`))[0].n === 1;
    await page.goto(`${SHOP}/privacy?lang=en`);
    const en = await text('section.privacy-notice');
    check(/Privacy notice/.test(en || '') && /Art\. 6\(1\)\(a\)/.test(en) && /Newsletter subscriptions|newsletter/i.test(en),
          'the English notice names the consent basis (Art. 6(1)(a)) and the newsletter', (en || '').slice(0, 80));
    await shot('privacy-en');
    await page.goto(`${SHOP}/privacy?lang=de`);
    const de = await text('main');
    if (bilingual) {
      check(/Datenschutzhinweise/.test(de || '') && /Ihre Einwilligung \(Art\. 6 Abs\. 1 lit\. a DSGVO\)/.test(de)
            && /Unser Newsletter per E-Mail/.test(de) && !/Privacy notice/.test(de)
            && (await page.$eval('html', (e) => e.lang)) === 'de',
            'the German notice speaks German: Art. 6 Abs. 1 lit. a DSGVO, the German purpose descriptions',
            (de || '').slice(0, 120));
    } else {
      check(/nur auf Englisch/.test(de || '') && /Privacy notice/.test(de),
            'without privacy_notice(format, language) the German page says the notice is English only', (de || '').slice(0, 120));
    }
    await shot('privacy-de');

    // 7. forget me now
    await page.goto(`${SHOP}/account`);
    await clickAndWait('#forget button');
    check(/no longer use your data/.test(await text('#forgotten') || ''), 'the shop confirms the erasure request');
    await shot('forgotten');
    await page.goto(`${SHOP}/account`);
    check(/no longer hold an account/.test(await text('#gone') || ''), 'at once, the account is gone for the shop');
    // the background worker carries it out (naptime 1s): poll, bounded
    let state = null;
    for (let i = 0; i < 120 && state !== 'done'; i++) {
      state = (await q('SELECT privacy_guard.erasure_status($1) AS s', [id]))[0].s;
      if (state !== 'done') await new Promise((r) => setTimeout(r, 500));
    }
    check(state === 'done', 'db: the background worker carried the request out', state);
    rows = await q(`SELECT (SELECT count(*) FROM customers WHERE id = $1)::int AS c,
                           (SELECT count(*) FROM orders WHERE customer_id = $1)::int AS o,
                           (SELECT count(*) FROM newsletter WHERE customer_id = $1)::int AS nl,
                           (SELECT count(*) FROM privacy_guard.consent_ledger WHERE subject = $2)::int AS l`, [id, id]);
    check(JSON.stringify(rows[0]) === '{"c":0,"o":0,"nl":0,"l":0}',
          'db: account, order, subscription gone, even for a superuser; the ledger keeps no number', rows);
    rows = await q(`SELECT counts FROM privacy_guard.erasure_requests
                     WHERE subject_digest = privacy_guard._subject_digest($1) AND state = 'done'`, [id]);
    check(rows.length >= 1, 'db: a receipt with per-table counts', rows);
    await page.goto(`${SHOP}/account`);
    check((await text('#erasure-state')) === 'done', 'the account page says the erasure is done');
    await shot('erased');
  } finally {
    await browser.close();
    await db.end();
  }
}

main()
  .catch((e) => { check(false, `unexpected error: ${e.message}`); })
  .finally(() => {
    console.log(`1..${n}`);
    process.exit(failures ? 1 : 0);
  });
