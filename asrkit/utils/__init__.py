"""Small helpers shared by every stage: atomic outputs, done markers, logging, the command-line convention (cli)."""
