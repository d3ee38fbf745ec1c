"""Store `saved_lists`: lists the patron makes of titles to remember, kept only while the
patron has consented. Erased in a withdrawal's transaction, and a list untouched for longer
than `retention_days` is deleted with its items (portal.erasure). The store is declared in
`services.STORE`, its pages in `views`."""
