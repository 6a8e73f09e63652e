#!/usr/bin/env node
// examples/shop/server.js -- a small customer-facing shop backed by
// privacy_guard (Node's http module and the `pg` client, nothing else).
//
//   PGHOST=... PGPORT=... PGDATABASE=shop PGUSER=shop_app PORT=8080 node server.js
//
// The database is prepared with examples/schema.sql.  The shop connects as
// shop_app and runs every request's work in one transaction under the
// purpose it needs (set_config('privacy_guard.purpose', ..., true)), so
// nothing is carried over on a pooled connection.
//
// The customer's side of the promises, one route each:
//   POST /signup     account + consent choices, recorded with their evidence
//   POST /buy        an order; "forget me after the warranty" files
//                    forget(..., due => end of the warranty)
//   GET  /my-data    "what you hold about me" (subject_report), and
//        /my-data.json the same as a JSON download (Art. 15 and 20)
//   POST /consent    withdraw (or give again) a consent
//   POST /forget     "forget me now"
//   GET  /privacy?lang=en|de   the privacy notice generated from the enforced rules
//
// The customer is recognised by a cookie holding the customer number: enough
// for a demonstration, not for a real shop (which would use its login).
'use strict';
const http = require('http');
const { Pool } = require('pg');

const pool = new Pool({ user: process.env.PGUSER || 'shop_app', max: 4 });
const PORT = Number(process.env.PORT || 8080);
const WARRANTY_YEARS = 2;
const PRODUCT = { item: 'Espresso machine "Barista 2"', price: '349.00' };

const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' }[c]));

// One transaction under a purpose (null: no purpose, for the recording
// functions, which read no protected table).
async function tx(purpose, fn) {
  const c = await pool.connect();
  try {
    await c.query('BEGIN');
    if (purpose) await c.query("SELECT set_config('privacy_guard.purpose', $1, true)", [purpose]);
    const r = await fn(c);
    await c.query('COMMIT');
    return r;
  } catch (e) {
    await c.query('ROLLBACK').catch(() => {});
    throw e;
  } finally {
    c.release();
  }
}

const CHOICES = [
  { purpose: 'marketing', label: 'Send me offers and news about your products' },
  { purpose: 'marketing.email', label: 'Send me your newsletter by e-mail' },
];

function page(title, body, { lang = 'en', notice = '' } = {}) {
  return `<!doctype html>
<html lang="${lang}"><head><meta charset="utf-8"><title>${esc(title)} - Kaffeehaus Shop</title>
<style>
 body{font-family:"DejaVu Sans",Arial,sans-serif;margin:0;background:#f6f3ee;color:#222}
 header{background:#4b2e1e;color:#fff;padding:14px 28px;display:flex;gap:24px;align-items:center}
 header b{font-size:20px} header a{color:#f3d9b1;text-decoration:none}
 main{max-width:780px;margin:24px auto;background:#fff;padding:24px 32px;border-radius:8px;box-shadow:0 1px 4px #0002}
 .msg{background:#e7f4e4;border-left:4px solid #3b8c2a;padding:8px 12px;margin:0 0 16px}
 .warn{background:#fdeeee;border-left:4px solid #b33;padding:8px 12px}
 label{display:block;margin:8px 0} input[type=text],input[type=email]{width:320px;padding:4px}
 button{background:#4b2e1e;color:#fff;border:0;padding:8px 14px;border-radius:4px;cursor:pointer;margin:4px 0}
 button.danger{background:#a33}
 table{border-collapse:collapse} td,th{border-bottom:1px solid #ddd;padding:4px 10px;text-align:left}
 pre{background:#f3f3f3;padding:10px;overflow:auto;font-size:12px;max-height:360px}
 ${notice}
</style></head>
<body><header><b>&#9749; Kaffeehaus Shop</b><a href="/">Shop</a><a href="/account">My account</a>
<a href="/my-data">My data</a><a href="/privacy?lang=en">Privacy</a><a href="/privacy?lang=de">Datenschutz</a></header>
<main>${body}</main></body></html>`;
}

function cookies(req) {
  return Object.fromEntries((req.headers.cookie || '').split(/; */).filter(Boolean)
    .map((kv) => [kv.split('=')[0], decodeURIComponent(kv.split('=').slice(1).join('='))]));
}

