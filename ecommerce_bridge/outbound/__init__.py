"""ERPNext → storefront: capture changes into the outbox, push them in background jobs."""
