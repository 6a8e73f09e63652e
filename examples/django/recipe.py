#!/usr/bin/python3
"""privacy_guard from Django's ORM (Debian: python3-django, 3.2).

Runs against a database prepared with examples/schema.sql, as shop_app,
through the libpq environment (PGHOST, PGPORT, PGDATABASE).  Prints one TAP
line per check and exits non-zero when one fails.

The pieces, in shopapp/: models.py maps the table for writes (Customer)
and its reading view for reads (CustomerRead: the tagged columns as text,
None when the purpose may not use the value); privacy.py has
purpose() (one transaction under a purpose, set with set_config(..., true))
and PurposeMiddleware (the same per request, from the view's declared
purpose).
"""
import datetime
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import django
from django.conf import settings

settings.configure(
    DATABASES={"default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ["PGDATABASE"],
        "USER": os.environ.get("PGUSER", "shop_app"),
        "HOST": os.environ.get("PGHOST", ""),
        "PORT": os.environ.get("PGPORT", ""),
        "CONN_MAX_AGE": 600,  # one connection reused across "requests"
    }},
    INSTALLED_APPS=["shopapp"],
    MIDDLEWARE=["shopapp.privacy.PurposeMiddleware"],
    ROOT_URLCONF="shopapp.urls",
    SECRET_KEY="example only",
    # the refused request below is expected: keep Django's error log quiet
    LOGGING={"version": 1, "loggers": {"django.request": {"level": "CRITICAL"}}},
    ALLOWED_HOSTS=["testserver"],
    USE_TZ=True,
    TIME_ZONE="UTC",
)
django.setup()

from django.db import connection
from django.db.utils import ProgrammingError
from django.test import Client

from shopapp.models import Customer, CustomerRead, Order
from shopapp.privacy import call, purpose

n = failures = 0


def check(cond, what, got=None):
    global n, failures
    n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
    if not cond:
        failures += 1
        if got is not None:
            print(f"#   got: {got!r}")


def people():
    return [(c.id, c.email, c.phone) for c in CustomerRead.objects.order_by("id")]


# 1. sign-up
with purpose("billing"):
    Customer.objects.create(id=4001, name="Anna Schmidt", email="anna@example.org")
    with connection.cursor() as cur:  # the phone: for marketing only
        cur.execute("UPDATE customers SET phone = privacy_guard.tag(%s::text, ARRAY['marketing'], %s) "
                    "WHERE id = %s", ["+49 30 1234567", "4001", 4001])
    call("grant_consent", "4001", "marketing", None,
         json.dumps({"form": "signup", "checkbox": "newsletter"}))
    Customer.objects.create(id=4002, name="Ben Meyer", email="ben@example.org")
check(call("has_consent", "4001", "marketing") is True
      and call("has_consent", "4002", "marketing") is False,
      "sign-up recorded Anna's consent, not Ben's")


# 2./3. a view per purpose (shopapp/views.py), through Django's request
# handling and PurposeMiddleware
client = Client(raise_request_exception=True)


def handle(url):
    return client.get(url).json()["people"]


got = handle("/newsletter")
check(got == [[4001, "anna@example.org", "+49 30 1234567"]],
      "a marketing view sees only Anna, phone revealed", got)
got = handle("/invoices")
check(got == [[4001, "anna@example.org", None], [4002, "ben@example.org", None]],
      "a billing view sees both; the marketing-only phone is None", got)
try:
    with purpose("billing"):
        list(Customer.objects.values_list("phone"))
    check(False, "the table itself does not print a withheld value")
except ProgrammingError as e:
    check(getattr(e.__cause__, "pgcode", None) == "42501",
          "the table itself does not print a withheld value (42501)")

# 4. the connection (kept open, CONN_MAX_AGE) carries no purpose between
# requests: a view that declares none is refused
try:
    handle("/undeclared")
    check(False, "a view without a purpose is refused")
except ProgrammingError as e:
    check(getattr(e.__cause__, "pgcode", None) == "42501",
          "a view without a purpose is refused (42501)")

# ... and under privacy_guard.purpose_scope = 'transaction' (set on the
# server, as behind a transaction pooler) a session-wide purpose is refused
from django.db import DatabaseError
with connection.cursor() as cur:
    cur.execute("SELECT current_setting('privacy_guard.purpose_scope', true)")
    scope = cur.fetchone()[0]
if scope == "transaction":
    try:
        with connection.cursor() as cur:
            cur.execute("SET privacy_guard.purpose = 'billing'")
        check(False, "a session-wide purpose is refused")
    except DatabaseError as e:
        check(getattr(e.__cause__, "pgcode", None) == "55P02", "a session-wide purpose is refused (55P02)")
else:
    n += 1
    print(f"ok {n} # skip privacy_guard.purpose_scope is {scope!r}, not 'transaction'")

# 5. withdrawal
call("withdraw_consent", "4001", "marketing")
got = handle("/newsletter")
check(got == [], "after the withdrawal the marketing view sees nobody", got)

# 6. purchase with "forget me after the warranty"
warranty = datetime.date.today() + datetime.timedelta(days=730)
with purpose("billing"):
    Order.objects.create(customer_id=4001, item="Espresso machine", price=349, warranty_until=warranty)
    req = call("forget", "4001", "forget me after the warranty",
               datetime.datetime.combine(warranty, datetime.time(), datetime.timezone.utc))
check(isinstance(req, int), "forget(due => end of warranty) files a request")
check(call("erasure_status", "4001") == "pending", "the request is pending")
with purpose("billing"):
    got = list(Order.objects.filter(customer_id=4001).values_list("item", flat=True))
check(got == ["Espresso machine"], "until then the order stays readable", got)

# 7. forget now
call("forget", "4002", "customer asked")
with purpose("billing"):
    got = [c[0] for c in people()]
check(got == [4001], "a request due now hides Ben at once", got)

# 8. subject report
report = call("subject_report", "4001")
if isinstance(report, str):  # Django's psycopg2 setup leaves jsonb as text
    report = json.loads(report)
tables = {d["table"]: d["rows"] for d in report["data"]}
check(tables["public.customers"][0]["phone"] == "+49 30 1234567"
      and tables["public.orders"][0]["item"] == "Espresso machine",
      "the report holds Anna's account and order", tables)
check([(h["action"], h["purpose"]) for h in report["consent_history"]]
      == [("grant", "marketing"), ("withdraw", "marketing")]
      and report["consent_history"][0]["evidence"]["form"] == "signup",
      "the report shows the consent history with its evidence", report["consent_history"])
reqs = report["erasure_requests"]
check(len(reqs) == 1 and reqs[0]["due"].startswith(warranty.isoformat()),
      "the report shows the request and its due date", reqs)

print(f"1..{n}")
sys.exit(1 if failures else 0)
