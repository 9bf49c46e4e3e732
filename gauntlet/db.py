"""Database helpers the ORM does not offer cheaply."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from decimal import Context as DecimalContext
from operator import attrgetter
from zoneinfo import ZoneInfo

from django.db import connections, models, router
from django.db.models import Model
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init

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
_plans: dict[tuple, Callable] = {}


def _preparer(field, connection) -> tuple[tuple[type, ...], Callable]:
    """(the plain types, value -> what the database takes for `field`): get_db_prep_save, which
    a caller skips for a value whose type the field's preparation leaves as it is (None, or a
    plain type above)."""
    target = field.target_field if field.is_relation else field
    prepare = field.get_db_prep_save
    if type(target) is models.DateTimeField and not field.is_relation:
        return (), _datetime_preparer(prepare, connection)
    return _PLAIN_FIELDS.get(type(target), ()), lambda value: prepare(value, connection)


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


def _plan(model: type[Model], fields: Sequence, connection, *, adding: bool) -> Callable[[Model], list]:
    """obj -> its row's values for `fields` as the database takes them (through each field's
    get_db_prep_save; for a new row, `adding`, through pre_save where that sets the value:
    auto_now), cached per model, fields and alias. A replay batch prepares thousands of rows:
    the values are read in one attrgetter call and a plain value (None, an int, a str, a
    Decimal) is not prepared."""
    key = (model, tuple(field.attname for field in fields), connection.alias, adding)
    plan = _plans.get(key)
    if plan is None:
        names = [field.attname for field in fields]
        # attrgetter of one name gives the value itself, of several a tuple
        get = attrgetter(*names) if len(names) > 1 else lambda obj, name=names[0]: (getattr(obj, name),)
        preparers = [_preparer(field, connection) for field in fields]
        autos = [
            (index, field, preparers[index][1]) for index, field in enumerate(fields)
            if adding and (getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False))
        ]

        def plan(obj: Model) -> list:
            row = [
                value if value is None or type(value) in plain else prep(value)
                for value, (plain, prep) in zip(get(obj), preparers)
            ]
            for index, field, prep in autos:
                value = field.pre_save(obj, True)
                row[index] = None if value is None else prep(value)
            return row

        _plans[key] = plan
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


_row_plans: dict[type, tuple[dict, list, dict]] = {}


def _row_plan(model: type[Model]) -> tuple[dict, list, dict]:
    """(static defaults by attname, [(attname, default callable)], name -> is a relation
    given as an object) for new_row: each field's default as Model.__init__ would take it."""
    plan = _row_plans.get(model)
    if plan is None:
        static, dynamic, names = {}, [], {}
        for field in model._meta.concrete_fields:
            if field.generated:
                continue
            if field.has_default() and callable(field.default):
                dynamic.append((field.attname, field.default))
            else:
                static[field.attname] = field.get_default()
            names[field.attname] = False
            if field.is_relation:
                names[field.name] = True
        plan = _row_plans[model] = (static, dynamic, names)
    return plan


def new_row(model: type[Model], /, **values) -> Model:
    """An unsaved `model` instance: what model(**values) makes, every field not given at its
    default, for rows made by the thousand a second and then written (a replay batch's
    invocations, orders, fills, ledger entries and equity snapshots).

    Model.__init__ walks every field through its descriptors and sends two signals; here
    the defaults are copied in, a plain value is stored as it is and only a related object
    goes through its field's descriptor (its id copied, the object cached, its type
    checked). A model someone listens to (pre_init or post_init) is made by its own
    __init__, signals and all.
    """
    if pre_init.has_listeners(model) or post_init.has_listeners(model):
        return model(**values)
    static, dynamic, names = _row_plan(model)
    obj = model.__new__(model)
    obj._state = ModelState()
    state = obj.__dict__
    state.update(static)
    for attname, default in dynamic:
        if attname not in values:
            state[attname] = default()
    for name, value in values.items():
        relation = names.get(name)
        if relation is None:
            raise TypeError(f"{model.__name__}() got an unexpected keyword argument {name!r}")
        if relation:
            setattr(obj, name, value)
        else:
            state[name] = value
    return obj


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
    plan = _plan(model, [*columns, pk], connection, adding=False)
    sql = "UPDATE {} SET {} WHERE {} = %s".format(
        quote(meta.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in columns),
        quote(pk.column),
    )
    params = [plan(obj) for obj in objs]
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
    PostgreSQL such rows go by COPY, and several rows read back by UNNEST.
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
    plan = _plan(model, fields, connection, adding=True)
    relations = [field for field in fields if field.is_relation]
    if connection.vendor == "postgresql" and (not returning or len(objs) > 1):
        if returning:
            _unnest_rows(connection, meta.db_table, fields, plan, relations, objs, pk)
        else:
            _copy_rows(connection, meta.db_table, fields, plan, relations, objs)
        for obj in objs:
            obj._state.adding = False
            obj._state.db = alias
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
                params.extend(plan(obj))
            cursor.execute(head + ", ".join([row_sql] * len(chunk)) + tail, params)
            if returning:
                for obj, (value,) in zip(chunk, cursor.fetchall(), strict=True):
                    setattr(obj, pk.attname, value)
            for obj in chunk:
                obj._state.adding = False
                obj._state.db = alias
    return objs


def _copy_rows(connection, table: str, fields: Sequence, plan: Callable, relations: list, objs: list) -> None:
    """PostgreSQL: the rows by COPY ... FROM STDIN, psycopg adapting each value as for an
    INSERT. A multi-row INSERT of a replay batch's thousands of rows costs the driver more to
    parse (its placeholders) than the server to store; COPY has none."""
    quote = connection.ops.quote_name
    sql = "COPY {} ({}) FROM STDIN".format(quote(table), ", ".join(quote(field.column) for field in fields))
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for obj in objs:
            _related_ids_copy(obj, relations)
            copy.write_row(plan(obj))


def _unnest_rows(connection, table: str, fields: Sequence, plan: Callable, relations: list, objs: list, pk) -> None:
    """PostgreSQL, for rows whose ids are read back: INSERT ... SELECT * FROM UNNEST(one
    array per column) RETURNING id. Django's bulk_create uses the same form on PostgreSQL.

    The statement has one placeholder per column, whatever the number of rows. A VALUES list
    with one placeholder per value made psycopg spend longer parsing the statement than the
    server spent storing the rows, and the server longer planning it. The ids come back in
    the order of the rows."""
    quote = connection.ops.quote_name
    # the column's type without its modifiers: numeric[] takes any scale, varchar[] any length
    arrays = ", ".join(f"(%b)::{field.db_type(connection).split('(')[0]}[]" for field in fields)
    sql = "INSERT INTO {} ({}) SELECT * FROM UNNEST({}) RETURNING {}".format(
        quote(table), ", ".join(quote(field.column) for field in fields), arrays, quote(pk.column),
    )
    rows = []
    for obj in objs:
        _related_ids_copy(obj, relations)
        rows.append(plan(obj))
    import psycopg

    connection.ensure_connection()
    # Bound on the server and sent in binary (%b): Django's cursor binds on the client,
    # quoting every value (a prompt's kilobytes) into the statement's text. Wrapped as Django
    # wraps its own, so query logging and execute wrappers see it.
    raw = psycopg.Cursor(connection.connection)
    cursor = connection.make_debug_cursor(raw) if connection.queries_logged else connection.make_cursor(raw)
    with cursor:
        cursor.execute(sql, [list(column) for column in zip(*rows)])
        for obj, (value,) in zip(objs, cursor.fetchall(), strict=True):
            setattr(obj, pk.attname, value)


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
