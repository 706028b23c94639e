"""Debezium's Kafka messages (JsonConverter with schemas): the envelope, the schema plans, the change events."""
