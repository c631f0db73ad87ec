"""CLI subcommand implementations."""
