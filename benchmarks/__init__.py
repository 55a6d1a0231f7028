"""Scripts behind the figures the README quotes (run from the repository root; not timed tests)."""
