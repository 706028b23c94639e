"""The source PostgreSQL: prerequisite checks and the table's catalog description (verify: ``cdc_pipeline.commands.verify``)."""
