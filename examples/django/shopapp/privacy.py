"""privacy_guard helpers for Django views."""
from contextlib import contextmanager

from django.db import connection, transaction


@contextmanager
def purpose(name):
    """One transaction under a purpose.  set_config(..., true) is
    transaction-local: PostgreSQL forgets it at COMMIT or ROLLBACK, so a
    pooled connection (CONN_MAX_AGE, or PgBouncer in transaction mode) never
    carries it into another request."""
    with transaction.atomic():
        with connection.cursor() as cur:
            cur.execute("SELECT set_config('privacy_guard.purpose', %s, true)", [name])
        yield


class PurposeMiddleware:
    """Runs each request in one transaction under the purpose its view
    declares (a `privacy_purpose` attribute, e.g. set by a decorator)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view, args, kwargs):
        p = getattr(view, "privacy_purpose", None)
        if p is None:
            return None
        with purpose(p):
            return view(request, *args, **kwargs)


def uses_purpose(name):
    def deco(view):
        view.privacy_purpose = name
        return view
    return deco


def call(fn, *args):
    """SELECT privacy_guard.fn(args...) and return its value."""
    with connection.cursor() as cur:
        cur.execute(f"SELECT privacy_guard.{fn}({', '.join(['%s'] * len(args))})", list(args))
        return cur.fetchone()[0]
