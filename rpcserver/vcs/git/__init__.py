"""Repositories kept as bare git repositories: the ``git`` command line (``command``),
reading (``repo``), writing and pulling (``fetch``)."""
