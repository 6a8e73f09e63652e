from django.urls import path

from . import views

urlpatterns = [
    path("newsletter", views.newsletter_list),
    path("invoices", views.invoice_list),
    path("undeclared", views.no_purpose),
]
