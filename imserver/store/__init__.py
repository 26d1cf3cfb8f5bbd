"""Everything that touches Postgres. Handlers hold no SQL; this package holds nothing else."""
