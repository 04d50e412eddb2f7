"""Jobs: the scheduler's registry and process, the record of every run, requested jobs and leases."""
