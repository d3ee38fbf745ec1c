"""Retained data sealed under keys of one patron and one store: every column saying what a
patron read, listed or where their messages go is kept encrypted under that key, and erasing
destroys the key in the same transaction as the rows, so no older copy (a backup, a dead
tuple, a write-ahead log) can be read again. docs/PROMISES.md promise 4."""
