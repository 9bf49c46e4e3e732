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


def insert_rows(model: type[Model], objs: Iterable[Model], *, returning: bool = True) -> list[Model]:
    """INSERT new objects in one multi-row statement per batch, their ids set on them.

    What QuerySet.bulk_create does for plain rows (no conflicts handling, no multi-table
    inheritance), without compiling a query per call: for a replay's handful of rows per
    table and round, the compiler costs more than the values. Each value goes through its
    field's pre_save and get_db_prep_save, as bulk_create's would; related objects saved
    after they were assigned (a fill's new position) have their ids copied first, as
    bulk_create does. `returning=False` leaves the ids unread (rows no one reads back).
    """
    objs = list(objs)
    if not objs:
        return objs
    meta = model._meta
    alias = router.db_for_write(model)
    connection = connections[alias]
    quote = connection.ops.quote_name
    pk = meta.pk
    fields = [field for field in meta.concrete_fields if field is not pk or any(obj.pk is not None for obj in objs)]
    if returning and not connection.features.can_return_rows_from_bulk_insert:
        return model._default_manager.using(alias).bulk_create(objs)
    batch = max(1, min(len(objs), connection.ops.bulk_batch_size(fields, objs)))
    head = "INSERT INTO {} ({}) VALUES ".format(quote(meta.db_table), ", ".join(quote(f.column) for f in fields))
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    tail = f" RETURNING {quote(pk.column)}" if returning else ""
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch):
            chunk = objs[start : start + batch]
            params = []
            for obj in chunk:
                obj._prepare_related_fields_for_save(operation_name="bulk_create")
                params.extend(field.get_db_prep_save(field.pre_save(obj, True), connection) for field in fields)
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + tail, params)
            if returning:
                for obj, (value,) in zip(chunk, cursor.fetchall(), strict=True):
                    setattr(obj, pk.attname, value)
            for obj in chunk:
                obj._state.adding = False
                obj._state.db = alias
    return objs
