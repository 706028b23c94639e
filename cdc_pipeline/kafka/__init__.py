"""The Kafka side of a run: clients, topic identity and offsets, the bounded reader.

Written for Apache Kafka and read the way it answers: ListOffsets "latest" is the high watermark, the exact end
of a partition; offsets_for_times answers -1 for a timestamp later than every record; a fetch outside the log
answers OFFSET_OUT_OF_RANGE.
"""
