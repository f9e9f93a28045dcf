"""The demo data set: data files under ``data/``, read, planned and loaded by ``python -m demo``.

``datafiles`` reads the files into the records of ``specs``, ``plan`` turns them into rows
without touching the database, and ``seed`` inserts them into an empty database.
"""
