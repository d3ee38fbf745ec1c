"""The portal's own SIP2 client: framing in `codec`, connections in `client`. Imports nothing
else of the portal, so it can be read, tested and audited as a protocol library."""