async function params(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}
const form = async (req) => Object.fromEntries(await params(req));

function send(res, status, html, headers = {}) {
  res.writeHead(status, { 'Content-Type': 'text/html; charset=utf-8', ...headers });
  res.end(html);
}
const redirect = (res, to, headers = {}) => { res.writeHead(303, { Location: to, ...headers }); res.end(); };

// ---- pages --------------------------------------------------------------------------
async function home(req, res, me) {
  send(res, 200, page('Shop', `
<h1>Fresh coffee, kept private</h1>
<p>Our only product today: <b>${esc(PRODUCT.item)}</b>, ${PRODUCT.price} EUR, with a ${WARRANTY_YEARS}-year warranty.</p>
${me ? '<p><a href="/account">Go to your account</a> to buy it.</p>' : `
<h2>Create your account</h2>
<form method="post" action="/signup" id="signup">
 <label>Name <input type="text" name="name" required></label>
 <label>E-mail <input type="email" name="email" required></label>
 <label>Phone (for offers only) <input type="text" name="phone"></label>
 <fieldset><legend>Your choices (you can change them at any time)</legend>
 ${CHOICES.map((c) => `<label><input type="checkbox" name="consent" value="${c.purpose}"> ${esc(c.label)}</label>`).join('\n ')}
 </fieldset>
 <p><small>We use your name, e-mail and orders to deliver and invoice what you buy (a contract with you).
 Everything else only with your consent. <a href="/privacy?lang=en">Privacy notice</a> &middot;
 <a href="/privacy?lang=de">Datenschutzhinweis</a></small></p>
 <button type="submit">Sign up</button>
</form>`}`));
}

async function signup(req, res) {
  const f = await params(req);
  const chosen = f.getAll('consent').filter((p) => CHOICES.some((c) => c.purpose === p));
  const id = await tx('billing', async (c) => {
    const id = (await c.query("SELECT nextval('customer_numbers')::text AS id")).rows[0].id;
    // the phone is asked for offers only: tagged for marketing, withheld under billing
    await c.query(`INSERT INTO customers (id, name, email, phone)
                   VALUES ($1, $2, $3, privacy_guard.tag(nullif($4::text, ''), ARRAY['marketing'], $5::text))`,
                  [id, f.get('name'), f.get('email'), f.get('phone') || '', id]);
    for (const p of chosen) {
      // the evidence: what the customer saw and did, for Art. 7(1)
      await c.query('SELECT privacy_guard.grant_consent($1, $2, evidence => $3)', [id, p, {
        form: 'signup', checkbox: p, label: CHOICES.find((x) => x.purpose === p).label,
        user_agent: req.headers['user-agent'] || null, at: new Date().toISOString() }]);
    }
    return id;
  });
  if (chosen.includes('marketing.email'))
    await tx('marketing.email', (c) => c.query('INSERT INTO newsletter (customer_id) VALUES ($1)', [id]));
  redirect(res, '/account?msg=welcome', { 'Set-Cookie': `customer=${id}; Path=/; HttpOnly; SameSite=Lax` });
}

async function consents(c, id) {
  const r = await c.query(`SELECT p AS purpose, privacy_guard.has_consent($1, p) AS yes
                             FROM unnest($2::text[]) p`, [id, CHOICES.map((x) => x.purpose)]);
  return Object.fromEntries(r.rows.map((x) => [x.purpose, x.yes]));
}

const MESSAGES = {
  welcome: 'Welcome! Your account is ready.',
  bought: 'Thank you for your order.',
  withdrawn: 'Done: we no longer use your data for this.',
  granted: 'Thank you: your choice is recorded.',
};

