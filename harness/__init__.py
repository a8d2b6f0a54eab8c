"""Real parts for tests, benchmarks and drills: a local SQS that can be stopped and
restarted, a fault-injecting proxy, and celery worker subprocesses. Loopback only."""
