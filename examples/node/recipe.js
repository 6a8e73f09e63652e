#!/usr/bin/env node
// privacy_guard from Node with the `pg` client (npm install pg).
//
// Runs against a database prepared with examples/schema.sql, as shop_app,
// through the libpq-style environment (PGHOST, PGPORT, PGDATABASE).  Prints
// one TAP line per check and exits non-zero when one fails.
//
// The pattern: a pool, and `inPurpose(purpose, fn)` that checks out a client,
// runs BEGIN, declares the purpose with set_config(..., true) -- forgotten at
// COMMIT/ROLLBACK, so the pooled connection (or a PgBouncer server
// connection behind it) carries nothing over to the next request -- runs fn,
// and commits.  Reads go through the reading view customers_read (made by
// privacy_guard.create_reading_view('customers')), whose tagged columns are
// plain values, NULL for a value the purpose may not use.
'use strict';
const { Pool } = require('pg');

process.env.PGUSER = process.env.PGUSER || 'shop_app';
const pool = new Pool({ max: 2 });
let n = 0, failures = 0;
function check(cond, what, got) {
  n += 1;
  console.log(`${cond ? 'ok' : 'not ok'} ${n} - ${what}`);
  if (!cond) {
    failures += 1;
    if (got !== undefined) console.log(`#   got: ${JSON.stringify(got)}`);
  }
}
const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

async function inPurpose(purpose, fn) {
  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    await client.query("SELECT set_config('privacy_guard.purpose', $1, true)", [purpose]);
    const result = await fn(client);
    await client.query('COMMIT');
    return result;
  } catch (e) {
    await client.query('ROLLBACK');
    throw e;
  } finally {
    client.release();
  }
}

// the reading view customers_read: tagged columns as plain text, null where
// withheld (SELECT * FROM customers would fail on a withheld value)
const customers = async (c) => (await c.query(
  'SELECT id::int, name, email, phone FROM customers_read ORDER BY id')).rows;

async function main() {
  // 1. sign-up: account and consent with evidence, one transaction
  await inPurpose('billing', async (c) => {
    await c.query(`INSERT INTO customers (id, name, email, phone)
                   VALUES ($1, $2, $3, privacy_guard.tag($4::text, ARRAY['marketing'], $5))`,
                  [3001, 'Anna Schmidt', 'anna@example.org', '+49 30 1234567', '3001']);
    await c.query("SELECT privacy_guard.grant_consent($1, 'marketing', evidence => $2)",
                  ['3001', { form: 'signup', checkbox: 'newsletter', text_version: 3 }]);
    await c.query('INSERT INTO customers (id, name, email) VALUES ($1, $2, $3)',
                  [3002, 'Ben Meyer', 'ben@example.org']);
  });
  let r = (await pool.query(`SELECT privacy_guard.has_consent('3001', 'marketing') AS a,
                                    privacy_guard.has_consent('3002', 'marketing') AS b`)).rows[0];
  check(r.a === true && r.b === false, "sign-up recorded Anna's consent, not Ben's", r);

  // 2./3. the same query under two purposes
  let rows = await inPurpose('marketing', customers);
  check(same(rows, [{ id: 3001, name: 'Anna Schmidt', email: 'anna@example.org', phone: '+49 30 1234567' }]),
        'under marketing: only Anna, phone revealed', rows);
  rows = await inPurpose('billing', customers);
  check(same(rows.map((x) => [x.id, x.email, x.phone]),
             [[3001, 'anna@example.org', null], [3002, 'ben@example.org', null]]),
        'under billing: both, the marketing-only phone is null', rows);
  let code = null;
  try { await inPurpose('billing', (c) => c.query('SELECT * FROM customers')); } catch (e) { code = e.code; }
  check(code === '42501', 'the table itself does not print a withheld value (42501)', code);

  // 4. nothing lingers on the pooled connections
  code = null;
  try { await pool.query('SELECT count(*) FROM customers'); } catch (e) { code = e.code; }
  check(code === '42501', 'a query outside a purpose transaction is refused (42501)', code);

  // ... and under privacy_guard.purpose_scope = 'transaction' (set on the
  // server, as behind a transaction pooler) a session-wide purpose is refused
  const scope = (await pool.query("SELECT current_setting('privacy_guard.purpose_scope', true) AS s")).rows[0].s;
  if (scope === 'transaction') {
    code = null;
    try { await pool.query("SET privacy_guard.purpose = 'billing'"); } catch (e) { code = e.code; }
    check(code === '55P02', 'a session-wide purpose is refused (55P02)', code);
  } else {
    n += 1;
    console.log(`ok ${n} # skip privacy_guard.purpose_scope is ${scope}, not 'transaction'`);
  }

  // 5. withdrawal
  await pool.query("SELECT privacy_guard.withdraw_consent('3001', 'marketing')");
  rows = await inPurpose('marketing', customers);
  check(same(rows, []), 'after the withdrawal marketing sees nobody', rows);

  // 6. a purchase with "forget me after the warranty"
  const warranty = new Date(Date.now() + 730 * 86400e3).toISOString().slice(0, 10);
  const id = await inPurpose('billing', async (c) => {
    await c.query(`INSERT INTO orders (customer_id, item, price, warranty_until)
                   VALUES (3001, 'Espresso machine', 349.00, $1)`, [warranty]);
    return (await c.query(
      "SELECT privacy_guard.forget('3001', 'forget me after the warranty', due => $1::date::timestamptz) AS id",
      [warranty])).rows[0].id;
  });
  check(/^[0-9]+$/.test(id), 'forget(due => end of warranty) files a request', id);
  r = (await pool.query("SELECT privacy_guard.erasure_status('3001') AS s")).rows[0];
  check(r.s === 'pending', 'the request is pending', r);
  rows = await inPurpose('billing', async (c) =>
    (await c.query('SELECT item FROM orders WHERE customer_id = 3001')).rows);
  check(same(rows, [{ item: 'Espresso machine' }]), 'until then the order stays readable', rows);

  // 7. forget now
  await pool.query("SELECT privacy_guard.forget('3002', 'customer asked')");
  rows = await inPurpose('billing', customers);
  check(same(rows.map((x) => x.id), [3001]), 'a request due now hides Ben at once', rows);

  // 8. the subject report (pg parses jsonb)
  const report = (await pool.query("SELECT privacy_guard.subject_report('3001') AS r")).rows[0].r;
  const tables = Object.fromEntries(report.data.map((d) => [d.table, d.rows]));
  check(tables['public.customers'][0].phone === '+49 30 1234567'
        && tables['public.orders'][0].item === 'Espresso machine',
        "the report holds Anna's account and order", tables);
  const hist = report.consent_history.map((h) => [h.action, h.purpose]);
  check(same(hist, [['grant', 'marketing'], ['withdraw', 'marketing']])
        && report.consent_history[0].evidence.form === 'signup',
        'the report shows the consent history with its evidence', report.consent_history);
  const reqs = report.erasure_requests;
  check(reqs.length === 1 && reqs[0].state === 'pending' && reqs[0].due.startsWith(warranty),
        'the report shows the request and its due date', reqs);
}

main()
  .catch((e) => { check(false, `unexpected error: ${e.message}`); })
  .finally(async () => {
    await pool.end();
    console.log(`1..${n}`);
    process.exit(failures ? 1 : 0);
  });
