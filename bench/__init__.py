"""``make bench``: the seed's two email patterns against the outbox, in one run."""
