"""Export, consent receipts, notice history: what a patron may ask of the portal."""
