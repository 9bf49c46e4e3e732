"""Database helpers the ORM does not offer cheaply."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from decimal import Context as DecimalContext
from zoneinfo import ZoneInfo

from django.db import connections, models, router
from django.db.models import Model

# Field classes whose get_db_prep_save hands back a value of these Python types unchanged on
# every backend (int(), str(), bool() and Decimal() of themselves; a Decimal column is adapted
# by the driver). Exact classes only: a subclass may prepare values its own way.
_PLAIN_FIELDS: dict[type, tuple[type, ...]] = {
    models.AutoField: (int,), models.BigAutoField: (int,), models.SmallAutoField: (int,),
    models.IntegerField: (int,), models.BigIntegerField: (int,), models.SmallIntegerField: (int,),
    models.PositiveIntegerField: (int,), models.PositiveBigIntegerField: (int,),
    models.PositiveSmallIntegerField: (int,),
    models.CharField: (str,), models.TextField: (str,), models.BooleanField: (bool,),
    models.DecimalField: (Decimal,),
}
_plans: dict[tuple, list] = {}


def _preparer(field, connection) -> Callable:
    """value -> what the database takes for `field`: get_db_prep_save, skipped for a value
    whose type the field's preparation leaves as it is (None, or a plain type above)."""
    target = field.target_field if field.is_relation else field
    plain = _PLAIN_FIELDS.get(type(target), ())
    prepare = field.get_db_prep_save
    if type(target) is models.DateTimeField and not field.is_relation:
        return _datetime_preparer(prepare, connection)

    def prep(value):
        if value is None or type(value) in plain:
            return value
        return prepare(value, connection)

    return prep


def _datetime_preparer(prepare: Callable, connection) -> Callable:
    """A DateTimeField's preparation for an aware UTC datetime, what Django's comes to:
    PostgreSQL takes it as it is; SQLite takes the naive UTC time as text (str()), when the
    connection's time zone is UTC. Anything else goes through Django's own."""
    vendor = connection.vendor
    sqlite_utc = vendor == "sqlite" and connection.timezone in (UTC, ZoneInfo("UTC"))

    def prep(value):
        if type(value) is datetime and value.tzinfo is UTC:
            if vendor == "postgresql":
                return value
            if sqlite_utc:
                return str(value.replace(tzinfo=None))
        return None if value is None else prepare(value, connection)

    return prep


def _plan(model: type[Model], fields: Sequence, connection) -> list:
    """Per field: (field, attname, takes pre_save, preparer), cached per model, fields and alias."""
    key = (model, tuple(field.attname for field in fields), connection.alias)
    plan = _plans.get(key)
    if plan is None:
        plan = _plans[key] = [
            (field, field.attname, bool(getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)),
             _preparer(field, connection))
            for field in fields
        ]
    return plan


def _related_ids_copy(obj: Model, relations: Sequence) -> None:
    """What Model._prepare_related_fields_for_save does for a new row's foreign keys, for
    the relations alone: copy the id of a related object saved after it was assigned, and
    refuse one still unsaved (its row would point at nothing)."""
    cache = obj._state.fields_cache
    for field in relations:
        related = cache.get(field.name)
        if related is None:
            continue
        target = getattr(related, field.target_field.attname)
        if target is None:
            raise ValueError(f"insert_rows() prohibited to prevent data loss due to unsaved related object '{field.name}'.")
        if getattr(obj, field.attname) != target:
            setattr(obj, field.attname, target)


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
    plan = _plan(model, [*columns, pk], connection)
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(meta.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in columns),
        quote(pk.column),
    )
    params = [[prep(getattr(obj, attname)) for _, attname, _, prep in plan] for obj in objs]
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
    bulk_create does. `returning=False` leaves the ids unread (rows no one reads back); on
    PostgreSQL such rows go by COPY.
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
    plan = _plan(model, fields, connection)
    relations = [field for field in fields if field.is_relation]
    if not returning and connection.vendor == "postgresql":
        _copy_rows(connection, meta.db_table, fields, plan, relations, objs, alias)
        return objs
    batch = max(1, min(len(objs), connection.ops.bulk_batch_size(fields, objs)))
    head = "INSERT INTO {} ({}) VALUES ".format(quote(meta.db_table), ", ".join(quote(f.column) for f in fields))
    row_sql = "(" + ", ".join(["%s"] * len(fields)) + ")"
    tail = f" RETURNING {quote(pk.column)}" if returning else ""
    with connection.cursor() as cursor:
        for start in range(0, len(objs), batch):
            chunk = objs[start : start + batch]
            params = []
            for obj in chunk:
                _related_ids_copy(obj, relations)
                params.extend(
                    prep(field.pre_save(obj, True) if auto else getattr(obj, attname))
                    for field, attname, auto, prep in plan
                )
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + tail, params)
            if returning:
                for obj, (value,) in zip(chunk, cursor.fetchall(), strict=True):
                    setattr(obj, pk.attname, value)
            for obj in chunk:
                obj._state.adding = False
                obj._state.db = alias
    return objs


def _copy_rows(connection, table: str, fields: Sequence, plan: list, relations: list, objs: list, alias: str) -> None:
    """PostgreSQL: the rows by COPY ... FROM STDIN, psycopg adapting each value as for an
    INSERT. A multi-row INSERT of a replay batch's thousands of rows costs the driver more to
    parse (its placeholders) than the server to store; COPY has none."""
    quote = connection.ops.quote_name
    sql = "COPY {} ({}) FROM STDIN".format(quote(table), ", ".join(quote(field.column) for field in fields))
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objs:
            _related_ids_copy(obj, relations)
            copy.write_row([
                prep(field.pre_save(obj, True) if auto else getattr(obj, attname))
                for field, attname, auto, prep in plan
            ])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = alias


_echoes: dict[tuple, Callable] = {}


def _decimal_echo(field, connection) -> Callable:
    """value -> the Decimal the database gives back for it in `field`'s column.

    PostgreSQL's numeric(max_digits, decimal_places) rounds to the scale, ties away from zero;
    psycopg reads it back exactly. SQLite keeps a decimal column as a double and Django reads
    it back with 15 significant digits, quantized to the scale (its decimal converter)."""
    step = Decimal(1).scaleb(-field.decimal_places)
    context = field.context
    if connection.vendor == "postgresql":
        return lambda value: (
            None if value is None else Decimal(value).quantize(step, rounding=ROUND_HALF_UP, context=context)
        )
    if connection.vendor == "sqlite":
        create = DecimalContext(prec=15).create_decimal_from_float
        return lambda value: None if value is None else create(float(value)).quantize(step, context=context)
    return lambda value: value


def as_stored(obj: Model, field_names: Sequence[str]) -> None:
    """Set each of obj's decimal `field_names` to the value the database would give back once
    it is written: what a reload of the row would read, without the reload.

    Code that keeps rows in memory across steps a reload would separate (trading.Book over
    a batch of replay rounds) calls it at those steps' ends, so its numbers are the same
    whichever way the steps ran (tested: a replay run in batches and one round at a time).
    """
    model = type(obj)
    connection = connections[router.db_for_write(model)]
    for name in field_names:
        key = (model, name, connection.alias)
        echo = _echoes.get(key)
        if echo is None:
            field = model._meta.get_field(name)
            echo = _echoes[key] = _decimal_echo(field, connection) if isinstance(field, models.DecimalField) else None
        if echo is not None:
            setattr(obj, name, echo(getattr(obj, name)))