async function account(req, res, me, url) {
  if (!me) return redirect(res, '/');
  const data = await tx('billing', async (c) => {
    // the reading view: tagged columns as plain values (NULL where withheld)
    const cust = (await c.query('SELECT name, email FROM customers_read WHERE id = $1', [me])).rows[0];
    const orders = (await c.query(`SELECT item, price, bought_at::date AS bought, warranty_until
                                     FROM orders WHERE customer_id = $1 ORDER BY id`, [me])).rows;
    return { cust, orders };
  });
  const state = await tx(null, async (c) => ({
    choices: await consents(c, me),
    erasure: (await c.query('SELECT privacy_guard.erasure_status($1) AS s', [me])).rows[0].s,
  }));
  // the pending request's due date, from the customer's own report
  const report = await tx(null, async (c) => (await c.query('SELECT privacy_guard.subject_report($1) AS r', [me])).rows[0].r);
  const pending = report.erasure_requests.filter((r) => r.state === 'pending').map((r) => r.due.slice(0, 10)).sort();
  if (!data.cust) {
    return send(res, 200, page('Account', `
<h1>Your account</h1>
<p class="warn" id="gone">We no longer hold an account for customer number ${esc(me)}.
${state.erasure ? `Your erasure request is <b id="erasure-state">${esc(state.erasure)}</b>.` : ''}</p>`));
  }
  const msg = MESSAGES[url.searchParams.get('msg')];
  send(res, 200, page('Account', `
${msg ? `<p class="msg" id="msg">${esc(msg)}</p>` : ''}
<h1>Hello, ${esc(data.cust.name)}</h1>
<p>Customer number <b id="customer-id">${esc(me)}</b> &middot; ${esc(data.cust.email)}</p>
<h2>Your choices</h2>
<table id="choices">${CHOICES.map((c) => `<tr><td>${esc(c.label)}</td>
 <td class="state" data-purpose="${c.purpose}">${state.choices[c.purpose] ? 'yes' : 'no'}</td>
 <td><form method="post" action="/consent"><input type="hidden" name="purpose" value="${c.purpose}">
 <input type="hidden" name="give" value="${state.choices[c.purpose] ? 0 : 1}">
 <button type="submit" id="toggle-${c.purpose.replace('.', '-')}">${state.choices[c.purpose] ? 'Withdraw' : 'Agree'}</button></form></td></tr>`).join('')}
</table>
<h2>Buy</h2>
<form method="post" action="/buy" id="buy">
 <p>${esc(PRODUCT.item)}, ${PRODUCT.price} EUR, ${WARRANTY_YEARS}-year warranty</p>
 <label><input type="checkbox" name="forget_after_warranty" value="1"> Forget me once the warranty ends</label>
 <button type="submit">Buy now</button>
</form>
<h2>Your orders</h2>
${data.orders.length ? `<table id="orders"><tr><th>Item</th><th>Price</th><th>Bought</th><th>Warranty until</th></tr>
${data.orders.map((o) => `<tr><td>${esc(o.item)}</td><td>${esc(o.price)}</td><td>${esc(o.bought.toISOString().slice(0, 10))}</td><td>${esc(o.warranty_until.toISOString().slice(0, 10))}</td></tr>`).join('')}</table>`
    : '<p>None yet.</p>'}
${pending.length ? `<p class="msg" id="forget-scheduled">We will erase your data on <b>${esc(pending[0])}</b>, as you asked.</p>` : ''}
<h2>Your data</h2>
<p><a href="/my-data" id="my-data">What you hold about me</a> &middot; <a href="/my-data.json" download id="my-data-json">Download it (JSON)</a></p>
<form method="post" action="/forget" id="forget"><button class="danger" type="submit">Forget me now</button></form>`));
}

async function buy(req, res, me) {
  if (!me) return redirect(res, '/');
  const f = await form(req);
  await tx('billing', async (c) => {
    const w = (await c.query(`INSERT INTO orders (customer_id, item, price, warranty_until)
                              VALUES ($1, $2, $3, (now() + make_interval(years => $4))::date)
                              RETURNING warranty_until::text AS w`,
                             [me, PRODUCT.item, PRODUCT.price, WARRANTY_YEARS])).rows[0].w;
    if (f.forget_after_warranty)
      await c.query("SELECT privacy_guard.forget($1, 'forget me after the warranty', due => $2::date::timestamptz)", [me, w]);
  });
  redirect(res, '/account?msg=bought');
}

