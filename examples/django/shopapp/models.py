"""The example shop's tables (examples/schema.sql) as Django models.

managed = False: the schema, protect() included, is the database's business
(examples/schema.sql), not a migration's.
"""
from django.db import models


class TaggedTextField(models.TextField):
    """A privacy_guard.tagged_text column of the table.  Written as plain
    text, which the table's trigger tags with the column's default tag; read
    through the reading view (CustomerRead), not through this model, since
    the table's own output refuses a withheld value (42501)."""

    def db_type(self, connection):
        return "privacy_guard.tagged_text"


class Customer(models.Model):
    """The table, for writes."""
    id = models.BigIntegerField(primary_key=True)
    name = models.TextField()
    email = TaggedTextField(null=True)
    phone = TaggedTextField(null=True)
    signed_up = models.DateTimeField(auto_now_add=True)

    class Meta:
        managed = False
        db_table = "customers"


class CustomerRead(models.Model):
    """The reading view customers_read (privacy_guard.create_reading_view):
    the same columns, the tagged ones as text, None where the request's
    purpose may not use the value.  Read-only."""
    id = models.BigIntegerField(primary_key=True)
    name = models.TextField()
    email = models.TextField(null=True)
    phone = models.TextField(null=True)
    signed_up = models.DateTimeField()

    class Meta:
        managed = False
        db_table = "customers_read"


class Order(models.Model):
    id = models.BigAutoField(primary_key=True)
    customer = models.ForeignKey(Customer, on_delete=models.DO_NOTHING, db_column="customer_id")
    item = models.TextField()
    price = models.DecimalField(max_digits=10, decimal_places=2)
    bought_at = models.DateTimeField(auto_now_add=True)
    warranty_until = models.DateField()

    class Meta:
        managed = False
        db_table = "orders"
