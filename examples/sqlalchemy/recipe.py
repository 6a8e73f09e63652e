#!/usr/bin/python3
"""privacy_guard from SQLAlchemy's ORM (Debian: python3-sqlalchemy, 1.4).

Runs against a database prepared with examples/schema.sql, as shop_app,
through the libpq environment (PGHOST, PGPORT, PGDATABASE).  Prints one TAP
line per check and exits non-zero when one fails.

The pattern: a Session per unit of work; `in_purpose(p)` opens it, begins
its transaction and declares the purpose there with set_config(..., true),
which PostgreSQL forgets at COMMIT or ROLLBACK -- safe behind a transaction
pooler.  Two mapped classes: Customer (the table) for writes, CustomerRead
(the reading view customers_read, made by
privacy_guard.create_reading_view('customers')) for reads, where a tagged
value the purpose may not use is None, so the ORM's ordinary queries never
meet a withheld value.
"""
import datetime
import os
import sys
from contextlib import contextmanager

from sqlalchemy import (BigInteger, Column, Date, ForeignKey, Numeric, Text,
                        DateTime, create_engine, func, select, text)
from sqlalchemy.exc import DBAPIError, ProgrammingError
from sqlalchemy.orm import Session, declarative_base, deferred
from sqlalchemy.types import UserDefinedType

os.environ.setdefault("PGUSER", "shop_app")
engine = create_engine("postgresql+psycopg2://", future=True)
Base = declarative_base()


class TaggedText(UserDefinedType):
    """privacy_guard.tagged_text: written as plain text (the table's trigger
    gives it its default tag) or as privacy_guard.tag(...)."""
    cache_ok = True

    def get_col_spec(self):
        return "privacy_guard.tagged_text"


class Customer(Base):
    """The table, for writes."""
    __tablename__ = "customers"
    id = Column(BigInteger, primary_key=True)
    name = Column(Text, nullable=False)
    email = deferred(Column(TaggedText))
    phone = deferred(Column(TaggedText))
    signed_up = Column(DateTime(timezone=True), server_default=func.now())


class CustomerRead(Base):
    """The reading view, for reads: email and phone are text, None where withheld."""
    __tablename__ = "customers_read"
    id = Column(BigInteger, primary_key=True)
    name = Column(Text)
    email = Column(Text)
    phone = Column(Text)
    signed_up = Column(DateTime(timezone=True))


class Order(Base):
    __tablename__ = "orders"
    id = Column(BigInteger, primary_key=True)
    customer_id = Column(BigInteger, ForeignKey("customers.id"), nullable=False)
    item = Column(Text, nullable=False)
    price = Column(Numeric(10, 2), nullable=False)
    warranty_until = Column(Date, nullable=False)


@contextmanager
def in_purpose(p):
    """One transaction under purpose p (committed when the block ends)."""
    with Session(engine) as session, session.begin():
        session.execute(select(func.set_config("privacy_guard.purpose", p, True)))
        yield session


n = failures = 0


def check(cond, what, got=None):
    global n, failures
    n += 1
    print(("ok" if cond else "not ok") + f" {n} - {what}")
    if not cond:
        failures += 1
        if got is not None:
            print(f"#   got: {got!r}")


pg = func.privacy_guard


def call(session, fn):
    return session.execute(select(fn)).scalar_one()


def people(session):
    return [(c.id, c.email, c.phone)
            for c in session.scalars(select(CustomerRead).order_by(CustomerRead.id))]


# 1. sign-up: account and consent (with its evidence) in one transaction
with in_purpose("billing") as s:
    s.add(Customer(id=2001, name="Anna Schmidt", email="anna@example.org",
                   phone=pg.tag(func.cast("+49 30 1234567", Text), ["marketing"], "2001")))
    s.add(Customer(id=2002, name="Ben Meyer", email="ben@example.org"))
    s.flush()
    call(s, pg.grant_consent("2001", "marketing", None,
                             func.jsonb_build_object("form", "signup", "checkbox", "newsletter")))
with Session(engine) as s:
    check(call(s, pg.has_consent("2001", "marketing")) is True
          and call(s, pg.has_consent("2002", "marketing")) is False,
          "sign-up recorded Anna's consent, not Ben's")

# 2./3. one mapped class, two purposes
with in_purpose("marketing") as s:
    got = people(s)
check(got == [(2001, "anna@example.org", "+49 30 1234567")],
      "under marketing: only Anna, phone revealed", got)
with in_purpose("billing") as s:
    got = people(s)
check(got == [(2001, "anna@example.org", None), (2002, "ben@example.org", None)],
      "under billing: both, the marketing-only phone is None", got)
try:
    with in_purpose("billing") as s:
        s.execute(select(Customer.phone)).all()
    check(False, "the table itself does not print a withheld value")
except ProgrammingError as e:
    check(getattr(e.orig, "pgcode", None) == "42501",
          "the table itself does not print a withheld value (42501)")

# 4. nothing lingers after the transaction
with Session(engine) as s:
    try:
        s.execute(select(func.count()).select_from(Customer))
        check(False, "a query outside a purpose transaction is refused")
    except ProgrammingError as e:
        check(getattr(e.orig, "pgcode", None) == "42501",
              "a query outside a purpose transaction is refused (42501)")

# ... and under privacy_guard.purpose_scope = 'transaction' (set on the
# server, as behind a transaction pooler) a session-wide purpose is refused
with Session(engine) as s:
    scope = s.execute(text("SELECT current_setting('privacy_guard.purpose_scope', true)")).scalar_one()
if scope == "transaction":
    with Session(engine) as s:
        try:
            s.execute(select(func.set_config("privacy_guard.purpose", "billing", False)))
            check(False, "a session-wide purpose is refused")
        except DBAPIError as e:
            check(getattr(e.orig, "pgcode", None) == "55P02", "a session-wide purpose is refused (55P02)")
else:
    n += 1
    print(f"ok {n} # skip privacy_guard.purpose_scope is {scope!r}, not 'transaction'")

# 5. withdrawal
with Session(engine) as s, s.begin():
    call(s, pg.withdraw_consent("2001", "marketing"))
with in_purpose("marketing") as s:
    got = people(s)
check(got == [], "after the withdrawal marketing sees nobody", got)

# 6. purchase with "forget me after the warranty"
warranty = datetime.date.today() + datetime.timedelta(days=730)
with in_purpose("billing") as s:
    s.add(Order(customer_id=2001, item="Espresso machine", price=349, warranty_until=warranty))
    s.flush()
    req = call(s, pg.forget("2001", "forget me after the warranty",
                            func.cast(warranty, DateTime(timezone=True))))
check(isinstance(req, int), "forget(due => end of warranty) files a request")
with Session(engine) as s:
    check(call(s, pg.erasure_status("2001")) == "pending", "the request is pending")
with in_purpose("billing") as s:
    got = s.scalars(select(Order.item).where(Order.customer_id == 2001)).all()
check(got == ["Espresso machine"], "until then the order stays readable", got)

# 7. forget now
with Session(engine) as s, s.begin():
    call(s, pg.forget("2002", "customer asked"))
with in_purpose("billing") as s:
    got = [c[0] for c in people(s)]
check(got == [2001], "a request due now hides Ben at once", got)

# 8. the subject report
with Session(engine) as s:
    report = call(s, pg.subject_report("2001"))
tables = {d["table"]: d["rows"] for d in report["data"]}
check(tables["public.customers"][0]["email"] == "anna@example.org"
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
