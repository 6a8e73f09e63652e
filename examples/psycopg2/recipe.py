#!/usr/bin/python3
"""privacy_guard from Python with psycopg2 (Debian: python3-psycopg2).

Runs against a database prepared with examples/schema.sql, connecting as
the application role shop_app through the libpq environment (PGHOST,
PGPORT, PGDATABASE; PGUSER defaults to shop_app here).  Prints one TAP line
per check and exits non-zero when one fails.

Reads go through the reading view customers_read (made by
privacy_guard.create_reading_view('customers') in examples/schema.sql),
writes to the table.  The pattern: every unit of work is one transaction that declares its
purpose with set_config('privacy_guard.purpose', ..., true) -- the
transaction-local form, which ends with the transaction and so is safe
behind a transaction pooler (PgBouncer) where the next transaction may run
on another server connection, or this connection may serve another client.
"""
import datetime
import json
import os
import sys
from contextlib import contextmanager

import psycopg2
import psycopg2.errors

os.environ.setdefault("PGUSER", "shop_app")
conn = psycopg2.connect("")

n = 0
failures = 0


def check(cond, what, got=None):
    global n, failures
    n += 1
    if cond:
        print(f"ok {n} - {what}")
    else:
        failures += 1
        print(f"not ok {n} - {what}")
        if got is not None:
            print(f"#   got: {got!r}")


@contextmanager
def purpose(p):
    """A transaction under purpose p; commits on success, rolls back on error."""
    with conn:  # psycopg2: BEGIN ... COMMIT (ROLLBACK on an exception)
        with conn.cursor() as cur:
            cur.execute("SELECT set_config('privacy_guard.purpose', %s, true)", (p,))
            yield cur


def customers(cur):
    # the reading view: the tagged columns as plain text, NULL where this
    # purpose may not use the value (SELECT * FROM customers would fail on a
    # withheld value; naming privacy_guard.reveal(phone) works as well)
    cur.execute("SELECT * FROM customers_read ORDER BY id")
    return [r[:4] for r in cur.fetchall()]


# 1. sign-up: the account and the consent choices, with their evidence, in one transaction
with purpose("billing") as cur:
    cur.execute("""INSERT INTO customers (id, name, email, phone)
                   VALUES (%s, %s, %s, privacy_guard.tag(%s::text, ARRAY['marketing'], %s))""",
                (1001, "Anna Schmidt", "anna@example.org", "+49 30 1234567", "1001"))
    cur.execute("SELECT privacy_guard.grant_consent(%s, 'marketing', evidence => %s)",
                ("1001", json.dumps({"form": "signup", "checkbox": "newsletter",
                                     "ip": "192.0.2.10", "text_version": 3})))
    cur.execute("INSERT INTO customers (id, name, email) VALUES (%s, %s, %s)",
                (1002, "Ben Meyer", "ben@example.org"))
with conn, conn.cursor() as cur:
    cur.execute("SELECT privacy_guard.has_consent('1001', 'marketing'), "
                "privacy_guard.has_consent('1002', 'marketing')")
    check(cur.fetchone() == (True, False), "sign-up recorded Anna's consent to marketing, not Ben's")

# 2. marketing sees only who consented, and the phone tagged for marketing
with purpose("marketing") as cur:
    rows = customers(cur)
check(rows == [(1001, "Anna Schmidt", "anna@example.org", "+49 30 1234567")],
      "under marketing: only Anna, with her phone number", rows)

# 3. billing sees every customer; the phone (tagged for marketing only) reads as NULL
with purpose("billing") as cur:
    rows = customers(cur)
check(rows == [(1001, "Anna Schmidt", "anna@example.org", None),
               (1002, "Ben Meyer", "ben@example.org", None)],
      "under billing: both customers, phone withheld as NULL", rows)
try:
    with purpose("billing") as cur:
        cur.execute("SELECT * FROM customers")
    check(False, "the table itself does not print a withheld value")
except psycopg2.errors.InsufficientPrivilege:
    check(True, "the table itself does not print a withheld value (42501)")

