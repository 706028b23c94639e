"""The Kafka side of a run: clients, topic identity and offsets, the bounded reader.

Written for Apache Kafka and checked against Tansu (the local broker), which differs in ways the reader
must survive: ListOffsets "latest" answers the base offset of the last record batch plus one (short of
the true end), a fetch beyond the log end returns nothing instead of OFFSET_OUT_OF_RANGE, and
offsets_for_times answers 0 instead of -1 for a timestamp later than every record.
"""
