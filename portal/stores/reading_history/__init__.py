"""Store `reading_history`: what the library system reported the patron borrowed, kept only
while the patron has consented (ALA: borrowing history is opt-in and off by default).

Rows arrive from the library system (the integration API) or, in development mode, from a
demo button; they are erased in a withdrawal's transaction and past `retention_days`
(portal.erasure). The store is declared in `services.STORE`, its pages in `views`.
"""
