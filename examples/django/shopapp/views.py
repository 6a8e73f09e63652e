"""Two views of the example shop, each under its own purpose."""
from django.http import JsonResponse

from .models import CustomerRead
from .privacy import uses_purpose


def _people():
    return [[c.id, c.email, c.phone] for c in CustomerRead.objects.order_by("id")]


@uses_purpose("marketing")
def newsletter_list(request):
    return JsonResponse({"people": _people()})


@uses_purpose("billing")
def invoice_list(request):
    return JsonResponse({"people": _people()})


def no_purpose(request):
    """A view that declares no purpose: its read of a protected table is refused."""
    return JsonResponse({"people": _people()})
