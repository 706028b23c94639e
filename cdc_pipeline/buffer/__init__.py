"""buffer.csv: one batch of raw change events, collected from Kafka messages and written durably before the
merge (and before the offsets are committed)."""
