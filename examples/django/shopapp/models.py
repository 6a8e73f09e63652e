"""The example shop's tables (examples/schema.sql) as Django models.

managed = False: the schema, protect() included, is the database's business
(examples/schema.sql), not a migration's.
"""
from django.db import models


class TaggedTextField(models.TextField):
    """A privacy_guard.tagged_text column.

    Every SELECT reads it through privacy_guard.reveal(), so a value the
    request's purpose may not use arrives as None instead of an error, and
    Customer.objects.all() works whatever the purpose.  Writes send plain
    text, which the table's trigger tags with the column's default tag.
    """

    def db_type(self, connection):
        return "privacy_guard.tagged_text"

    def select_format(self, compiler, sql, params):
        return f"privacy_guard.reveal({sql})", params


class Customer(models.Model):
    id = models.BigIntegerField(primary_key=True)
    name = models.TextField()
    email = TaggedTextField(null=True)
    phone = TaggedTextField(null=True)
    signed_up = models.DateTimeField(auto_now_add=True)

    class Meta:
        managed = False
        db_table = "customers"


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
