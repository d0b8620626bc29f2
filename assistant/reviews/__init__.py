"""The review store: replies, conversations and reviewers' verdicts in SQLite (`store`, `migrations`), their
types (`types`), and the queries and exports over them (`queries`) that the web app and `calibrate reviews`
both read."""