# 4. the purpose ended with the transaction: nothing lingers on the connection
with conn, conn.cursor() as cur:
    cur.execute("SELECT coalesce(current_setting('privacy_guard.purpose', true), '')")
    check(cur.fetchone()[0] == "", "the purpose ends with its transaction")
try:
    with conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM customers")
    check(False, "a read without a purpose is refused")
except psycopg2.errors.InsufficientPrivilege:
    check(True, "a read without a purpose is refused (42501)")

# ... and where the server runs with privacy_guard.purpose_scope = 'transaction'
# (as behind a transaction pooler), a purpose for the whole session is refused
with conn, conn.cursor() as cur:
    cur.execute("SELECT current_setting('privacy_guard.purpose_scope', true)")
    scope = cur.fetchone()[0]
if scope == "transaction":
    try:
        with conn, conn.cursor() as cur:
            cur.execute("SET privacy_guard.purpose = 'billing'")
        check(False, "a session-level SET of the purpose is refused")
    except psycopg2.Error as e:
        check(e.pgcode == "55P02", "a session-level SET of the purpose is refused (55P02)", e.pgcode)
else:
    n += 1
    print(f"ok {n} # skip privacy_guard.purpose_scope is {scope!r}, not 'transaction'")

# 5. withdrawal: from the next statement on, marketing no longer sees Anna
with conn, conn.cursor() as cur:
    cur.execute("SELECT privacy_guard.withdraw_consent('1001', 'marketing')")
with purpose("marketing") as cur:
    rows = customers(cur)
check(rows == [], "after the withdrawal marketing sees nobody", rows)

# 6. a purchase with "forget me once the warranty ends"
warranty = datetime.date.today() + datetime.timedelta(days=730)
with purpose("billing") as cur:
    cur.execute("""INSERT INTO orders (customer_id, item, price, warranty_until)
                   VALUES (1001, 'Espresso machine', 349.00, %s)""", (warranty,))
    cur.execute("SELECT privacy_guard.forget('1001', 'forget me after the warranty', due => %s)",
                (datetime.datetime.combine(warranty, datetime.time(), datetime.timezone.utc),))
    check(isinstance(cur.fetchone()[0], int), "forget(due => end of warranty) files a request")
with conn, conn.cursor() as cur:
    cur.execute("SELECT privacy_guard.erasure_status('1001')")
    check(cur.fetchone()[0] == "pending", "the request is pending")
with purpose("billing") as cur:
    cur.execute("SELECT item FROM orders WHERE customer_id = 1001")
    rows = cur.fetchall()
check(rows == [("Espresso machine",)], "until the warranty ends the order stays readable", rows)

# 7. forget now: Ben's data is hidden at once
with conn, conn.cursor() as cur:
    cur.execute("SELECT privacy_guard.forget('1002', 'customer asked')")
with purpose("billing") as cur:
    rows = customers(cur)
check([r[0] for r in rows] == [1001], "a forget request due now hides Ben at once", rows)

# 8. "what you hold about me": the subject report, as JSON
with conn, conn.cursor() as cur:
    cur.execute("SELECT privacy_guard.subject_report('1001')")
    report = cur.fetchone()[0]  # psycopg2 turns jsonb into Python objects
tables = {d["table"]: d["rows"] for d in report["data"]}
check(tables.get("public.customers", [{}])[0].get("phone") == "+49 30 1234567"
      and tables.get("public.orders", [{}])[0].get("item") == "Espresso machine",
      "the report holds Anna's account (phone included) and her order", tables)
hist = [(h["action"], h["purpose"]) for h in report["consent_history"]]
check(hist == [("grant", "marketing"), ("withdraw", "marketing")]
      and report["consent_history"][0]["evidence"]["form"] == "signup",
      "the report shows the consent's history with its evidence", report["consent_history"])
reqs = report["erasure_requests"]
check(len(reqs) == 1 and reqs[0]["state"] == "pending"
      and reqs[0]["due"].startswith(warranty.isoformat()),
      "the report shows the pending request and its due date", reqs)

print(f"1..{n}")
sys.exit(1 if failures else 0)
