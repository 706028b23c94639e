"""Never silently wrong: detect when Kafka forgot what the pipeline had not read, and rebuild aside."""
