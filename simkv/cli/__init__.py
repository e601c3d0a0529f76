"""The ``simkv`` command line: a thin layer over the Python API (see ``simkv.cli.main``)."""
