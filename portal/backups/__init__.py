"""Backups and restores: the whole database encrypted to age recipients (age-encryption.org/v1,
through pyrage), the retained-data key table left out of them, and key backups that expire."""