async function myData(req, res, me, url) {
  if (!me) return redirect(res, '/');
  const report = await tx(null, async (c) => (await c.query('SELECT privacy_guard.subject_report($1) AS r', [me])).rows[0].r);
  if (url.pathname.endsWith('.json')) {
    res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8',
                         'Content-Disposition': `attachment; filename="my-data-${me}.json"` });
    return res.end(JSON.stringify(report, null, 2));
  }
  const rows = report.data.flatMap((d) => d.rows.map((r) => ({ table: d.table, row: r })));
  send(res, 200, page('My data', `
<h1>What we hold about you</h1>
<p>Generated ${esc(report.generated_at.slice(0, 19).replace('T', ' '))} UTC from our database.
<a href="/my-data.json" download>Download as JSON</a> (machine-readable, to keep or to take elsewhere).</p>
<h2>Records</h2>
<table id="records"><tr><th>Where</th><th>What</th></tr>
${rows.map((r) => `<tr><td>${esc(r.table.replace('public.', ''))}</td><td><code>${esc(JSON.stringify(r.row))}</code></td></tr>`).join('')}</table>
<h2>Your consents, as recorded</h2>
<table id="history"><tr><th>When</th><th>What</th><th>Purpose</th></tr>
${report.consent_history.map((h) => `<tr><td>${esc(h.recorded_at.slice(0, 19).replace('T', ' '))}</td><td>${esc(h.action)}</td><td>${esc(h.purpose)}</td></tr>`).join('')}</table>
<h2>Your requests</h2>
<table id="requests"><tr><th>Filed</th><th>Due</th><th>State</th></tr>
${report.erasure_requests.map((r) => `<tr><td>${esc(r.requested_at.slice(0, 10))}</td><td>${esc(r.due.slice(0, 10))}</td><td>${esc(r.state)}</td></tr>`).join('')}</table>`));
}

async function consent(req, res, me) {
  if (!me) return redirect(res, '/');
  const f = await form(req);
  if (!CHOICES.some((c) => c.purpose === f.purpose)) return send(res, 400, page('Error', '<p>Unknown choice.</p>'));
  await tx(null, (c) => (f.give === '1'
    ? c.query('SELECT privacy_guard.grant_consent($1, $2, evidence => $3)', [me, f.purpose,
      { form: 'account', action: 'agree', at: new Date().toISOString() }])
    : c.query('SELECT privacy_guard.withdraw_consent($1, $2)', [me, f.purpose])));
  redirect(res, `/account?msg=${f.give === '1' ? 'granted' : 'withdrawn'}`);
}

async function forget(req, res, me) {
  if (!me) return redirect(res, '/');
  await tx(null, (c) => c.query("SELECT privacy_guard.forget($1, 'the customer asked in the shop')", [me]));
  send(res, 200, page('Forgotten', `
<h1>We are forgetting you</h1>
<p class="msg" id="forgotten">From this moment on we no longer use your data for anything.
It is erased in our next maintenance round; you get nothing from us any more.</p>`));
}

async function privacy(req, res, me, url) {
  const lang = url.searchParams.get('lang') === 'de' ? 'de' : 'en';
  let html, note = '';
  try {
    html = (await pool.query('SELECT privacy_guard.privacy_notice($1, $2) AS n', ['html', lang])).rows[0].n;
  } catch (e) {
    if (e.code !== '42883') throw e; // privacy_notice(format, language) not installed: English only
    html = (await pool.query("SELECT privacy_guard.privacy_notice('html') AS n")).rows[0].n;
    if (lang === 'de') note = '<p class="warn" id="english-only">Dieser Hinweis ist nur auf Englisch verfügbar.</p>';
  }
  send(res, 200, page(lang === 'de' ? 'Datenschutz' : 'Privacy', note + html, { lang }));
}

const ROUTES = {
  'GET /': home, 'POST /signup': signup, 'GET /account': account, 'POST /buy': buy,
  'GET /my-data': myData, 'GET /my-data.json': myData, 'POST /consent': consent,
  'POST /forget': forget, 'GET /privacy': privacy,
};

http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://localhost');
  const handler = ROUTES[`${req.method} ${url.pathname}`];
  if (!handler) return send(res, 404, page('Not found', '<p>Not found.</p>'));
  const me = /^[0-9]+$/.test(cookies(req).customer || '') ? cookies(req).customer : null;
  try {
    await handler(req, res, me, url);
  } catch (e) {
    // no personal data in the log: the SQLSTATE and the route only
    console.error(`error ${e.code || ''} on ${req.method} ${url.pathname}`);
    send(res, 500, page('Error', '<p class="warn">Something went wrong.</p>'));
  }
}).listen(PORT, '127.0.0.1', () => console.log(`shop listening on http://127.0.0.1:${PORT}/`));
