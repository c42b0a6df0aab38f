"""The ``runlab`` command line: thin Typer commands over the library."""
