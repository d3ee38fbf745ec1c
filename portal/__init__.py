"""The patron consent and privacy-preferences portal."""
