from django.apps import AppConfig


class TournamentsConfig(AppConfig):
    name = "tournaments"

    def ready(self):
        from django.db.backends.signals import connection_created

        from .inprocess import in_process_job
        from .ports import in_process_job_register

        connection_created.connect(sqlite_for_concurrent_writers, dispatch_uid="tournaments.sqlite_concurrency")
        # without Celery, the in-process runner (make demo, run_rounds) plays tournament runs too
        in_process_job_register(in_process_job)


def sqlite_for_concurrent_writers(sender, connection, **kwargs):
    """run_tournament --workers N writes from N processes. The settings' SQLite entry already
    asks for WAL (readers never wait for the writer) and a 30 s busy timeout (a writer waits
    for the lock instead of failing); a database given as DATABASE_URL=sqlite:///... gets no
    OPTIONS, so both are set here for every SQLite file connection."""
    if connection.vendor != "sqlite" or connection.is_in_memory_db():
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA busy_timeout")
        if (cursor.fetchone() or [0])[0] < 30000:
            cursor.execute("PRAGMA busy_timeout = 30000")
        cursor.execute("PRAGMA journal_mode")
        if (cursor.fetchone() or [""])[0].lower() != "wal":
            cursor.execute("PRAGMA journal_mode = WAL")
