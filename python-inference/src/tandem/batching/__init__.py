"""Dynamic batching: requests from many callers share length-sorted inference batches."""
