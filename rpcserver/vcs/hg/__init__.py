"""Mercurial behind ``vcs.backend.Backend``: runner, reading, fetching (docs/repositories.md)."""
