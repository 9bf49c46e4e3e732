"""Database helpers the ORM does not offer cheaply."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.db import connections, router
from django.db.models import Model


def update_rows(model: type[Model], objs: Iterable[Model], fields: Sequence[str]) -> int:
    """UPDATE each object's `fields` by primary key: one statement sent for all rows.

    What QuerySet.bulk_update does, without building a CASE expression per row and field
    (milliseconds for ten rows): one parameterised UPDATE executed for every row
    (executemany; psycopg pipelines it). Values go through each field's own
    get_db_prep_save, as save() would. Returns the number of rows given.
    """
    objs = list(objs)
    if not objs:
        return 0
    meta = model._meta
    connection = connections[router.db_for_write(model)]
    quote = connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    pk = meta.pk
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(meta.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in columns),
        quote(pk.column),
    )
    params = [
        [field.get_db_prep_save(getattr(obj, field.attname), connection) for field in columns]
        + [pk.get_db_prep_save(obj.pk, connection)]
        for obj in objs
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, params)
    return len(objs)
