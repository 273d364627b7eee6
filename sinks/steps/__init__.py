"""The sink as composed steps, wired in one place (:class:`sinks.loop.SinkLoop`)::

    poll -> DecodeStep -> PartitionBatches -> RetryingWrite -> Commit
            (guard,       (open / sealed /     (backoff on      (after the write,
             dead letter)  grow / pause)        Unavailable)     per partition)

Each step is a small class with its own unit tests; none of them polls or owns the consumer.
"""
